"""Few-shot episodes: N classes, k shots of each, tested on the rest of those classes' images.

An episode is drawn from ``(seed, episode index)`` alone, so every condition evaluated on
episode ``e`` sees the same classes, the same shots and the same test images: the design is
paired per episode. Draws are also *nested across shot counts*: the classes of episode ``e`` do
not depend on ``shots``, and the k shots of a class are the first k of one fixed per-class order,
so the 1-shot image is among the 5 shots. With ``queries`` set, the test images are the last
``queries`` of that order, hence the same for every shot count (as long as they fit).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from genaug.data.datasets import ImageDataset
from genaug.data.groups import select_classes
from genaug.errors import GenaugError

__all__ = ["Episode", "episode_data", "iter_episodes", "sample_episode"]


@dataclass(frozen=True)
class Episode:
    """One few-shot episode of a dataset (positions index the dataset it was drawn from).

    Episode label ``i`` is dataset class ``classes[i]``; ``shots`` and ``test`` list dataset
    positions grouped by episode label (``shots_per_class`` shots of label 0 first, ...).
    """

    index: int
    """The episode number ``e``."""
    seed: int
    """The seed of the episode stream; with ``index`` it fixes everything below."""
    classes: tuple[int, ...]
    """Dataset class ids, in episode label order (ascending)."""
    shots: tuple[int, ...]
    """Dataset positions of the labelled shots, ``shots_per_class`` per class."""
    test: tuple[int, ...]
    """Dataset positions of the test images of the same classes (disjoint from ``shots``)."""
    shots_per_class: int

    @property
    def ways(self) -> int:
        """Number of classes N."""
        return len(self.classes)

    def shot_labels(self) -> list[int]:
        """Episode labels (0..N-1) of ``shots``, in order."""
        return [i for i in range(self.ways) for _ in range(self.shots_per_class)]

    def support(self, dataset: ImageDataset) -> ImageDataset:
        """The shots as a dataset relabelled ``0..N-1`` (class names kept)."""
        return _part(dataset, self, "support")

    def query(self, dataset: ImageDataset) -> ImageDataset:
        """The test images as a dataset relabelled ``0..N-1`` (class names kept)."""
        return _part(dataset, self, "query")


def _check_int(value: object, name: str, low: int, example: str) -> int:
    if type(value) is not int or value < low:
        raise GenaugError(
            f"{name} must be an int of at least {low}, got {value!r}; pass e.g. {example}."
        )
    return value


def _members(dataset: ImageDataset) -> list[np.ndarray]:
    if not isinstance(dataset, ImageDataset):
        raise GenaugError(
            f"episodes are drawn from an ImageDataset, got {type(dataset).__name__}; "
            "load one with genaug.data.load_dataset."
        )
    targets = dataset.targets.numpy()  # (N,)
    if not dataset.has_labels:
        raise GenaugError(
            "episodes need a fully labelled dataset but some targets are hidden (-1); "
            "draw episodes from the labelled dataset before calling without_labels()."
        )
    return [np.flatnonzero(targets == c) for c in range(dataset.num_classes)]


def _check_fits(
    dataset: ImageDataset, members: list[np.ndarray], ways: int, shots: int, queries: int | None
) -> None:
    """Refuse ways/shots/queries the dataset cannot give, for every class (so that no episode
    fails later than another)."""
    if ways > len(members):
        raise GenaugError(
            f"ways={ways} is more than the {len(members)} classes of "
            f"{dataset.description.get('spec')!r}; lower ways (--ways) to {len(members)} or fewer."
        )
    need = shots + (1 if queries is None else queries)
    counts = [len(m) for m in members]
    small = int(np.argmin(counts))
    if counts[small] < need:
        tests = "at least 1 test image" if queries is None else f"{queries} test image(s)"
        most = counts[small] - (need - shots)
        fix = f"lower shots to {most} or fewer" if most >= 1 else "leave that class out"
        raise GenaugError(
            f"class {dataset.class_names[small]!r} holds {counts[small]} image(s), fewer than "
            f"{shots} shot(s) plus {tests}; {fix}."
        )


def sample_episode(
    dataset: ImageDataset,
    ways: int,
    shots: int,
    episode: int,
    seed: int = 0,
    queries: int | None = None,
) -> Episode:
    """Draw episode ``episode`` of ``dataset``: ``ways`` classes, ``shots`` shots of each.

    Args:
        dataset: a labelled dataset (e.g. the new classes of a split).
        ways: number of classes N (at least 2, at most the dataset's class count).
        shots: labelled images per class k (at least 1).
        episode: the episode number e (0, 1, ...); with ``seed`` it fixes the draw.
        seed: the seed of the episode stream.
        queries: test images per class; None tests on all the remaining images.

    Raises:
        GenaugError: ways above the class count, or a class smaller than shots + test images
            (naming the class and its count).
    """
    ways = _check_int(ways, "ways", 2, "ways=20")
    shots = _check_int(shots, "shots", 1, "shots=1")
    episode = _check_int(episode, "episode", 0, "episode=0")
    seed = _check_int(seed, "seed", 0, "seed=0")
    if queries is not None:
        queries = _check_int(queries, "queries", 1, "queries=5")
    members = _members(dataset)
    _check_fits(dataset, members, ways, shots, queries)
    return _draw(members, ways, shots, episode, seed, queries)


def _draw(
    members: list[np.ndarray],
    ways: int,
    shots: int,
    episode: int,
    seed: int,
    queries: int | None,
) -> Episode:
    # Separate streams per (seed, episode, role[, class]) so that neither the class draw nor a
    # class's image order depends on shots, queries or the other classes.
    rng = np.random.default_rng([seed, episode, 0])
    classes = np.sort(rng.choice(len(members), size=ways, replace=False))
    shot_idx: list[int] = []
    test_idx: list[int] = []
    for c in classes:
        order = members[c][
            np.random.default_rng([seed, episode, 1, int(c)]).permutation(len(members[c]))
        ]
        start = shots if queries is None else len(order) - queries
        shot_idx += order[:shots].tolist()
        test_idx += order[start:].tolist()
    return Episode(
        index=episode,
        seed=seed,
        classes=tuple(int(c) for c in classes),
        shots=tuple(shot_idx),
        test=tuple(test_idx),
        shots_per_class=shots,
    )


def iter_episodes(
    dataset: ImageDataset,
    ways: int,
    shots: int,
    episodes: int,
    seed: int = 0,
    queries: int | None = None,
) -> Iterator[Episode]:
    """Episodes ``0..episodes-1`` of :func:`sample_episode`, checked once before the first."""
    episodes = _check_int(episodes, "episodes", 1, "episodes=30")
    first = sample_episode(dataset, ways, shots, 0, seed, queries)  # all the checks
    members = _members(dataset)
    yield first
    for e in range(1, episodes):
        yield _draw(members, ways, shots, e, seed, queries)


def _part(dataset: ImageDataset, episode: Episode, split: str) -> ImageDataset:
    if not isinstance(episode, Episode):
        raise GenaugError(
            f"expected an Episode, got {type(episode).__name__}; draw one with sample_episode."
        )
    _members(dataset)  # a labelled ImageDataset
    positions = episode.shots if split == "support" else episode.test
    info = {"episode": episode.index, "episode_seed": episode.seed, "ways": episode.ways}
    info["shots_per_class"] = episode.shots_per_class
    return select_classes(dataset, episode.classes, positions, split=split, **info)


def episode_data(dataset: ImageDataset, episode: Episode) -> tuple[ImageDataset, ImageDataset]:
    """``(support, query)`` datasets of ``episode``, relabelled ``0..N-1`` in ``episode.classes``
    order; their descriptions record the episode. ``dataset`` must be the one it was drawn from.
    """
    return _part(dataset, episode, "support"), _part(dataset, episode, "query")
