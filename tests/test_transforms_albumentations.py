"""The Albumentations adapter: labels by key, seeding, composition and serialisation."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401

from genaug import GenaugError, load_generator, save_generator

A = pytest.importorskip("albumentations")
from genaug.transforms.albumentations import AlbumentationsGenerativeAugment  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_generator(make_generator(num_classes=10), tmp_path_factory.mktemp("ckpt") / "vae")


def _image(shape=(16, 16, 3), dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape, dtype=np.float32)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((16, 16, 3), np.uint8),
        ((20, 12, 1), np.float32),
        ((16, 16), np.uint8),
        ((8, 8, 3), np.float32),
    ],
)
def test_compose_with_a_label_key_keeps_shape_dtype_and_label(checkpoint, shape, dtype):
    pipeline = A.Compose([AlbumentationsGenerativeAugment(checkpoint, p=1.0)], seed=0)
    image = _image(shape, dtype)
    out = pipeline(image=image, label=3)
    assert out["label"] == 3
    assert out["image"].shape == image.shape and out["image"].dtype == image.dtype
    assert not np.array_equal(out["image"], image)
    assert np.array_equal(image, _image(shape, dtype))  # the input was not written to


def test_compose_seed_repeats_and_other_seeds_differ(checkpoint):
    def run(seed):
        pipeline = A.Compose([AlbumentationsGenerativeAugment(checkpoint, p=0.5)], seed=seed)
        return [pipeline(image=_image(seed=k), label=k)["image"] for k in range(8)]

    first = run(0)
    assert all(np.array_equal(a, b) for a, b in zip(first, run(0)))
    assert not all(np.array_equal(a, b) for a, b in zip(first, run(1)))
    changed = [not np.array_equal(out, _image(seed=k)) for k, out in enumerate(first)]
    assert 0 < sum(changed) < 8  # p=0.5 per call


def test_one_of_and_some_of_beside_classic_transforms(checkpoint):
    generative = AlbumentationsGenerativeAugment(checkpoint, strength=0.5, p=1.0)
    pipeline = A.Compose(
        [
            A.OneOf([generative, A.RandomBrightnessContrast(p=1.0)], p=1.0),
            A.SomeOf([generative, A.HorizontalFlip(p=1.0), A.GaussNoise(p=1.0)], n=2, p=1.0),
        ],
        seed=0,
    )
    for k in range(4):
        out = pipeline(image=_image(seed=k), label=k)
        assert out["image"].shape == (16, 16, 3) and out["label"] == k


@pytest.mark.parametrize("data_format", ["json", "yaml"])
def test_save_and_load_round_trip_stores_the_path_never_weights(checkpoint, tmp_path, data_format):
    pipeline = A.Compose(
        [A.HorizontalFlip(p=0.5), AlbumentationsGenerativeAugment(checkpoint, mode="auto", p=0.7)],
        seed=0,
    )
    as_dict = A.to_dict(pipeline)
    stored = as_dict["transform"]["transforms"][1]
    assert stored["generator"] == str(checkpoint) and stored["mode"] == "perturb"
    assert stored["__class_fullname__"].endswith("AlbumentationsGenerativeAugment")
    json.dumps(as_dict)  # plain data only
    path = tmp_path / f"pipeline.{data_format}"
    A.save(pipeline, str(path), data_format=data_format)
    assert path.stat().st_size < 2_000
    loaded = A.load(str(path), data_format=data_format)
    assert A.to_dict(loaded) == as_dict
    rebuilt = A.from_dict(as_dict)
    for other in (loaded, rebuilt):
        other.set_random_seed(0)
        pipeline.set_random_seed(0)
        for k in range(3):
            a = pipeline(image=_image(seed=k), label=k)["image"]
            b = other(image=_image(seed=k), label=k)["image"]
            assert np.array_equal(a, b)


def test_an_in_memory_generator_works_but_refuses_to_serialise():
    transform = AlbumentationsGenerativeAugment(make_generator(), p=1.0)
    assert "in-memory vae generator" in repr(transform)
    out = A.Compose([transform], seed=0)(image=_image(), label=1)["image"]
    assert out.shape == (16, 16, 3)
    with pytest.raises(GenaugError, match="lives only in memory.*save_generator"):
        A.to_dict(transform)
    clone = pickle.loads(pickle.dumps(transform))
    replayed = clone.apply_with_params(transform.last_params, image=_image())["image"]
    assert np.array_equal(replayed, out)


@pytest.mark.parametrize("data_format", ["json", "yaml"])
def test_a_loaded_generator_saves_as_the_checkpoint_it_came_from(checkpoint, tmp_path, data_format):
    """A pipeline built from load_generator(path) round-trips through A.save / A.load."""
    model = load_generator(checkpoint)
    pipeline = A.Compose([AlbumentationsGenerativeAugment(model, p=1.0, strength=0.5)], seed=0)
    path = tmp_path / f"pipeline.{data_format}"
    A.save(pipeline, str(path), data_format=data_format)
    loaded = A.load(str(path), data_format=data_format)
    stored = A.to_dict(loaded)["transform"]["transforms"][0]
    assert stored["generator"] == str(checkpoint) and stored["strength"] == 0.5
    pipeline.set_random_seed(0)
    loaded.set_random_seed(0)
    for k in range(3):
        a = pipeline(image=_image(seed=k), label=k)["image"]
        b = loaded(image=_image(seed=k), label=k)["image"]
        assert np.array_equal(a, b) and not np.array_equal(a, _image(seed=k))
    with torch.no_grad():  # changed since it was loaded: no longer that checkpoint
        next(model.parameters()).add_(1.0)
    with pytest.raises(GenaugError, match="lives only in memory.*changed since"):
        A.to_dict(pipeline)


def test_a_pickled_path_transform_carries_no_weights(checkpoint):
    transform = AlbumentationsGenerativeAugment(checkpoint, p=1.0)
    A.Compose([transform], seed=0)(image=_image(), label=2)  # loads the weights
    assert len(pickle.dumps(transform)) < 20_000 < len(pickle.dumps(make_generator()))


def test_batched_images_key_is_one_generator_call(checkpoint):
    transform = AlbumentationsGenerativeAugment(checkpoint, p=1.0)
    images = np.stack([_image(seed=k) for k in range(4)])
    out = A.Compose([transform], seed=0)(images=images, label=[0, 1, 2, 3])
    assert out["images"].shape == images.shape and out["images"].dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image": _image(), "label": 10}, "labels from 10 to 10"),
        ({"image": _image().astype(np.float64), "label": 1}, "uint8 or float32 image, got float64"),
        ({"image": _image((16, 16, 3, 1)), "label": 1}, r"shaped \(H, W, C\) or \(H, W\)"),
        ({"image": _image((16, 16, 4)), "label": 1}, "4 channels"),
        ({"image": np.full((8, 8, 3), np.nan, np.float32), "label": 1}, "NaN"),
    ],
)
def test_bad_input_is_a_clear_error(checkpoint, kwargs, match):
    transform = AlbumentationsGenerativeAugment(checkpoint, p=1.0)
    with pytest.raises(GenaugError, match=match):
        transform(**kwargs)


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(GenaugError, match="No checkpoint at"):
        AlbumentationsGenerativeAugment(tmp_path / "missing")
    with pytest.raises(GenaugError, match="needs a genaug Generator or a checkpoint path, got int"):
        AlbumentationsGenerativeAugment(3)
    with pytest.raises(GenaugError, match="label_key must be a non-empty string"):
        AlbumentationsGenerativeAugment(make_generator(), label_key="")


@pytest.mark.slow
def test_import_genaug_works_without_albumentations():
    code = (
        "import sys; sys.modules['albumentations'] = None\n"
        "import genaug\n"
        "assert genaug.GenerativeAugment and genaug.TorchvisionGenerativeAugment\n"
        "try:\n"
        "    genaug.AlbumentationsGenerativeAugment\n"
        "except ImportError as exc:\n"
        "    assert 'pip install genaug[albumentations]' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('albumentations adapter imported without albumentations')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
