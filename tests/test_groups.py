"""Tests for genaug.data.groups: base/new class splits by group, on real Omniglot and digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genaug.data import (
    ImageDataset,
    check_disjoint_classes,
    class_groups,
    load_omniglot,
    select_classes,
    select_groups,
    split_classes,
)
from genaug.errors import GenaugError

OMNIGLOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
NEW = ["Japanese_(katakana)", "Sanskrit", "Tagalog"]
needs_omniglot = pytest.mark.skipif(
    not (OMNIGLOT / "images_background_small1.zip").is_file(), reason="Omniglot zips not present"
)


@pytest.fixture(scope="module")
def omniglot() -> ImageDataset:
    return load_omniglot(OMNIGLOT, image_size=8)  # both zips: 8 alphabets, 242 characters


@needs_omniglot
def test_issue_split_by_alphabet(omniglot: ImageDataset) -> None:
    base, new = split_classes(omniglot, new_groups=NEW)
    assert (base.num_classes, new.num_classes) == (136, 106)
    assert sorted(set(class_groups(base))) == [
        "Balinese",
        "Early_Aramaic",
        "Greek",
        "Korean",
        "Latin",
    ]
    assert sorted(set(class_groups(new))) == NEW
    assert not set(base.class_names) & set(new.class_names)
    check_disjoint_classes(base, new)
    for part in (base, new):
        assert torch.equal(torch.unique(part.targets), torch.arange(part.num_classes))
        assert len(part) == 20 * part.num_classes
    # relabelled images are the original ones of the same class
    c = new.class_names.index("Sanskrit/character07")
    orig = omniglot.class_names.index("Sanskrit/character07")
    assert torch.equal(new.images[new.targets == c], omniglot.images[omniglot.targets == orig])
    assert new.description["classes_role"] == "new" and new.description["groups"] == NEW
    # the same split from the zips themselves (small1 = base, three alphabets of small2 = new)
    base1 = load_omniglot(OMNIGLOT / "images_background_small1.zip", image_size=8)
    assert base1.class_names == base.class_names and torch.equal(base1.images, base.images)


@needs_omniglot
def test_overlap_is_refused(omniglot: ImageDataset) -> None:
    with pytest.raises(GenaugError, match=r"overlap: group\(s\) Greek are on both sides"):
        split_classes(omniglot, new_groups=["Greek", "Tagalog"], base_groups=["Greek", "Latin"])
    small2 = load_omniglot(OMNIGLOT / "images_background_small2.zip", image_size=8)
    small1 = select_groups(omniglot, ["Balinese", "Greek"])
    with pytest.raises(GenaugError, match=r"overlap: 24 class\(es\) .*Greek/character01, "):
        check_disjoint_classes(small1, small2)
    with pytest.raises(GenaugError, match="overlap: 1 class"):
        check_disjoint_classes(["Greek/character03"], small2)
    with pytest.raises(GenaugError, match=r"group 'Elvish' is not one of .*Tagalog"):
        split_classes(omniglot, new_groups=["Elvish"])
    with pytest.raises(GenaugError, match="at least one base and one new group"):
        split_classes(small1, new_groups=["Balinese", "Greek"])


def test_class_groups_needs_groups(digits16: ImageDataset) -> None:
    with pytest.raises(GenaugError, match="has no class groups"):
        class_groups(digits16)
    with pytest.raises(GenaugError, match="expects an ImageDataset"):
        class_groups([1, 2])  # type: ignore[arg-type]


def test_select_classes_relabels_and_refuses_foreign_positions(digits16: ImageDataset) -> None:
    sub = select_classes(digits16, [7, 3])
    assert sub.class_names == ["7", "3"]
    kept = digits16.targets[(digits16.targets == 3) | (digits16.targets == 7)]
    assert torch.equal(sub.targets, (kept == 3).long())  # 7 -> 0, 3 -> 1
    with pytest.raises(GenaugError, match="distinct ids"):
        select_classes(digits16, [3, 3])
    outside = int(torch.nonzero(digits16.targets == 5)[0])
    with pytest.raises(GenaugError, match="outside the selected classes"):
        select_classes(digits16, [7, 3], indices=np.array([outside]))
