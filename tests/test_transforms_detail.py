"""``detail``: the generator's change moved onto the real image, keeping what it cannot draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401

from genaug.bench.plan.recipes import parse_condition
from genaug.data import load_dataset
from genaug.errors import GenaugError
from genaug.transforms import GenerativeAugment, NeighbourWalk
from genaug.transforms import functional as F

ENCODER_MODES = ("perturb", "interpolate", "neighbour")


@pytest.fixture(scope="module")
def digits32():
    return load_dataset("digits", image_size=32)


def _augment(model, mode: str, bank, **kwargs) -> GenerativeAugment:
    neighbours = bank if mode == "neighbour" else None
    return GenerativeAugment(model, mode=mode, neighbours=neighbours, seed=0, **kwargs)


@pytest.mark.parametrize("mode", ENCODER_MODES)
def test_full_detail_and_no_change_give_back_the_image_at_its_own_resolution(mode, digits32):
    # A 16 px generator on 32 px digits: detail=1 keeps the 32 px pixels exactly, where
    # detail=0 outputs the generator's (upsampled, blurry) reconstruction.
    model = make_generator("test_vae", num_classes=0, size=16)
    images, bank = digits32.images[:8], digits32.images[100:300]
    kept = _augment(model, mode, bank, p=1.0, strength=0.0, detail=1.0)(images)
    assert kept.dtype == torch.uint8 and torch.equal(kept, images)
    floats = images.float() / 255
    torch.testing.assert_close(
        _augment(model, mode, bank, p=1.0, strength=0.0, detail=1.0)(floats), floats
    )
    redrawn = _augment(model, mode, bank, p=1.0, strength=0.0, detail=0.0)(images)
    assert (redrawn.float() - images.float()).abs().mean() > 5  # the reconstruction differs


@pytest.mark.parametrize("mode", ["perturb", "interpolate"])
def test_the_output_is_the_generated_image_plus_the_share_of_detail_asked_for(mode, digits32):
    model = make_generator("test_vae", num_classes=0, size=16)
    images = load_dataset("digits", image_size=16).images[:6].float() / 255
    bank = digits32.images[100:300]
    plain = _augment(model, mode, bank, p=1.0, strength=1.0)
    params = plain.make_params(images)
    generated = plain(images, params=params)
    half = _augment(model, mode, bank, p=1.0, strength=1.0, detail=0.5)
    with torch.inference_mode():
        reconstruction = model.decode(model.encode(images, None).mean, None)
    expected = (generated + 0.5 * (images - reconstruction)).clamp(0, 1)
    torch.testing.assert_close(half(images, params=params), expected, atol=1e-5, rtol=0)


def test_a_walk_carries_detail_from_the_image_toward_the_bank_image_it_reaches():
    # detail * ((1 - t) * (image - its reconstruction) + t * (bank image - its reconstruction))
    model = make_generator("test_vae", num_classes=0, size=16)
    digits16 = load_dataset("digits", image_size=16)
    images, bank = digits16.images[:6].float() / 255, digits16.images[100:300]
    nearest = NeighbourWalk(bank, k=1)
    walk = GenerativeAugment(model, mode="neighbour", neighbours=nearest, p=1.0)
    half = GenerativeAugment(model, mode="neighbour", neighbours=nearest, p=1.0, detail=0.5)
    params = walk.make_params(images)
    generated = walk(images, params=params)
    latents = half.bank.latents
    with torch.inference_mode():
        z = model.encode(images, None).mean
        target = F.nearest_latents(z, None, latents, None, 1)[0][:, 0]  # (B,) the nearest
        reconstruction = model.decode(z, None)
        target_reconstruction = model.decode(latents[target], None)
    t = params["mix"].view(-1, 1, 1, 1)  # strength 1
    own = images - reconstruction
    borrowed = bank[target].float() / 255 - target_reconstruction
    expected = (generated + 0.5 * ((1 - t) * own + t * borrowed)).clamp(0, 1)
    torch.testing.assert_close(half(images, params=params), expected, atol=1e-5, rtol=0)
    # The whole walk with all the detail lands on the real bank image itself.
    full = GenerativeAugment(
        model,
        mode="neighbour",
        neighbours=NeighbourWalk(bank, k=1, walk="whole"),
        p=1.0,
        detail=1.0,
    )
    torch.testing.assert_close(full(images), bank[target].float() / 255, atol=1e-5, rtol=0)


def test_kernels_return_the_same_image_and_its_reconstruction_with_reconstruct(digits32):
    model = make_generator("test_vae", num_classes=3, size=16)
    images = load_dataset("digits", image_size=16).images[:5].float() / 255
    labels = torch.tensor([0, 1, 2, 0, 1])
    noise = torch.randn(5, model.latent_dim)
    with torch.inference_mode():
        alone = F.perturb(model, images, labels, noise, 1.0)
        both = F.perturb(model, images, labels, noise, 1.0, reconstruct=True)
        expected = model.decode(model.encode(images, labels).mean, labels)
    assert alone.reconstruction is None and both.borrowed is None  # one type, what was asked
    torch.testing.assert_close(both.images, alone.images, atol=1e-5, rtol=0)
    torch.testing.assert_close(both.reconstruction, expected, atol=1e-5, rtol=0)


def test_detail_is_refused_where_there_is_no_image_to_keep():
    model = make_generator("test_vae", num_classes=0)
    with pytest.raises(GenaugError, match="mode 'resample'"):
        GenerativeAugment(model, mode="resample", detail=1.0)
    with pytest.raises(GenaugError, match="detail"):
        GenerativeAugment(model, mode="perturb", detail=1.5)
    gan = make_generator("test_gan", num_classes=2)
    with pytest.raises(GenaugError, match="mode 'resample'"):
        GenerativeAugment(gan, detail=0.5)  # auto -> resample: a GAN has no encoder


def test_the_adapters_pass_detail_through(tmp_path, digits32):
    A = pytest.importorskip("albumentations")
    from genaug.models import save_generator
    from genaug.transforms import GenerativeMix
    from genaug.transforms.albumentations import AlbumentationsGenerativeAugment
    from genaug.transforms.torchvision import TorchvisionGenerativeAugment

    save_generator(make_generator("test_vae", num_classes=0), tmp_path / "vae")
    images = digits32.images[:4]
    for cls in (TorchvisionGenerativeAugment, GenerativeMix):
        aug = cls(str(tmp_path / "vae"), p=1.0, strength=0.0, detail=1.0, seed=0)
        out = aug(images, torch.zeros(4, dtype=torch.long))
        out = out[0] if isinstance(out, tuple) else out
        assert torch.equal(out, images), cls.__name__
    aug = AlbumentationsGenerativeAugment(str(tmp_path / "vae"), strength=0.0, detail=1.0, p=1.0)
    A.save(A.Compose([aug]), str(tmp_path / "pipe.yaml"), data_format="yaml")
    loaded = A.load(str(tmp_path / "pipe.yaml"), data_format="yaml").transforms[0]
    assert loaded.detail == 1.0
    image = images[0].permute(1, 2, 0).numpy()  # (H, W, 1) uint8
    np.testing.assert_array_equal(loaded(image=image)["image"], image)
    with pytest.raises(GenaugError, match="mode 'resample'"):
        AlbumentationsGenerativeAugment(str(tmp_path / "vae"), mode="resample", detail=1.0)


def test_a_bench_condition_sets_detail_inline():
    recipe = parse_condition("randaugment+vae@mode=neighbour,detail=1", ["vae"])
    assert recipe.generative is not None and recipe.generative.detail == 1.0
    assert parse_condition("randaugment+vae", ["vae"]).generative.detail == 0.0
    with pytest.raises(GenaugError, match="detail must lie in"):
        parse_condition("vae@detail=2", ["vae"])


def test_a_jittered_whole_walk_varies_the_bank_image_with_its_own_posterior_scale():
    # decode(z_b + jitter * scale_b * noise) + (b - decode(z_b)): a generated variation of the
    # real bank image b the walk reached, no longer b itself.
    model = make_generator("test_vae", num_classes=0, size=16)
    digits16 = load_dataset("digits", image_size=16)
    images, bank = digits16.images[:6].float() / 255, digits16.images[100:300]

    def walk(jitter: float) -> GenerativeAugment:
        return GenerativeAugment(
            model,
            mode="neighbour",
            neighbours=NeighbourWalk(bank, k=1, walk="whole", jitter=jitter),
            p=1.0,
            detail=1.0,
            seed=0,
        )

    plain, jittered = walk(0.0), walk(0.5)
    params = jittered.make_params(images)
    latents, scales = jittered.bank.latents, jittered.bank.scales
    assert plain.bank.scales is None and scales is not None and scales.shape == latents.shape
    with torch.inference_mode():
        encoding = model.encode(images, None)
        target = F.nearest_latents(encoding.mean, None, latents, None, 1)[0][:, 0]  # (B,)
        z = latents[target] + 0.5 * scales[target] * params["noise"]
        decoded = model.decode(torch.cat([z, latents[target]]), None)
    varied, target_reconstruction = decoded.split(6)
    real = bank[target].float() / 255
    expected = (varied + real - target_reconstruction).clamp(0, 1)
    torch.testing.assert_close(jittered(images, params=params), expected, atol=1e-5, rtol=0)
    assert (expected - real).abs().mean() > 1e-3  # no longer the real image
    torch.testing.assert_close(plain(images, params=params), real, atol=1e-5, rtol=0)
    with pytest.raises(GenaugError, match="NeighbourWalk jitter must lie in"):
        walk(1.5)
    with pytest.raises(GenaugError, match="mode 'neighbour' only"):
        GenerativeAugment(model, mode="perturb", neighbours=NeighbourWalk(bank, jitter=0.5))
    step = parse_condition("randaugment+vae@mode=neighbour,jitter=0.5", ["vae"]).generative
    assert step is not None and step.jitter == 0.5
    from genaug.transforms import GenerativeMix
    from genaug.transforms.torchvision import TorchvisionGenerativeAugment

    for cls in (TorchvisionGenerativeAugment, GenerativeMix):
        adapter = cls(model, mode="neighbour", neighbours=NeighbourWalk(bank, jitter=0.5))
        assert adapter.augment.bank.jitter == 0.5, cls.__name__
        assert "jitter=0.5" in repr(adapter.augment)
