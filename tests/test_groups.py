"""Tests for genaug.data.groups: base/new class splits by group, on Omniglot-layout zips (made
up, and the real ones as an extra: see ``omniglot_sets`` in tests/conftest.py) and digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import OmniglotZips

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

NEW = ["Japanese_(katakana)", "Sanskrit", "Tagalog"]


@pytest.fixture(scope="module")
def omniglot(omniglot_sets: OmniglotZips) -> ImageDataset:
    return load_omniglot(omniglot_sets.root, image_size=8)  # both zips, Greek and Latin once


def test_issue_split_by_alphabet(omniglot_sets: OmniglotZips, omniglot: ImageDataset) -> None:
    base, new = split_classes(omniglot, new_groups=NEW)
    base_classes = sum(omniglot_sets.alphabets1.values())  # small1's alphabets
    new_classes = sum(omniglot_sets.characters(a) for a in NEW)
    assert (base.num_classes, new.num_classes) == (base_classes, new_classes)
    assert sorted(set(class_groups(base))) == sorted(omniglot_sets.alphabets1)
    assert sorted(set(class_groups(new))) == NEW
    assert not set(base.class_names) & set(new.class_names)
    check_disjoint_classes(base, new)
    for part in (base, new):
        assert torch.equal(torch.unique(part.targets), torch.arange(part.num_classes))
        assert len(part) == omniglot_sets.drawings * part.num_classes
    # relabelled images are the original ones of the same class
    name = f"Sanskrit/character{omniglot_sets.characters('Sanskrit'):02d}"  # the last one
    c, orig = new.class_names.index(name), omniglot.class_names.index(name)
    assert torch.equal(new.images[new.targets == c], omniglot.images[omniglot.targets == orig])
    assert new.description["classes_role"] == "new" and new.description["groups"] == NEW
    # the same split from the zips themselves (small1 = base, three alphabets of small2 = new)
    base1 = load_omniglot(omniglot_sets.small1, image_size=8)
    assert base1.class_names == base.class_names and torch.equal(base1.images, base.images)


def test_overlap_is_refused(omniglot_sets: OmniglotZips, omniglot: ImageDataset) -> None:
    with pytest.raises(GenaugError, match=r"overlap: group\(s\) Greek are on both sides"):
        split_classes(omniglot, new_groups=["Greek", "Tagalog"], base_groups=["Greek", "Latin"])
    small2 = load_omniglot(omniglot_sets.small2, image_size=8)
    small1 = select_groups(omniglot, ["Balinese", "Greek"])
    greek = omniglot_sets.characters("Greek")
    with pytest.raises(GenaugError, match=rf"overlap: {greek} class\(es\) .*Greek/character01, "):
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
