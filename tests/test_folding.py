"""Inference with BatchNorms folded into the convolutions computes what the plain stack does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genaug.models import create_generator
from genaug.models.folding import run_stack


def _stack(bias: bool, affine: bool) -> nn.Sequential:
    torch.manual_seed(0)
    stack = nn.Sequential(
        nn.Conv2d(3, 8, 4, 2, 1, bias=bias),
        nn.BatchNorm2d(8, affine=affine),
        nn.LeakyReLU(0.2, inplace=True),
        nn.ConvTranspose2d(8, 5, 4, 2, 1, bias=bias),
        nn.BatchNorm2d(5, affine=affine),
        nn.ReLU(inplace=True),
        nn.Conv2d(5, 2, 3, 1, 1),  # no BatchNorm after it: run as it is
    )
    for norm in stack:
        if isinstance(norm, nn.BatchNorm2d):  # statistics far from the initial ones
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
            if affine:
                norm.weight.data.normal_()
                norm.bias.data.normal_()
    return stack.eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("start", [0, 1])
def test_folded_stack_equals_the_plain_stack(bias, affine, start):
    stack, x = _stack(bias, affine), torch.randn(3, 3 if start == 0 else 8, 16, 16)
    if start:
        x = x[:, :, :8, :8]
    plain = stack[start:](x.clone())
    with torch.inference_mode():
        folded = run_stack(stack, x.clone(), start)
    torch.testing.assert_close(folded, plain, rtol=1e-5, atol=1e-5)
    assert "_genaug_folded" in stack.__dict__  # it took the folded path
    assert set(stack.state_dict()) == set(_stack(bias, affine).state_dict())  # nothing saved


def test_folded_weights_follow_changes_and_training_runs_the_plain_stack():
    stack, x = _stack(True, True), torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        before = run_stack(stack, x)
    with torch.no_grad():
        stack[1].running_var.mul_(4.0)  # in place: the folded weights must be rebuilt
    with torch.inference_mode():
        after = run_stack(stack, x)
    torch.testing.assert_close(after, stack(x).detach(), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(after, before, atol=1e-3)
    stack.double()  # new storage and dtype: rebuilt again
    with torch.inference_mode():
        doubled = run_stack(stack, x.double())
    torch.testing.assert_close(doubled, stack(x.double()).detach(), rtol=1e-9, atol=1e-9)
    stack.train()
    out = run_stack(stack, x.double().requires_grad_())
    out.sum().backward()  # training: the plain stack, batch statistics, gradients
    assert stack[0].weight.grad is not None


@pytest.mark.parametrize("family", ["test_vae", "vae"])
def test_a_vae_decodes_in_inference_as_it_does_with_gradients(family):
    torch.manual_seed(0)
    model = create_generator(family, image_size=16, channels=3, num_classes=4).eval()
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_var.uniform_(0.5, 2.0)
    z, labels = torch.randn(5, model.latent_dim), torch.tensor([0, 1, 2, 3, 0])
    with torch.enable_grad():
        plain = model.decode(z, labels).detach()
    with torch.inference_mode():
        folded = model.decode(z, labels)
    torch.testing.assert_close(folded, plain, rtol=1e-5, atol=1e-5)
    assert "_genaug_folded" in model.decoder.__dict__
