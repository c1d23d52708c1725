"""The images of a grid cell (shots, seed): the fixed-test-set few-shot split, or with
``BenchConfig.ways`` set, an episode of the episodic few-shot protocol.

An episode draws ``ways`` classes of the evaluated data (the *new* classes) and ``shots`` images
of each; the classifier learns the episode's labels ``0..ways-1`` from those shots and is tested
on ``queries`` other images of the same classes. The grid's seeds are the episode numbers: run
``(shots, seed e)`` is episode ``e``, and every condition of it uses the same classes, shots,
test images, initial weights (``init_seed = e``) and batch order (``data_seed = e``): a paired
design. The episode stream's own seed is ``BenchConfig.test_seed``.

Episodes are nested (see :mod:`genaug.data.episodes`): the classes of episode ``e`` do not
depend on the shot count, the k shots are the first k of one per-class order, and the test
images are the *last* ``queries`` of that order. ``queries`` defaults to the smallest class size
minus ``max(shots) x more_real_factor``, so the ``more-real`` reference (factor x the shots,
same classes) is tested on the very images the other conditions are, at every shot count.

Generators come as ``checkpoint:PATH`` trained on other (base) classes, or from ``labeled`` (the
episode's own shots). A checkpoint whose recorded training classes overlap the evaluated ones is
refused; the ``pool`` source (the new classes' images, test images included) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genaug.bench.plan.arms import Arm
from genaug.bench.plan.config import BenchConfig
from genaug.data import (
    Episode,
    FewShotSplit,
    ImageDataset,
    check_disjoint_classes,
    episode_data,
    few_shot_split,
    sample_episode,
)
from genaug.errors import GenaugError
from genaug.models import load_generator
from genaug.models.base import Generator

__all__ = [
    "CellSplit",
    "EpisodeSplit",
    "check_sources",
    "make_split",
    "more_real_support",
    "prepare_episodes",
    "training_class_names",
]


@dataclass(frozen=True)
class EpisodeSplit:
    """One episode as the bench uses a split: ``labeled`` (the shots, labels ``0..ways-1``) and
    ``test`` (the episode's test images, same labels)."""

    labeled: ImageDataset
    test: ImageDataset
    episode: Episode


CellSplit = FewShotSplit | EpisodeSplit  # what make_split gives: .labeled and .test


def _needs_more_real(arms: list[Arm]) -> bool:
    return any(arm.recipe.more_real for arm in arms)


def prepare_episodes(config: BenchConfig, dataset: ImageDataset, arms: list[Arm]) -> None:
    """Resolve ``config.queries`` and check that every episode fits, before any run.

    The test images per class default to the smallest class size minus ``max(shots) x
    more_real_factor``. Raises one sentence for ``ways`` above the class count, or a class too
    small for the shots (and the more-real reference's shots) plus the test images, naming the
    class and its count (the data layer's check).
    """
    if config.ways > dataset.num_classes:
        raise GenaugError(
            f"--ways {config.ways} is more than the {dataset.num_classes} classes of "
            f"{config.data}; lower ways to {dataset.num_classes} or fewer."
        )
    counts = dataset.targets.bincount(minlength=dataset.num_classes).tolist()
    smallest = min(range(len(counts)), key=counts.__getitem__)
    most = max(config.shots) * config.more_real_factor
    if config.queries is None:
        queries = counts[smallest] - most
        if queries < 1:
            raise GenaugError(
                f"class {dataset.class_names[smallest]!r} holds {counts[smallest]} image(s), "
                f"too few for {max(config.shots)} shot(s) x more_real_factor "
                f"{config.more_real_factor} plus a test image; lower shots, or set queries "
                "(test images per class) and leave more-real out."
            )
        config.queries = queries
    # The largest draw the grid makes (more-real's shots if it runs) must fit every class.
    largest = most if _needs_more_real(arms) else max(config.shots)
    try:
        sample_episode(dataset, config.ways, largest, 0, config.test_seed, config.queries)
    except GenaugError as exc:
        what = "the more-real reference's" if largest > max(config.shots) else "the episodes'"
        raise GenaugError(f"{what} {largest} shots per class do not fit: {exc}") from None


def make_split(config: BenchConfig, dataset: ImageDataset, shots: int, seed: int) -> CellSplit:
    """The labelled/test split of a (shots, seed) cell: episode ``seed`` when ``config.ways``
    is set, else the fixed-test-set few-shot split of :func:`genaug.data.few_shot_split`."""
    if not config.ways:
        return few_shot_split(dataset, shots, seed, config.test_fraction, config.test_seed)
    episode = sample_episode(dataset, config.ways, shots, seed, config.test_seed, config.queries)
    support, query = episode_data(dataset, episode)
    return EpisodeSplit(support, query, episode)


def more_real_support(
    config: BenchConfig, dataset: ImageDataset, shots: int, seed: int
) -> ImageDataset:
    """The more-real reference's shots: ``factor x shots`` of episode ``seed``'s classes (its
    first ``shots`` are the cell's shots; its test images are the cell's)."""
    more = shots * config.more_real_factor
    if not config.ways:
        split: FewShotSplit = few_shot_split(
            dataset, more, seed, config.test_fraction, config.test_seed
        )
        return split.labeled
    episode = sample_episode(dataset, config.ways, more, seed, config.test_seed, config.queries)
    return episode.support(dataset)


def training_class_names(model: Generator) -> list[str] | None:
    """The classes a generator was trained on, as its checkpoint records them (None: unknown).

    ``genaug train`` records them in the data description (also for unlabelled training);
    older checkpoints of class-conditional or pair families have them as ``class_names``.
    """
    recorded = (getattr(model, "data_description", None) or {}).get("class_names")
    if isinstance(recorded, list) and recorded:
        return [str(n) for n in recorded]
    names = list(getattr(model, "class_names", None) or [])
    return names if getattr(model, "num_classes", 0) and names else None


def check_sources(config: BenchConfig, dataset: ImageDataset, arms: list[Arm]) -> dict[str, Any]:
    """Refuse generator data that would see the evaluated classes' test images or classes.

    Returns, per checkpoint source, what was checked (recorded in the bench config's report).
    """
    checked: dict[str, Any] = {}
    for arm in arms:
        source = arm.source
        if source is None or source in checked:
            continue
        if source == "pool":
            raise GenaugError(
                f"condition {arm.condition!r} uses generator data pool, which in an episodic "
                "bench would train on the new classes' test images; give a generator trained "
                "on base classes as checkpoint:PATH (or use labeled: the episode's shots)."
            )
        step = arm.recipe.generative
        if step is not None and step.mode == "neighbour" and source != "labeled":
            raise GenaugError(
                f"condition {arm.condition!r}: mode neighbour walks toward the pool of the "
                "evaluated data, which holds the episodes' test images; use mode vary or "
                "perturb with a checkpoint."
            )
        if not source.startswith("checkpoint:"):
            checked[source] = None
            continue
        path = source.partition(":")[2]
        names = training_class_names(load_generator(path))
        if names is None:
            checked[source] = {"path": path, "training_classes": "not recorded"}
            continue
        try:
            check_disjoint_classes(names, dataset)
        except GenaugError as exc:
            raise GenaugError(
                f"the generator in {path} was trained on classes this bench evaluates - {exc}"
            ) from None
        checked[source] = {"path": path, "training_classes": len(names), "overlap": 0}
    spec = config.pretrain_generator
    if spec and any(arm.base for arm in arms):  # the base classifier learns from its variations
        path = spec.partition(":")[2] if spec.startswith("checkpoint:") else spec
        names = training_class_names(load_generator(path))
        if names is not None:
            try:
                check_disjoint_classes(names, dataset)
            except GenaugError as exc:
                raise GenaugError(
                    f"pretrain_generator {path} was trained on classes this bench evaluates - {exc}"
                ) from None
    return {k: v for k, v in checked.items() if v is not None}
