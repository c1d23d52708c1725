"""The inference shortcuts of the per-sample path (issue 25) compute what the plain path does.

- A conditional encoder in inference convolves the image channels and adds its class's
  precomputed map instead of convolving the label planes (``conditioned_features``).
- One image on the CPU runs with PyTorch's native convolutions (``single_image_cpu_kernels``).
- An image alone is convolved once by the encoder's first layer, for the class head and the
  conditional pass both.
- Per-image draws fill one tensor row by row, drawing what one-image calls draw in turn.
- The bench's classifier can take AdamW as one fused kernel (``fused_adamw``; the demo does).
"""

from __future__ import annotations

import pytest
import torch

from genaug.bench.learn.classifier import _optimiser, create_classifier
from genaug.bench.plan.classifier_config import ClassifierConfig
from genaug.bench.report.protocol import protocol_bullets
from genaug.demo import demo_config
from genaug.device import single_image_cpu_kernels
from genaug.models import create_generator
from genaug.transforms.torchvision import TorchvisionGenerativeAugment


@pytest.mark.parametrize("family", ["test_vae", "test_cgan"])
def test_the_class_map_shortcut_encodes_as_the_concatenated_input(family):
    torch.manual_seed(0)
    model = create_generator(family, image_size=16, channels=3, num_classes=5).eval()
    images, labels = torch.rand(6, 3, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0])
    with torch.enable_grad():  # training's path: the label planes concatenated and convolved
        plain = model.encode(images, labels).mean.detach()
    with torch.inference_mode():  # the shortcut: image channels + the class's map
        fast = model.encode(images, labels).mean
        last = images.contiguous(memory_format=torch.channels_last)
        fast_last = model.encode(last, labels).mean
    assert any(hasattr(m, "_genaug_class_planes") for m in model.modules())  # it took it
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast_last, plain, rtol=1e-5, atol=1e-6)
    assert not torch.equal(fast, model.encode(images, (labels + 1) % 5).mean.detach())


def test_the_class_maps_follow_the_weights():
    """Maps kept from before a weight change are not used after it."""
    torch.manual_seed(0)
    model = create_generator("test_vae", image_size=16, channels=1, num_classes=4).eval()
    images, labels = torch.rand(3, 1, 16, 16), torch.tensor([0, 1, 3])
    with torch.no_grad():
        model.encode(images, labels)  # builds the maps
        first = next(m for m in model.encoder if isinstance(m, torch.nn.Conv2d))
        first.weight.add_(0.5)  # a changed weight (as an optimiser step or a load would)
        fast = model.encode(images, labels).mean
    with torch.enable_grad():
        plain = model.encode(images, labels).mean.detach()
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)


def test_one_image_on_the_cpu_uses_native_kernels_and_restores_the_setting():
    cpu = torch.device("cpu")
    assert torch.backends.mkldnn.enabled
    with single_image_cpu_kernels(cpu, 1, float32=True):
        assert not torch.backends.mkldnn.enabled
    assert torch.backends.mkldnn.enabled
    for images, float32 in [(2, True), (1, False)]:  # a batch, or bfloat16: left alone
        with single_image_cpu_kernels(cpu, images, float32=float32):
            assert torch.backends.mkldnn.enabled
    with pytest.raises(ValueError), single_image_cpu_kernels(cpu, 1, float32=True):
        raise ValueError("an error inside")
    assert torch.backends.mkldnn.enabled  # restored on the way out of an error too


def test_a_per_sample_call_gives_what_the_batch_gives_that_image(tmp_path):
    """One image alone (native kernels, the class map, its inferred class) against the same
    image in a batch of the same seed's per-image draws: equal up to uint8 rounding."""
    from genaug import GenerativeAugment, save_generator

    torch.manual_seed(0)
    model = create_generator("test_vae", image_size=16, channels=3, num_classes=4)
    path = save_generator(model, tmp_path / "vae")
    per_sample = TorchvisionGenerativeAugment(path, p=1.0, seed=2)
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    alone = torch.stack([per_sample(image) for image in images])
    core = GenerativeAugment(path, p=1.0, seed=2)
    params = core.make_params(images, per_image=True)
    batched = core(images, params=params)
    assert (alone.int() - batched.int()).abs().max() <= 1
    assert torch.backends.mkldnn.enabled


