"""Pair sampling: same class, different images, reproducible, never two classes."""

from __future__ import annotations

import pytest
import torch

from genaug import GenaugError
from genaug.data.pairs import check_pairable, pair_indices, pairable


def test_pairs_never_cross_classes_on_real_digits(digits16):
    targets = digits16.targets
    for step in range(40):
        first, second = pair_indices(step, 64, targets, seed=3)
        assert first.shape == second.shape == (64,)
        assert first.dtype == second.dtype == torch.int64
        assert torch.equal(targets[first], targets[second])
        assert bool((first != second).all())


def test_pairs_skip_singleton_classes_and_hidden_labels():
    # class 0: 1 image (cannot pair), class 1: 2 images, class 2: 3 images.
    targets = torch.tensor([0, 1, 2, 1, 2, 2])
    assert pairable(targets).tolist() == [False, True, True, True, True, True]
    seen = set()
    for step in range(30):
        first, second = pair_indices(step, 5, targets, seed=0)
        assert not bool((first == 0).any()) and not bool((second == 0).any())
        assert torch.equal(targets[first], targets[second])
        assert bool((first != second).all())
        seen |= set(zip(first.tolist(), second.tolist()))
    # Every ordered pair of classmates turns up: partners are drawn over all the others.
    expected = {(1, 3), (3, 1)} | {(a, b) for a in (2, 4, 5) for b in (2, 4, 5) if a != b}
    assert seen == expected


def test_pairs_depend_only_on_seed_and_step():
    targets = torch.arange(40) % 7
    a = pair_indices(5, 16, targets, seed=1)
    b = pair_indices(5, 16, targets, seed=1)
    c = pair_indices(5, 16, targets, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not (torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]))
    # One epoch of anchors covers each pairable image once.
    first = torch.cat([pair_indices(s, 8, targets, seed=1)[0] for s in range(5)])
    assert sorted(first.tolist()) == list(range(40))


def test_unlabelled_or_unpairable_data_is_refused():
    with pytest.raises(GenaugError, match="needs labelled data"):
        check_pairable(torch.tensor([0, 0, 1]), has_labels=False)
    with pytest.raises(GenaugError, match="needs labelled data"):
        pair_indices(0, 4, torch.tensor([-1, 0, 0]), seed=0)
    with pytest.raises(GenaugError, match="no class of the dataset holds two images"):
        pair_indices(0, 4, torch.tensor([0, 1, 2]), seed=0)
