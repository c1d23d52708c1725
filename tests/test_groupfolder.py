"""Tests for genaug.data.groupfolder: the grouped tree reader, the PATH@GROUP spec form and
group-name matching, on real sklearn digits written as PNGs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from genaug.data import (
    ImageDataset,
    check_disjoint_classes,
    class_groups,
    load_dataset,
    split_classes,
)
from genaug.data.groupfolder import match_groups, parse_group_spec
from genaug.errors import GenaugError


def _write_tree(root: Path, digits: ImageDataset, layout: dict[str, list[int]]) -> None:
    """ROOT/<group>/<digit>/<i>.png from real sklearn digits."""
    for group, labels in layout.items():
        for label in labels:
            folder = root / group / str(label)
            folder.mkdir(parents=True)
            picks = torch.nonzero(digits.targets == label).reshape(-1)[:4]
            for i in picks.tolist():
                Image.fromarray(digits.images[i, 0].numpy()).save(folder / f"{i}.png")


def test_groupfolder_tree_and_split(tmp_path: Path, digits16: ImageDataset) -> None:
    _write_tree(tmp_path, digits16, {"known": [0, 1, 2], "novel": [7, 8]})
    ds = load_dataset(f"groupfolder:{tmp_path}", image_size=16)
    assert ds.class_names == ["known/0", "known/1", "known/2", "novel/7", "novel/8"]
    assert class_groups(ds) == ["known"] * 3 + ["novel"] * 2 and len(ds) == 20
    first = torch.nonzero(digits16.targets == 0).reshape(-1)[0]
    assert torch.equal(ds.images[0], digits16.images[first])
    base, new = split_classes(ds, new_groups=["novel"])
    assert base.class_names == ["known/0", "known/1", "known/2"]
    assert new.class_names == ["novel/7", "novel/8"] and new.targets.tolist() == [0] * 4 + [1] * 4
    only = load_dataset(f"groupfolder:{tmp_path}@NOVEL", image_size=16)
    assert only.class_names == new.class_names and torch.equal(only.images, new.images)
    # two ImageFolders, the torchvision way: disjoint class names pass, shared ones are refused
    check_disjoint_classes(
        load_dataset(f"imagefolder:{tmp_path / 'known'}", image_size=8),
        load_dataset(f"imagefolder:{tmp_path / 'novel'}", image_size=8),
    )
    with pytest.raises(GenaugError, match=r"overlap: 3 class\(es\) are on both sides \(0, 1, 2\)"):
        check_disjoint_classes(["0", "1", "2", "3"], ["2", "1", "0", "9"])


def test_groupfolder_bad_input(tmp_path: Path) -> None:
    with pytest.raises(GenaugError, match="is not an existing folder"):
        load_dataset(f"groupfolder:{tmp_path / 'nope'}")
    (tmp_path / "g" / "c").mkdir(parents=True)
    with pytest.raises(GenaugError, match="holds no images two levels down"):
        load_dataset(f"groupfolder:{tmp_path}")


def test_parse_group_spec(tmp_path: Path) -> None:
    assert parse_group_spec("omniglot:/a/b.zip@Greek, Latin") == ("/a/b.zip", ["Greek", "Latin"])
    assert parse_group_spec("groupfolder: /a/b ") == ("/a/b", None)
    odd = tmp_path / "me@host.zip"
    odd.write_bytes(b"")
    assert parse_group_spec(f"omniglot:{odd}") == (str(odd), None)
    assert parse_group_spec(f"omniglot:{odd}@Greek") == (str(odd), ["Greek"])
    with pytest.raises(
        GenaugError, match="'groupfolder:@a' is missing its path; .*groupfolder:ROOT"
    ):
        parse_group_spec("groupfolder:@a")
    with pytest.raises(GenaugError, match="no group named after '@'"):
        parse_group_spec("groupfolder:/a/b@ ,")


def test_match_groups() -> None:
    known = ["Greek", "Japanese_(katakana)", "Japanese_(hiragana)", "Latin"]
    assert match_groups(["latin", "GREEK"], known) == ["Greek", "Latin"]  # order of known
    assert match_groups(["Japanese_(k"], known) == ["Japanese_(katakana)"]
    with pytest.raises(GenaugError, match=r"'Japanese' matches several .*one of Japanese_\(kat"):
        match_groups(["Japanese"], known)
    with pytest.raises(
        GenaugError, match=r"alphabet 'Runic' is not one of the known alphabets; use one of Greek,"
    ):
        match_groups(["Runic"], known, "alphabet")