@pytest.mark.parametrize("family", ["test_vae", "test_cgan"])
def test_an_image_alone_is_convolved_once_for_its_class_and_its_encoding(family, monkeypatch):
    from genaug.models import labels

    torch.manual_seed(0)
    model = create_generator(family, image_size=16, channels=3, num_classes=5).eval()
    images = torch.rand(3, 1, 3, 16, 16)
    with torch.inference_mode():  # the transform's order: the class, then the encoding
        plain = [model.encode(x, model.infer_labels(x)).mean for x in images]
    calls = []
    image_conv = labels._image_conv
    monkeypatch.setattr(labels, "_image_conv", lambda *a: calls.append(1) or image_conv(*a))
    for x, expected in zip(images, plain):
        with torch.inference_mode():
            classes = model.infer_labels(x)
            assert torch.equal(model.encode(x, classes).mean, expected)
    assert len(calls) == 3  # one first convolution per image, not two
    with torch.no_grad():  # new weights: what was kept is not reused
        model.encoder.apply(lambda m: m.weight.mul_(2) if type(m) is torch.nn.Conv2d else None)
    with torch.inference_mode():
        changed = model.encode(images[-1], classes).mean
    with torch.enable_grad():
        assert torch.allclose(changed, model.encode(images[-1], classes).mean, atol=1e-5)
    assert not torch.allclose(changed, plain[-1], atol=1e-3)


@pytest.mark.parametrize(("latent", "chain"), [(8, 1), (20, 1), (32, 1), (32, 3)])
def test_per_image_draws_are_the_draws_of_one_image_calls_in_turn(latent, chain):
    from genaug.transforms._params import _draw

    # Latents under 16, over 16 and not a multiple of it, and chains: torch's normal sampler
    # takes a different path for each, and the rows filled in place must follow every one.
    rng = torch.Generator().manual_seed(3)
    batched = _draw_rows_of(latent, chain, rng)
    rng = torch.Generator().manual_seed(3)
    singles = [_draw("vary", 0.5, 1, latent, None, None, rng, chain) for _ in range(7)]
    assert torch.equal(batched["apply"], torch.cat([one["apply"] for one in singles]))
    assert torch.equal(batched["noise"], torch.cat([one["noise"] for one in singles]))
    assert batched["apply"].any() and not batched["apply"].all()  # p = 0.5 drew both


def _draw_rows_of(latent: int, chain: int, rng: torch.Generator) -> dict[str, torch.Tensor]:
    from genaug.transforms._inputs import Prepared
    from genaug.transforms._params import draw_params

    model = create_generator("test_vae", image_size=16, channels=1, latent_dim=latent)
    images = torch.zeros(7, 1, 16, 16)
    prepared = Prepared(images, images, None, model, torch.device("cpu"))
    return draw_params("vary", 0.5, prepared, None, rng, chain, per_image=True)


def test_fused_adamw_is_a_setting_the_demo_uses():
    model = create_classifier("resnet10t", in_chans=1, num_classes=3, image_size=32, seed=0)
    plain, _ = _optimiser(model, ClassifierConfig())
    fused, _ = _optimiser(model, ClassifierConfig(fused_adamw=True))
    assert plain.defaults["foreach"] and not plain.defaults["fused"]
    assert fused.defaults["fused"]
    config = demo_config()
    assert config.fused_adamw and config.classifier().fused_adamw
    assert any("fused AdamW" in line for line in protocol_bullets(config.to_dict()))
