"""Few-shot benchmark splits: a fixed test set, a few labelled shots, and an unlabelled pool."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from genaug.data.datasets import ImageDataset
from genaug.errors import GenaugError

__all__ = ["FewShotSplit", "few_shot_split", "train_test_split"]


class FewShotSplit(NamedTuple):
    """The three disjoint parts of a dataset made by :func:`few_shot_split`."""

    labeled: ImageDataset
    """``shots_per_class`` labelled images per class, chosen with ``seed``."""
    pool: ImageDataset
    """The rest of the training part, labels hidden (targets all -1)."""
    test: ImageDataset
    """A stratified ``test_fraction`` of every class, chosen with ``test_seed`` only."""


def _check_seed(value: object, name: str) -> int:
    if type(value) is not int or value < 0:
        raise GenaugError(f"{name} must be a non-negative int, got {value!r}; pass e.g. {name}=0.")
    return value


def _class_test_train(
    dataset: ImageDataset, test_fraction: float, test_seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class: (test positions, training positions), the test draw seeded by test_seed only."""
    targets = dataset.targets.numpy()  # (N,)
    parts = []
    for c in range(len(dataset.class_names)):
        members = np.flatnonzero(targets == c)  # ascending positions of class c
        n = len(members)
        n_test = min(max(1, int(np.floor(test_fraction * n + 0.5))), n - 1) if n >= 2 else 0
        # Separate streams per (seed, class, role): the test draw never sees the shot seed.
        test_perm = np.random.default_rng([test_seed, c, 0]).permutation(n)
        parts.append((members[test_perm[:n_test]], np.sort(members[test_perm[n_test:]])))
    return parts


def train_test_split(
    dataset: ImageDataset, test_fraction: float = 0.3, test_seed: int = 0
) -> tuple[ImageDataset, ImageDataset]:
    """The labelled training part and the test part that :func:`few_shot_split` would make.

    The test part is identical to ``few_shot_split(dataset, k, seed, test_fraction,
    test_seed).test`` for every ``k`` and ``seed``; the training part is its labelled complement
    (= labeled + pool with labels). Use it to train a generator or a judge on the training part.
    """
    few_shot_split(dataset, 1, 0, test_fraction, test_seed)  # the same checks and errors
    parts = _class_test_train(dataset, test_fraction, test_seed)
    common = {"test_seed": test_seed, "test_fraction": float(test_fraction)}
    result = []
    for split, chunks in (("train", [p[1] for p in parts]), ("test", [p[0] for p in parts])):
        sub = dataset.subset(np.sort(np.concatenate(chunks)))
        sub.description.update(split=split, **common)
        result.append(sub)
    return result[0], result[1]


def few_shot_split(
    dataset: ImageDataset,
    shots_per_class: int,
    seed: int,
    test_fraction: float = 0.3,
    test_seed: int = 0,
) -> FewShotSplit:
    """Split a labelled dataset into few-shot ``labeled``, unlabelled ``pool`` and ``test`` parts.

    The test set is a stratified ``test_fraction`` of every class (at least one image of each
    class with two or more images) chosen with ``test_seed`` alone, so it stays fixed while
    ``seed`` varies. From the remaining training part, ``shots_per_class`` images per class are
    chosen with ``seed``; the rest becomes the pool with labels hidden. The three parts are
    disjoint, cover the dataset, keep the dataset's order, and are deterministic for
    ``(seed, test_seed)``.

    Raises:
        GenaugError: shots_per_class < 1, test_fraction outside (0, 1), a dataset with hidden
            labels, or a class with fewer training images than shots_per_class.
    """
    if not isinstance(dataset, ImageDataset):
        raise GenaugError(
            f"few_shot_split expects an ImageDataset, got {type(dataset).__name__}; "
            "load one with genaug.data.load_dataset."
        )
    if type(shots_per_class) is not int or shots_per_class < 1:
        raise GenaugError(
            f"shots_per_class must be an int of at least 1, got {shots_per_class!r}; "
            "pass for example shots_per_class=10."
        )
    seed = _check_seed(seed, "seed")
    test_seed = _check_seed(test_seed, "test_seed")
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float))
        or not 0.0 < test_fraction < 1.0
    ):
        raise GenaugError(
            f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}; "
            "pass for example test_fraction=0.3."
        )
    if not dataset.has_labels:
        raise GenaugError(
            "few_shot_split needs a fully labelled dataset but some targets are hidden (-1); "
            "split the labelled dataset before calling without_labels()."
        )
    test_idx, labeled_idx, pool_idx = [], [], []
    for c, (name, (test, train)) in enumerate(
        zip(dataset.class_names, _class_test_train(dataset, test_fraction, test_seed))
    ):
        test_idx.append(test)
        if len(train) < shots_per_class:
            raise GenaugError(
                f"class {name!r} has only {len(train)} training images after holding out "
                f"test_fraction={test_fraction} for testing, fewer than "
                f"shots_per_class={shots_per_class}; lower shots_per_class or test_fraction."
            )
        shot_perm = np.random.default_rng([seed, c, 1]).permutation(len(train))
        labeled_idx.append(train[shot_perm[:shots_per_class]])
        pool_idx.append(train[shot_perm[shots_per_class:]])

    common = {
        "seed": seed,
        "test_seed": test_seed,
        "shots_per_class": shots_per_class,
        "test_fraction": float(test_fraction),
    }

    def part(chunks: list[np.ndarray], split: str) -> ImageDataset:
        idx = np.sort(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)
        sub = dataset.subset(idx)
        sub.description.update(split=split, **common)
        return sub

    labeled = part(labeled_idx, "labeled")
    pool = part(pool_idx, "pool").without_labels()
    test = part(test_idx, "test")
    return FewShotSplit(labeled=labeled, pool=pool, test=test)
