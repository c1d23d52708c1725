"""Tests for genaug.data.omniglot, on Omniglot-layout zips the tests make (``omniglot_zips``,
from ``helpers.make_omniglot_zip``) and, as an extra, on the real zips: a test taking
``omniglot_sets`` runs as ``[generated]`` and ``[real]``, the latter skipped when the real zips
are absent (a plain clone; see tests/conftest.py)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import OmniglotZips, make_omniglot_zip
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


@pytest.fixture(scope="module")
def greek(omniglot_sets: OmniglotZips) -> ImageDataset:
    return load_omniglot(omniglot_sets.small1, image_size=32, alphabets=["Greek"])


def _pngs(archive: zipfile.ZipFile, alphabet: str = "") -> list[str]:
    """The drawings in ``archive`` (of ``alphabet`` if given), sorted."""
    inside = f"/{alphabet}/" if alphabet else "/"
    return sorted(n for n in archive.namelist() if n.endswith(".png") and inside in f"/{n}")


def _copy_characters(source: Path, dst: Path, members: dict[str, int], prefix: str = "") -> Path:
    """A zip of the first ``n`` characters of each alphabet in ``members``, from ``source``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dst, "w") as out:
        for name in _pngs(src):
            parts = name.split("/")
            if parts[1] in members and int(parts[2][-2:]) <= members[parts[1]]:
                out.writestr(prefix + "/".join(parts[1:]), src.read(name))
    return dst


def test_entries_follow_omniglot_names(omniglot_sets: OmniglotZips) -> None:
    sets = omniglot_sets
    for path, alphabets in [(sets.small1, sets.alphabets1), (sets.small2, sets.alphabets2)]:
        with zipfile.ZipFile(path) as archive:
            names = _pngs(archive)
        pattern = re.compile(rf"{path.stem}/([^/]+)/character(\d\d)/(\d{{4}})_(\d\d)\.png")
        found = [pattern.fullmatch(n) for n in names]
        assert all(found) and len(names) == sum(alphabets.values()) * omniglot_sets.drawings
        ids: dict[tuple[str, str], set[str]] = {}
        for m in found:
            ids.setdefault((m[1], m[2]), set()).add(m[3])
        assert all(len(v) == 1 for v in ids.values())  # one id per character
        assert len({v.pop() for v in ids.values()}) == len(ids)  # ... and a different one each
        assert {m[4] for m in found} == {f"{d:02d}" for d in range(1, omniglot_sets.drawings + 1)}
        counts = {a: sum(1 for alphabet, _ in ids if alphabet == a) for a in alphabets}
        assert counts == alphabets


def test_greek_and_latin_are_the_same_bytes_in_both_zips(omniglot_sets: OmniglotZips) -> None:
    with zipfile.ZipFile(omniglot_sets.small1) as one, zipfile.ZipFile(omniglot_sets.small2) as two:
        for alphabet in ("Greek", "Latin"):
            first, second = _pngs(one, alphabet), _pngs(two, alphabet)
            assert [n.split("/", 1)[1] for n in first] == [n.split("/", 1)[1] for n in second]
            assert all(one.read(a) == two.read(b) for a, b in zip(first, second))
        assert _pngs(one, "Balinese") and not _pngs(two, "Balinese")


def test_layout_names_counts_and_groups(omniglot_sets: OmniglotZips, greek: ImageDataset) -> None:
    n, drawings = omniglot_sets.characters("Greek"), omniglot_sets.drawings
    assert greek.images.shape == (n * drawings, 1, 32, 32) and greek.images.dtype == torch.uint8
    assert greek.class_names == [f"Greek/character{i:02d}" for i in range(1, n + 1)]
    assert torch.equal(torch.bincount(greek.targets), torch.full((n,), drawings))
    assert class_groups(greek) == ["Greek"] * n
    desc = greek.description
    assert desc["spec"] == f"omniglot:{omniglot_sets.small1}@Greek"
    assert desc["alphabets"] == ["Greek"]
    assert desc["native_size"] == [105, 105] and desc["polarity"].startswith("ink=1")


def test_polarity_is_bright_ink_on_dark(omniglot_sets: OmniglotZips, greek: ImageDataset) -> None:
    images, _, _, _ = read_omniglot(omniglot_sets.small1, ["Greek"])
    with zipfile.ZipFile(omniglot_sets.small1) as z:
        first = _pngs(z, "Greek")[0]
        assert first.startswith(f"{omniglot_sets.small1.stem}/Greek/character01/")
        raw = Image.open(io.BytesIO(z.read(first)))
        assert raw.mode == "1" and raw.size == (105, 105)  # 1-bit, as the files are
        raw = np.asarray(raw.convert("L"))  # (105, 105), 0 = stroke in the file
    assert np.array_equal(images[0, 0].numpy(), 255 - raw)
    floats = greek.float_images()
    assert float(floats[:, :, 0, 0].max()) == 0.0  # corners are paper = 0
    assert 0.02 < float(floats.mean()) < 0.25  # sparse strokes
    assert float(floats.amax(dim=(1, 2, 3)).min()) > 0.5  # every drawing has bright ink


