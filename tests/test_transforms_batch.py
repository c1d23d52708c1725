"""GenerativeMix: the on-device (images, labels) batch transform, alone and with timm."""

from __future__ import annotations

import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401
from timm.data import Mixup

from genaug import GenaugError, GenerativeMix

MEAN, STD = (0.5,), (0.25,)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16])
def test_images_keep_dtype_and_labels_come_back_unchanged(dtype):
    mix = GenerativeMix(make_generator(), p=0.5, seed=0)
    images = torch.rand(8, 1, 16, 16)
    images = (images * 255).to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)
    labels = torch.arange(8)
    out, out_labels = mix(images, labels)
    assert out_labels is labels
    assert out.dtype == dtype and out.shape == images.shape
    applied = mix.last_params["apply"]
    assert torch.equal(out[~applied], images[~applied])
    assert not torch.equal(out[applied], images[applied])


def test_normalised_batches_are_undone_and_redone():
    mix = GenerativeMix(make_generator(), p=0.5, seed=0, mean=MEAN, std=STD)
    raw = torch.rand(8, 1, 16, 16)
    normalised = (raw - 0.5) / 0.25
    out, _ = mix(normalised, torch.arange(8))
    applied = mix.last_params["apply"]
    assert torch.equal(out[~applied], normalised[~applied])  # skipped: bit for bit
    plain = GenerativeMix(make_generator(), p=0.5, seed=0)
    expected, _ = plain(raw, torch.arange(8), params=mix.last_params)
    assert torch.allclose(out * 0.25 + 0.5, expected, atol=1e-5)


def test_composes_with_timm_mixup_in_both_orders():
    mix = GenerativeMix(make_generator(), p=0.5, seed=0)
    mixup = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10, label_smoothing=0.1)
    images, labels = torch.rand(8, 1, 16, 16), torch.arange(8)

    x, y = mixup(*mix(images.clone(), labels))  # the recommended order
    assert y.shape == (8, 10) and torch.allclose(y.sum(1), torch.ones(8))

    x, soft = mixup(images.clone(), labels)
    out, out_labels = mix(x, soft)  # after Mixup: soft labels stay soft, the same tensor
    assert out_labels is soft and out.shape == x.shape


def test_a_training_step_backpropagates_through_the_augmented_batch():
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    mix = GenerativeMix(make_generator(), p=0.5, seed=0)
    images, labels = torch.rand(4, 1, 16, 16), torch.arange(4)
    images, labels = mix(images, labels)
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()  # outputs are ordinary tensors, not inference tensors
    optimizer.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (torch.rand(0, 1, 16, 16), torch.zeros(0, dtype=torch.long), "empty batch"),
        (torch.rand(4, 1, 16, 16), torch.arange(3), "3 labels for 4 images"),
        (torch.rand(4, 2, 16, 16), torch.arange(4), "2 channels"),
        ("images", torch.arange(4), "expects a torch.Tensor"),
    ],
)
def test_bad_batches_are_clear_errors(images, labels, match):
    mix = GenerativeMix(make_generator(), p=1.0, seed=0)
    with pytest.raises(GenaugError, match=match):
        mix(images, labels)


def test_bad_normalisation_settings_are_clear_errors():
    with pytest.raises(GenaugError, match="both mean and std"):
        GenerativeMix(make_generator(), mean=MEAN)
    with pytest.raises(GenaugError, match="std must hold 1 or 3 positive numbers"):
        GenerativeMix(make_generator(), mean=MEAN, std=(0.0,))
    mix = GenerativeMix(make_generator(), mean=MEAN, std=STD)
    with pytest.raises(GenaugError, match="expects normalised float images"):
        mix(torch.zeros(2, 1, 16, 16, dtype=torch.uint8), torch.arange(2))
