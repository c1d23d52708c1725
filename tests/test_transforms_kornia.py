"""The Kornia adapter: a native kornia.augmentation augmentation, with real Kornia pipelines."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import check_transform, kornia_host, make_generator, single_thread  # noqa: F401

from genaug import GenaugError
from genaug.train import TrainConfig, train

K = pytest.importorskip("kornia.augmentation")
from genaug.transforms.kornia import (  # noqa: E402
    KorniaGenerativeAugment,
    RandomGenerativeAugment,
)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A real unconditional test_vae, trained by genaug.train on digits at 16 px (a few s)."""
    config = TrainConfig(
        model="test_vae",
        data="digits",
        out=str(tmp_path_factory.mktemp("kornia") / "vae"),
        image_size=16,
        steps=12,
        batch_size=32,
        checkpoint_every=12,
        log_every=6,
        device="cpu",
        progress=False,
        unlabeled=True,
    )
    return train(config).checkpoint


def _images(n: int = 6, channels: int = 3, size: int = 12, dtype=torch.float32, seed: int = 0):
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size + 2, generator=rng).to(dtype)  # not square


def _changed(out: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return (out != images).flatten(1).any(1)


# ---------------------------------------------------------------------- the shared check
@pytest.mark.parametrize("mode", ["perturb", "resample", "interpolate", "neighbour"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_check_transform_every_mode(checkpoint, mode, dtype):
    host = kornia_host()
    transform = host.build(checkpoint, mode, 0.5, 0)
    sample = (_images(6, 3, 12, dtype, seed=1), None)  # RGB into a gray 16 px generator, 12 px
    out, _ = check_transform(host, transform, sample)
    changed = _changed(out, sample[0])
    assert changed.any(), "the transform left every image as it was"
    # Kornia's per-image gate decides which images change, and only those.
    out = transform(sample[0])
    assert torch.equal(_changed(out, sample[0]), transform.last_params["batch_prob"] > 0.5)


# ---------------------------------------------------------------------- Kornia pipelines
def test_runs_inside_augmentation_sequential_and_replays(checkpoint):
    generative = KorniaGenerativeAugment(checkpoint, p=1.0)
    pipeline = K.AugmentationSequential(
        K.RandomAffine(degrees=15, p=1.0),
        generative,
        K.ColorJitter(0.2, 0.2, p=1.0),
        data_keys=["input", "label"],
    )
    images, labels = _images(), torch.arange(6)
    out, out_labels = pipeline(images, labels)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert torch.equal(out_labels, labels)
    assert set(generative.last_params) >= {"noise", "batch_prob"}
    again, _ = pipeline(images, labels, params=pipeline._params)
    assert torch.equal(again, out)
    # Without the generative step the same draws of the others give another result.
    assert not torch.equal(pipeline[0](images, params=pipeline[0]._params), out)


def test_global_seed_repeats_like_every_kornia_augmentation(checkpoint):
    aug = KorniaGenerativeAugment(checkpoint, p=0.5)
    images = _images(8)
    torch.manual_seed(3)
    first = aug(images)
    torch.manual_seed(3)
    assert torch.equal(aug(images), first)
    torch.manual_seed(4)
    assert not torch.equal(aug(images), first)


def test_params_replay_exactly_and_mismatched_params_are_refused(checkpoint):
    aug = KorniaGenerativeAugment(checkpoint, p=0.5)
    images = _images(6)
    out = aug(images)
    params = aug.last_params
    for _ in range(2):
        assert torch.equal(aug(images, params=params), out)
    with pytest.raises(GenaugError, match="drawn for 6 images but the batch holds 4"):
        aug(images[:4], params=params)


def test_parameters_are_drawn_before_and_apart_from_the_pixels(checkpoint):
    aug = KorniaGenerativeAugment(checkpoint, mode="interpolate", p=1.0)
    torch.manual_seed(0)
    params = aug.forward_parameters(torch.Size((5, 1, 16, 16)))
    latent = aug.generator.latent_dim
    assert params["noise"].shape == (5, latent) and params["partner"].shape == (5,)
    assert params["mix"].shape == (5,) and params["batch_prob"].shape == (5,)
    images = _images(5, channels=1, size=16)
    assert torch.equal(aug(images, params=params), aug(images, params=params))


# ---------------------------------------------------------------------- per-image draws
def test_same_on_batch_false_draws_per_image_and_true_shares_one_draw(checkpoint):
    images = _images(8)
    own = KorniaGenerativeAugment(checkpoint, p=0.5)
    torch.manual_seed(1)
    own(images)
    noise = own.last_params["noise"]
    assert len({tuple(row.tolist()) for row in noise}) == 8  # every image its own noise
    gate = own.last_params["batch_prob"]
    assert 0 < gate.sum() < 8  # and its own p decision

    shared = KorniaGenerativeAugment(checkpoint, p=0.5, same_on_batch=True)
    decisions = set()
    for seed in range(6):
        torch.manual_seed(seed)
        out = shared(images)
        assert torch.equal(
            shared.last_params["noise"], shared.last_params["noise"][:1].expand(8, -1)
        )
        gate = shared.last_params["batch_prob"]
        assert gate.min() == gate.max()  # one p decision for the batch
        decisions.add(float(gate[0]))
        if gate[0] > 0.5:  # one offset, from each image's own latent: outputs still differ
            assert len({out[i].sum().item() for i in range(8)}) == 8
    assert decisions == {0.0, 1.0}


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_p_zero_keeps_and_p_one_changes_every_image(checkpoint, p):
    images = _images(6)
    out = KorniaGenerativeAugment(checkpoint, p=p)(images)
    assert bool(_changed(out, images).all()) is (p == 1.0)
    assert bool(_changed(out, images).any()) is (p == 1.0)


# ---------------------------------------------------------------------- Kornia's conventions
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_keeps_dtype_and_device(checkpoint, dtype):
    images = _images(4, dtype=dtype)
    out = KorniaGenerativeAugment(checkpoint, p=1.0)(images)
    assert out.dtype == dtype and out.device == images.device and out.shape == images.shape
    assert not torch.equal(out, images)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_the_generator_there(checkpoint):
    aug = KorniaGenerativeAugment(checkpoint, p=1.0).to("cuda")
    images = _images(8).cuda().contiguous(memory_format=torch.channels_last)
    out = aug(images)
    assert out.device == images.device and out.dtype == images.dtype
    assert torch.equal(aug(images, params=aug.last_params), out)


def test_unbatched_input_is_promoted_and_keepdim_gives_it_back(checkpoint):
    image = _images(1)[0]  # (C, H, W)
    assert KorniaGenerativeAugment(checkpoint, p=1.0)(image).shape == (1, *image.shape)
    assert KorniaGenerativeAugment(checkpoint, p=1.0, keepdim=True)(image).shape == image.shape
    gray = image[0]  # (H, W)
    assert KorniaGenerativeAugment(checkpoint, p=1.0)(gray).shape == (1, 1, *gray.shape)


def test_integer_and_five_dimensional_input_raise_as_kornia_does(checkpoint):
    aug = KorniaGenerativeAugment(checkpoint, p=1.0)
    uint8 = (_images(2) * 255).to(torch.uint8)
    with pytest.raises(TypeError) as ours:
        aug(uint8)
    with pytest.raises(TypeError) as theirs:
        K.ColorJitter(0.1, p=1.0)(uint8)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="shape"):
        aug(_images(2).unsqueeze(0))


def test_empty_batch_gives_an_empty_output(checkpoint):
    out = KorniaGenerativeAugment(checkpoint, p=1.0)(torch.rand(0, 3, 8, 8))
    assert out.shape == (0, 3, 8, 8)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.rand(2, 4, 8, 8), "4 channels"),
        (torch.rand(2, 3, 8, 8) * 255, r"float images in \[0, 1\]"),
    ],
)
def test_bad_pixels_name_the_problem(checkpoint, images, message):
    with pytest.raises(GenaugError, match=message):
        KorniaGenerativeAugment(checkpoint, p=1.0)(images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 1.5}, "p must lie in"),
        ({"p_batch": "half"}, "p_batch must be a number"),
        ({"same_on_batch": 1}, "same_on_batch must be True or False"),
        ({"mode": "warp"}, "Unknown generative mode"),
        ({"mode": "neighbour"}, "neighbours"),
    ],
)
def test_bad_settings_are_refused_at_construction(checkpoint, kwargs, message):
    with pytest.raises(GenaugError, match=message):
        KorniaGenerativeAugment(checkpoint, **kwargs)


