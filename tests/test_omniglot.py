"""Tests for genaug.data.omniglot, on the real Omniglot zips (a few alphabets at a time)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.data import (
    ImageDataset,
    class_groups,
    list_dataset_specs,
    list_omniglot_alphabets,
    load_dataset,
    load_omniglot,
)
from genaug.data.omniglot import read_omniglot
from genaug.errors import GenaugError

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
SMALL1 = ROOT / "images_background_small1.zip"
SMALL2 = ROOT / "images_background_small2.zip"
pytestmark = pytest.mark.skipif(not SMALL1.is_file(), reason="Omniglot zips not present")


@pytest.fixture(scope="module")
def greek() -> ImageDataset:
    return load_omniglot(SMALL1, image_size=32, alphabets=["Greek"])


def _copy_characters(dst: Path, members: dict[str, int], prefix: str = "") -> Path:
    """A zip of the first ``n`` characters of each alphabet in ``members``, from small1."""
    with zipfile.ZipFile(SMALL1) as src, zipfile.ZipFile(dst, "w") as out:
        for name in src.namelist():
            parts = name.split("/")
            keep = name.endswith(".png") and parts[1] in members
            if keep and int(parts[2][-2:]) <= members[parts[1]]:
                out.writestr(prefix + "/".join(parts[1:]), src.read(name))
    return dst


def test_layout_names_counts_and_groups(greek: ImageDataset) -> None:
    assert greek.images.shape == (24 * 20, 1, 32, 32) and greek.images.dtype == torch.uint8
    assert greek.class_names == [f"Greek/character{i:02d}" for i in range(1, 25)]
    assert torch.equal(torch.bincount(greek.targets), torch.full((24,), 20))
    assert class_groups(greek) == ["Greek"] * 24
    desc = greek.description
    assert desc["spec"] == f"omniglot:{SMALL1}@Greek" and desc["alphabets"] == ["Greek"]
    assert desc["native_size"] == [105, 105] and desc["polarity"].startswith("ink=1")


def test_polarity_is_bright_ink_on_dark(greek: ImageDataset) -> None:
    images, _, _, _ = read_omniglot(SMALL1, ["Greek"])
    with zipfile.ZipFile(SMALL1) as z:
        raw = Image.open(
            io.BytesIO(z.read("images_background_small1/Greek/character01/0394_01.png"))
        )
        raw = np.asarray(raw.convert("L"))  # (105, 105), 0 = stroke in the file
    assert np.array_equal(images[0, 0].numpy(), 255 - raw)
    floats = greek.float_images()
    assert float(floats[:, :, 0, 0].max()) == 0.0  # corners are paper = 0
    assert 0.02 < float(floats.mean()) < 0.25  # sparse strokes
    assert float(floats.amax(dim=(1, 2, 3)).min()) > 0.5  # every drawing has bright ink


def test_sizes_and_channels() -> None:
    small = load_dataset(f"omniglot:{SMALL1}@Latin", image_size=16, channels=3)
    assert small.images.shape == (26 * 20, 3, 16, 16)
    assert torch.equal(small.images[:, 0], small.images[:, 2])
    big = load_omniglot(SMALL1, image_size=64, alphabets=["latin"])
    assert big.images.shape == (26 * 20, 1, 64, 64)


def test_both_zips_deduplicate_greek_and_latin() -> None:
    assert list_omniglot_alphabets(SMALL1) == [
        "Balinese",
        "Early_Aramaic",
        "Greek",
        "Korean",
        "Latin",
    ]
    assert len(list_omniglot_alphabets(ROOT)) == 8
    both = load_omniglot(ROOT, image_size=16, alphabets=["Greek", "Latin"])
    assert both.num_classes == 50 and len(both) == 1000
    assert both.description["duplicate_classes_skipped"] == 50
    assert len(both.description["files"]) == 2
    from_one = load_omniglot(SMALL2, image_size=16, alphabets=["Latin", "Greek"])
    assert from_one.class_names == both.class_names
    assert torch.equal(from_one.images, both.images)


def test_alphabet_prefix_and_unknown_alphabet() -> None:
    kata = load_dataset(f"omniglot:{SMALL2}@japanese", image_size=8)
    assert set(class_groups(kata)) == {"Japanese_(katakana)"} and kata.num_classes == 47
    with pytest.raises(GenaugError, match=r"alphabet 'Klingon' is not one of .*Balinese, "):
        load_omniglot(SMALL1, alphabets=["Klingon"])
    with pytest.raises(GenaugError, match="Sanskrit"):  # in the other zip only
        load_omniglot(SMALL1, alphabets=["Greek", "Sanskrit"])
    with pytest.raises(GenaugError, match="non-empty list"):
        load_omniglot(SMALL1, alphabets="Greek")


@pytest.mark.parametrize("prefix", ["images_background_small1/", ""])
def test_small_zip_and_extracted_folder_read_the_same(tmp_path: Path, prefix: str) -> None:
    zpath = _copy_characters(tmp_path / "few.zip", {"Greek": 2, "Korean": 1}, prefix)
    few = load_omniglot(zpath, image_size=16)
    assert few.class_names == ["Greek/character01", "Greek/character02", "Korean/character01"]
    with zipfile.ZipFile(zpath) as z:
        z.extractall(tmp_path / "tree")
    tree = load_omniglot(tmp_path / "tree", image_size=16)
    assert tree.class_names == few.class_names and torch.equal(tree.images, few.images)
    reference = load_omniglot(SMALL1, image_size=16, alphabets=["Greek"])
    assert torch.equal(few.images[:40], reference.images[:40])


def test_not_omniglot_layout_is_refused(tmp_path: Path) -> None:
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as z:
        z.writestr("cats/1.png", b"x")
    with pytest.raises(
        GenaugError, match=r"not in Omniglot's layout: expected .*found 'cats/1.png'"
    ):
        load_omniglot(flat)
    notes = tmp_path / "notes.zip"
    with zipfile.ZipFile(notes, "w") as z:
        z.writestr("top/Greek/character01/readme.txt", b"hello")
    with pytest.raises(GenaugError, match="found 'top/Greek/character01/readme.txt'"):
        load_omniglot(notes)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip at all")
    with pytest.raises(GenaugError, match="cannot be opened as a zip"):
        load_omniglot(broken)
    bad_png = tmp_path / "bad_png.zip"
    with zipfile.ZipFile(bad_png, "w") as z:
        z.writestr("top/Greek/character01/0394_01.png", b"not a png")
    with pytest.raises(GenaugError, match="0394_01.png in .* is not a readable PNG"):
        load_omniglot(bad_png)
    with pytest.raises(GenaugError, match="does not exist"):
        load_omniglot(tmp_path / "missing.zip")
    with pytest.raises(GenaugError, match="missing its path"):
        load_dataset("omniglot")
    with pytest.raises(GenaugError, match="no group named after '@'"):
        load_dataset(f"omniglot:{tmp_path}/x.zip@")


def test_spec_is_listed() -> None:
    assert any(s.startswith("omniglot:") for s in list_dataset_specs())
    assert any(s.startswith("groupfolder:") for s in list_dataset_specs())