def test_sizes_and_channels(omniglot_sets: OmniglotZips) -> None:
    count = omniglot_sets.characters("Latin") * omniglot_sets.drawings
    small = load_dataset(f"omniglot:{omniglot_sets.small1}@Latin", image_size=16, channels=3)
    assert small.images.shape == (count, 3, 16, 16)
    assert torch.equal(small.images[:, 0], small.images[:, 2])
    big = load_omniglot(omniglot_sets.small1, image_size=64, alphabets=["latin"])
    assert big.images.shape == (count, 1, 64, 64)


def test_both_zips_deduplicate_greek_and_latin(omniglot_sets: OmniglotZips) -> None:
    one, two = omniglot_sets.alphabets1, omniglot_sets.alphabets2
    assert list_omniglot_alphabets(omniglot_sets.small1) == sorted(one)
    assert list_omniglot_alphabets(omniglot_sets.root) == sorted(one.keys() | two.keys())
    assert sorted(one.keys() & two.keys()) == ["Greek", "Latin"]
    shared = one["Greek"] + one["Latin"]
    both = load_omniglot(omniglot_sets.root, image_size=16, alphabets=["Greek", "Latin"])
    assert both.num_classes == shared and len(both) == shared * omniglot_sets.drawings
    assert both.description["duplicate_classes_skipped"] == shared
    assert len(both.description["files"]) == 2
    from_one = load_omniglot(omniglot_sets.small2, image_size=16, alphabets=["Latin", "Greek"])
    assert from_one.class_names == both.class_names
    assert torch.equal(from_one.images, both.images)


def test_alphabet_prefix_and_unknown_alphabet(omniglot_sets: OmniglotZips) -> None:
    kata = load_dataset(f"omniglot:{omniglot_sets.small2}@japanese", image_size=8)
    assert set(class_groups(kata)) == {"Japanese_(katakana)"}
    assert kata.num_classes == omniglot_sets.characters("Japanese_(katakana)")
    with pytest.raises(GenaugError, match=r"alphabet 'Klingon' is not one of .*Balinese, "):
        load_omniglot(omniglot_sets.small1, alphabets=["Klingon"])
    with pytest.raises(GenaugError, match="Sanskrit"):  # in the other zip only
        load_omniglot(omniglot_sets.small1, alphabets=["Greek", "Sanskrit"])
    with pytest.raises(GenaugError, match="non-empty list"):
        load_omniglot(omniglot_sets.small1, alphabets="Greek")


@pytest.mark.parametrize("prefix", ["images_background_small1/", ""])
def test_small_zip_and_extracted_folder_read_the_same(
    omniglot_sets: OmniglotZips, tmp_path: Path, prefix: str
) -> None:
    members = {"Greek": 2, "Latin": 1}
    zpath = _copy_characters(omniglot_sets.small1, tmp_path / "few.zip", members, prefix)
    few = load_omniglot(zpath, image_size=16)
    assert few.class_names == ["Greek/character01", "Greek/character02", "Latin/character01"]
    with zipfile.ZipFile(zpath) as z:
        z.extractall(tmp_path / "tree")
    tree = load_omniglot(tmp_path / "tree", image_size=16)
    assert tree.class_names == few.class_names and torch.equal(tree.images, few.images)
    reference = load_omniglot(omniglot_sets.small1, image_size=16, alphabets=["Greek"])
    greek = 2 * omniglot_sets.drawings
    assert torch.equal(few.images[:greek], reference.images[:greek])


def test_drawings_of_another_size_are_read_at_105(tmp_path: Path) -> None:
    path = make_omniglot_zip(tmp_path / "big.zip", {"Greek": 2}, drawings=3, top="", size=60)
    images, targets, names, _ = read_omniglot(path)
    assert images.shape == (6, 1, 105, 105) and targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert names == ["Greek/character01", "Greek/character02"]
    assert int(images[:, :, 0, 0].max()) == 0 and bool((images.amax(dim=(1, 2, 3)) == 255).all())


def test_made_up_characters_are_learnable_and_reproducible(
    omniglot_zips: OmniglotZips, tmp_path: Path
) -> None:
    """The generated classes are told apart by nearest class mean on pixels (far above chance),
    and the same arguments write the same bytes (another seed, other drawings)."""
    data = load_omniglot(omniglot_zips.small2, image_size=16)
    pixels, labels = data.float_images().flatten(1), data.targets  # (N, 256), (N,)
    train = torch.arange(len(data)) % omniglot_zips.drawings < omniglot_zips.drawings // 2
    means = torch.stack([pixels[train & (labels == c)].mean(0) for c in range(data.num_classes)])
    guess = torch.cdist(pixels[~train], means).argmin(1)  # (N/2,)
    accuracy = float((guess == labels[~train]).float().mean())
    assert data.num_classes == 23 and accuracy > 0.8  # chance is 1/23
    again = make_omniglot_zip(tmp_path / "again.zip", omniglot_zips.alphabets1)
    assert again.read_bytes() == omniglot_zips.small1.read_bytes()
    other = make_omniglot_zip(tmp_path / "other.zip", omniglot_zips.alphabets1, seed=1)
    reread = read_omniglot(other)[0]
    assert reread.shape == read_omniglot(again)[0].shape
    assert not torch.equal(reread, read_omniglot(again)[0])


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
