"""Every registered generator meets the same contract (parametrised over the registry)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from helpers import tiny_extractor_spec

from genaug import GenaugError, create_generator, list_generators
from genaug.models import Generator, register
from genaug.models.base import validate_image_size

TEST_MODELS = list_generators("test_")
#: Families that draw images from latents; image-conditioned ones (DAGAN) vary given images;
#: feature-space ones (the hallucinator) make features of a frozen extractor, no images.
SAMPLING_MODELS = [
    n
    for n in TEST_MODELS
    if not create_generator(n).image_conditioned and not create_generator(n).feature_space
]
VARYING_MODELS = [n for n in TEST_MODELS if create_generator(n).image_conditioned]
FEATURE_MODELS = [n for n in TEST_MODELS if create_generator(n).feature_space]


def test_registry_lists_families_and_test_variants():
    names = list_generators()
    assert "vae" in names and "test_vae" in names
    assert TEST_MODELS, "every family needs a tiny test_ variant"


def test_duplicate_registration_raises():
    def vae(**kwargs):  # same name as the registered builder
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="already registered"):
        register(vae)


def test_unknown_generator_lists_valid_names():
    with pytest.raises(GenaugError, match="Unknown generator 'vea'.*Did you mean vae"):
        create_generator("vea")


def test_none_overrides_keep_defaults():
    model = create_generator("vae", latent_dim=None, width=None)
    assert model.latent_dim == 32 and model.config["width"] == 32


@pytest.mark.parametrize("size", [0, 8, 24, 256, 33, "32"])
def test_image_size_must_be_power_of_two_in_range(size):
    with pytest.raises(GenaugError, match="power of two"):
        validate_image_size(size)


@pytest.mark.parametrize("name", SAMPLING_MODELS)
@pytest.mark.parametrize("size", [16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_sample_shapes_and_range(name, size, channels):
    model = create_generator(name, image_size=size, channels=channels, num_classes=3).eval()
    assert isinstance(model, Generator)
    images = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, channels, size, size)
    assert images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("name", SAMPLING_MODELS)
def test_sampling_is_deterministic_for_a_seed(name):
    model = create_generator(name, image_size=16, num_classes=4).eval()
    labels = torch.tensor([0, 1, 2, 3])
    a = model.sample(4, labels, generator=torch.Generator().manual_seed(7))
    b = model.sample(4, labels, generator=torch.Generator().manual_seed(7))
    c = model.sample(4, labels, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", SAMPLING_MODELS)
def test_conditioning_changes_the_image(name):
    model = create_generator(name, image_size=16, num_classes=4).eval()
    z = torch.randn(1, model.latent_dim).repeat(2, 1)
    images = model.decode(z, torch.tensor([0, 3]))
    assert not torch.allclose(images[0], images[1])


@pytest.mark.parametrize("name", SAMPLING_MODELS)
def test_labels_are_checked(name):
    model = create_generator(name, image_size=16, num_classes=4).eval()
    with pytest.raises(GenaugError, match=r"Labels must lie in \[0, 3\]"):
        model.sample(2, labels=torch.tensor([0, 4]))
    with pytest.raises(GenaugError, match="one per image"):
        model.sample(3, labels=torch.tensor([0, 1]))


@pytest.mark.parametrize("name", VARYING_MODELS)
@pytest.mark.parametrize("size", [16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_vary_shapes_range_and_seed(name, size, channels):
    model = create_generator(name, image_size=size, channels=channels).eval()
    images = torch.rand(4, channels, size, size)
    varied = model.vary(images, generator=torch.Generator().manual_seed(0))
    assert varied.shape == images.shape and varied.dtype == torch.float32
    assert varied.min() >= 0 and varied.max() <= 1
    assert torch.equal(varied, model.vary(images, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(varied, model.vary(images, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("name", TEST_MODELS)
def test_encoder_contract(name):
    model = create_generator(name, image_size=16, num_classes=2).eval()
    x = torch.rand(3, 1, 16, 16)
    labels = torch.tensor([0, 1, 0])
    if model.has_encoder:
        encoding = model.encode(x, labels)
        assert encoding.mean.shape == (3, model.latent_dim)
        assert encoding.scale.shape == (3, model.latent_dim)
        assert (encoding.scale > 0).all()
        assert model.decode(encoding.mean, labels).shape == x.shape
    else:
        with pytest.raises(GenaugError, match="no encoder"):
            model.encode(x, labels)


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_feature_families_hallucinate_and_make_no_images(name):
    model = create_generator(name, image_size=16, extractor=tiny_extractor_spec()).eval()
    features = torch.rand(3, model.feature_dim)
    made = model.hallucinate(features, 4, generator=torch.Generator().manual_seed(0))
    assert made.shape == (12, model.feature_dim) and made.dtype == torch.float32
    assert torch.equal(
        made, model.hallucinate(features, 4, generator=torch.Generator().manual_seed(0))
    )
    for call in (lambda: model.sample(2), lambda: model.vary(torch.rand(2, 1, 16, 16))):
        with pytest.raises(GenaugError, match="makes features, not images"):
            call()


@pytest.mark.parametrize("name", TEST_MODELS)
def test_one_training_step_lowers_nothing_to_nan(name):
    extra = {"extractor": tiny_extractor_spec()} if name in FEATURE_MODELS else {}
    model = create_generator(name, image_size=16, num_classes=2, **extra).train()
    optimizers = model.create_optimizers(model.default_lr)
    before = [p.detach().clone() for p in model.parameters()]
    images, labels = torch.rand(8, 1, 16, 16), torch.randint(0, 2, (8,))
    # A pair family takes, with each image, another of its class (here: any other image).
    pairs = {"partners": images.roll(1, 0)} if model.trains_on_pairs else {}
    losses = model.training_step(images, labels, optimizers, contextlib.nullcontext, **pairs)
    assert losses and all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("bad", [dict(channels=2), dict(num_classes=1), dict(latent_dim=0)])
def test_bad_constructor_arguments(bad):
    with pytest.raises(GenaugError):
        create_generator("test_vae", **bad)