# ---------------------------------------------------------------------- labels
def test_conditional_generator_takes_labels_at_the_call_or_around_a_pipeline():
    aug = KorniaGenerativeAugment(make_generator(num_classes=10), mode="interpolate", p=1.0)
    images, labels = _images(8, channels=1, size=16), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    unlabelled = aug(images)  # no labels: the generator conditions on the classes it infers
    assert "labels" not in aug.last_params
    assert torch.equal(aug(images, params=aug.last_params), unlabelled)
    out = aug(images, labels=labels)
    assert torch.equal(aug.last_params["labels"], labels)
    partner = aug.last_params["partner"]
    assert torch.equal(labels[partner], labels)  # interpolation stays within the class
    assert torch.equal(aug(images, params=aug.last_params), out)  # the params carry the labels

    pipeline = K.AugmentationSequential(K.RandomHorizontalFlip(p=1.0), aug)
    with aug.use_labels(labels.tolist()):
        flipped = pipeline(images)
    assert aug._labels is None  # the labels belong to the block only
    assert torch.equal(pipeline(images, params=pipeline._params), flipped)
    with pytest.raises(GenaugError, match="3 labels for 8 images"):
        aug(images, labels=labels[:3])


def test_unconditional_generator_needs_no_labels_in_a_pipeline(checkpoint):
    pipeline = K.AugmentationSequential(KorniaGenerativeAugment(checkpoint, p=1.0))
    out = pipeline(_images(4))
    assert _changed(out, _images(4)).all()


# ---------------------------------------------------------------------- packaging
def test_alias_repr_and_optional_import():
    assert RandomGenerativeAugment is KorniaGenerativeAugment
    aug = KorniaGenerativeAugment(make_generator(num_classes=0), strength=0.5, p=0.3)
    assert repr(aug).startswith("KorniaGenerativeAugment(mode='perturb', strength=0.5, p=0.3")
    code = (
        "import sys, genaug, genaug.transforms; "
        "assert 'genaug.transforms.kornia' not in sys.modules and 'kornia' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
