"""Tests for genaug.data datasets and few-shot splits, on real data (no stubs)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.data import (
    FewShotSplit,
    ImageDataset,
    SkippedFileWarning,
    few_shot_split,
    list_dataset_specs,
    load_dataset,
)
from genaug.errors import GenaugError


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_dataset("digits", image_size=16)


# ---------------------------------------------------------------- digits


def test_digits_basic(digits: ImageDataset) -> None:
    assert len(digits) == 1797
    assert digits.images.shape == (1797, 1, 16, 16)
    assert digits.images.dtype == torch.uint8
    assert digits.targets.dtype == torch.int64
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.num_classes == 10
    assert (digits.image_size, digits.channels) == (16, 1)
    assert digits.has_labels
    assert sorted(torch.unique(digits.targets).tolist()) == list(range(10))
    image, label = digits[0]
    assert image.dtype == torch.float32 and image.shape == (1, 16, 16)
    assert isinstance(label, int) and label == 0
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    floats = digits.float_images()
    assert floats.shape == (1797, 1, 16, 16) and floats.dtype == torch.float32
    assert float(floats.min()) == 0.0 and float(floats.max()) == 1.0
    desc = digits.description
    assert desc["spec"] == "digits" and desc["count"] == 1797
    assert desc["image_size"] == 16 and desc["channels"] == 1
    json.dumps(desc)


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_digits_sizes_and_channels(size: int, channels: int) -> None:
    ds = load_dataset("digits", image_size=size, channels=channels)
    assert ds.images.shape == (1797, channels, size, size)
    assert ds.description["channels"] == channels
    if channels == 3:
        assert torch.equal(ds.images[:, 0], ds.images[:, 1])
        assert torch.equal(ds.images[:, 0], ds.images[:, 2])


def test_digits_native_size_downsampled() -> None:
    ds = load_dataset("digits", image_size=4)
    assert ds.images.shape == (1797, 1, 4, 4)


def test_list_dataset_specs() -> None:
    specs = list_dataset_specs()
    assert "digits" in specs and "imagefolder:PATH" in specs
    assert {"mnist:ROOT", "fashionmnist:ROOT", "cifar10:ROOT"} <= set(specs)


@pytest.mark.parametrize("size", [3, 1025, 32.0, True, "32"])
def test_bad_image_size(size: object) -> None:
    with pytest.raises(GenaugError, match="image_size must be an int between 4 and 1024"):
        load_dataset("digits", image_size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("channels", [0, 2, 4])
def test_bad_channels(channels: int) -> None:
    with pytest.raises(GenaugError, match="channels must be None"):
        load_dataset("digits", channels=channels)


@pytest.mark.parametrize("spec", ["imagenet", "digits:x", "cifar100:/tmp", ""])
def test_unknown_spec(spec: str) -> None:
    with pytest.raises(GenaugError, match="imagefolder:PATH"):
        load_dataset(spec)


def test_spec_without_folder() -> None:
    with pytest.raises(GenaugError, match="write it as mnist:ROOT"):
        load_dataset("mnist:")


# ---------------------------------------------------------------- ImageDataset


def test_subset_and_without_labels(digits: ImageDataset) -> None:
    sub = digits.subset([5, 0, 7])
    assert len(sub) == 3
    assert torch.equal(sub.images[1], digits.images[0])
    assert sub.targets.tolist() == [digits.targets[i].item() for i in (5, 0, 7)]
    assert sub.description["subset"] is True and sub.description["count"] == 3
    assert digits.description["count"] == 1797  # parent untouched
    hidden = sub.without_labels()
    assert hidden.targets.tolist() == [-1, -1, -1]
    assert not hidden.has_labels and hidden.num_classes == 10
    assert sub.has_labels
    assert hidden[0][1] == -1
    with pytest.raises(GenaugError, match="subset indices"):
        digits.subset([1797])


def test_image_dataset_validation() -> None:
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    targets = torch.tensor([0, 1, 0, 1])
    ds = ImageDataset(images, targets, ["a", "b"])
    assert ds.description["spec"] == "custom" and ds.description["count"] == 4
    with pytest.raises(GenaugError, match="to_uint8_images"):
        ImageDataset(images.float(), targets, ["a", "b"])
    with pytest.raises(GenaugError, match=r"\(N, C, H, W\)"):
        ImageDataset(images[0], targets, ["a", "b"])
    with pytest.raises(GenaugError, match="1 or 3 channels"):
        ImageDataset(torch.zeros(4, 4, 8, 8, dtype=torch.uint8), targets, ["a", "b"])
    with pytest.raises(GenaugError, match="1-D integer tensor"):
        ImageDataset(images, targets.float(), ["a", "b"])
    with pytest.raises(GenaugError, match="4 images but 3 targets"):
        ImageDataset(images, targets[:3], ["a", "b"])
    with pytest.raises(GenaugError, match="targets must lie in"):
        ImageDataset(images, torch.tensor([0, 1, 2, 0]), ["a", "b"])
    with pytest.raises(GenaugError, match="JSON-serialisable"):
        ImageDataset(images, targets, ["a", "b"], {"bad": object()})


# ---------------------------------------------------------------- imagefolder


def _save(path: Path, mode: str, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "L":
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for c, name in enumerate(["cat", "dog", "bird"]):
        _save(root / name / "a.png", "RGB", (40, 30), c)
        _save(root / name / "b.png", "L", (70, 90), c + 10)
        _save(root / name / "c.jpg", "RGB", (50, 50), c + 20)
    _save(root / "dog" / "d.png", "RGBA", (33, 44), 30)
    _save(root / "bird" / "e.png", "P", (64, 20), 31)
    return root


def test_imagefolder_loads_colour(folder: Path) -> None:
    ds = load_dataset(f"imagefolder:{folder}", image_size=64)
    assert ds.class_names == ["bird", "cat", "dog"]
    assert ds.images.shape == (11, 3, 64, 64)
    assert ds.images.dtype == torch.uint8
    assert torch.bincount(ds.targets).tolist() == [4, 3, 4]
    assert ds.description["spec"] == f"imagefolder:{folder}"
    assert ds.description["native_channels"] == 3
    json.dumps(ds.description)
    gray = load_dataset(f"imagefolder:{folder}", image_size=16, channels=1)
    assert gray.images.shape == (11, 1, 16, 16)


def test_imagefolder_gray_only_is_one_channel(tmp_path: Path) -> None:
    for name in ("x", "y"):
        _save(tmp_path / name / "1.png", "L", (40, 30), 1)
        _save(tmp_path / name / "2.png", "L", (20, 60), 2)
    ds = load_dataset(f"imagefolder:{tmp_path}", image_size=8)
    assert ds.images.shape == (4, 1, 8, 8)
    assert load_dataset(f"imagefolder:{tmp_path}", 8, channels=3).images.shape == (4, 3, 8, 8)


def test_imagefolder_transparency_on_white(tmp_path: Path) -> None:
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / name / "clear.png")
    ds = load_dataset(f"imagefolder:{tmp_path}", image_size=4)
    assert int(ds.images.min()) == 255


def test_imagefolder_skips_bad_files(folder: Path) -> None:
    (folder / "cat" / "notes.txt").write_text("not an image")
    (folder / "dog" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.warns(SkippedFileWarning) as record:
        ds = load_dataset(f"imagefolder:{folder}", image_size=16)
    messages = " ".join(str(w.message) for w in record)
    assert "notes.txt" in messages and "broken.png" in messages
    assert len(ds) == 11


def test_imagefolder_missing_path(tmp_path: Path) -> None:
    with pytest.raises(GenaugError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")


def test_imagefolder_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(GenaugError, match="not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'file.png'}")


def test_imagefolder_no_class_folders(tmp_path: Path) -> None:
    _save(tmp_path / "loose.png", "RGB", (8, 8), 0)
    with pytest.raises(GenaugError, match="no class subfolders"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_one_class(tmp_path: Path) -> None:
    _save(tmp_path / "only" / "1.png", "RGB", (8, 8), 0)
    with pytest.raises(GenaugError, match="only one class subfolder .'only'.*two or more"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_no_images(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(GenaugError, match="no readable images"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_empty_class_named(tmp_path: Path) -> None:
    _save(tmp_path / "good" / "1.png", "RGB", (8, 8), 0)
    (tmp_path / "sad").mkdir()
    (tmp_path / "sad" / "broken.png").write_bytes(b"not a png")
    with (
        pytest.warns(SkippedFileWarning, match="broken.png"),
        pytest.raises(GenaugError, match="sad has no readable images"),
    ):
        load_dataset(f"imagefolder:{tmp_path}")


# ---------------------------------------------------------------- torchvision datasets


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mnist", "MNIST is not under .*train-images-idx3-ubyte"),
        ("fashionmnist", "Fashion-MNIST is not under .*FashionMNIST"),
        ("cifar10", "CIFAR-10 is not under .*cifar-10-batches-py"),
    ],
)
def test_torchvision_missing_files(tmp_path: Path, name: str, expected: str) -> None:
    with pytest.raises(GenaugError, match=expected) as info:
        load_dataset(f"{name}:{tmp_path}")
    assert "genaug never downloads" in str(info.value)


def _write_idx(raw: Path, prefix: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">iiii", 0x803, n, 28, 28) + images.tobytes()
    )
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">ii", 0x801, n) + labels.tobytes()
    )
    return images


def test_mnist_from_idx_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    train_images = _write_idx(raw, "train", 20, 0)
    _write_idx(raw, "t10k", 10, 1)
    ds = load_dataset(f"mnist:{tmp_path}", image_size=28)
    assert ds.images.shape == (20, 1, 28, 28)
    assert np.array_equal(ds.images[:, 0].numpy(), train_images)
    assert ds.targets.tolist() == [i % 10 for i in range(20)]
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.description["train"] is True
    test = load_dataset(f"mnist:{tmp_path}", image_size=32, channels=3, train=False)
    assert test.images.shape == (10, 3, 32, 32)
    assert test.description["train"] is False


def test_cifar_corrupt_files(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    for name in names:
        (folder / name).write_bytes(b"junk")
    with pytest.raises(GenaugError, match="could not be read"):
        load_dataset(f"cifar10:{tmp_path}")


# ---------------------------------------------------------------- few-shot splits


def _ids(ds: ImageDataset) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in ds.images}


def test_few_shot_split_sizes_and_cover(digits: ImageDataset) -> None:
    split = few_shot_split(digits, shots_per_class=5, seed=1)
    assert isinstance(split, FewShotSplit)
    labeled, pool, test = split
    assert len(labeled) == 50
    assert torch.bincount(labeled.targets, minlength=10).tolist() == [5] * 10
    assert len(labeled) + len(pool) + len(test) == len(digits)
    counts = torch.bincount(digits.targets, minlength=10)
    test_counts = torch.bincount(test.targets, minlength=10)
    assert torch.all((test_counts - 0.3 * counts).abs() <= 1)
    assert not pool.has_labels and bool((pool.targets == -1).all())
    assert labeled.has_labels and test.has_labels
    assert labeled.description["split"] == "labeled" and labeled.description["seed"] == 1
    assert pool.description["split"] == "pool" and test.description["split"] == "test"
    assert test.description["shots_per_class"] == 5


def test_few_shot_split_disjoint_by_index() -> None:
    # Tag every image with its own index so overlap/coverage can be checked exactly.
    n = 120
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).clone()
    ds = ImageDataset(images, torch.arange(n) % 3, ["a", "b", "c"])
    parts = few_shot_split(ds, shots_per_class=4, seed=3, test_fraction=0.25)
    index_sets = [set(p.images[:, 0, 0, 0].tolist()) for p in parts]
    assert sum(len(s) for s in index_sets) == n
    assert set().union(*index_sets) == set(range(n))
    assert len(parts.test) == 30


def test_few_shot_split_determinism(digits: ImageDataset) -> None:
    a = few_shot_split(digits, 3, seed=7)
    b = few_shot_split(digits, 3, seed=7)
    c = few_shot_split(digits, 3, seed=8)
    assert torch.equal(a.labeled.images, b.labeled.images)
    assert torch.equal(a.pool.images, b.pool.images)
    assert _ids(a.labeled) != _ids(c.labeled)
    assert torch.equal(a.test.images, c.test.images)  # test set fixed across seeds
    assert torch.equal(a.test.targets, c.test.targets)
    d = few_shot_split(digits, 3, seed=7, test_seed=1)
    assert not torch.equal(a.test.images, d.test.images)


def test_few_shot_split_errors(digits: ImageDataset) -> None:
    with pytest.raises(GenaugError, match="shots_per_class must be an int of at least 1"):
        few_shot_split(digits, 0, seed=0)
    for frac in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(GenaugError, match="test_fraction must be a number strictly between"):
            few_shot_split(digits, 1, seed=0, test_fraction=frac)
    with pytest.raises(GenaugError, match="fully labelled"):
        few_shot_split(digits.without_labels(), 1, seed=0)
    with pytest.raises(GenaugError, match="seed must be a non-negative int"):
        few_shot_split(digits, 1, seed=-1)


def test_few_shot_split_too_many_shots_names_class(digits: ImageDataset) -> None:
    small = digits.subset(
        np.flatnonzero(digits.targets.numpy() != 4)[:600].tolist()
        + [int(i) for i in np.flatnonzero(digits.targets.numpy() == 4)[:10]]
    )
    with pytest.raises(GenaugError, match="class '4' has only 7 training images"):
        few_shot_split(small, shots_per_class=8, seed=0)
