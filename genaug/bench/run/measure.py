"""One run of a bench grid: a timm classifier (or a head on the base classifier's features)
trained under one arm, and its ``runs.jsonl`` record.

Shared by the grid loop (:mod:`genaug.bench.run.grid`) and its CPU worker processes
(:mod:`genaug.bench.run.workers`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

from genaug.bench.learn.base_classifier import classifier_for
from genaug.bench.learn.classifier import train_classifier
from genaug.bench.learn.heads import base_extractor, keep_filter, run_head
from genaug.bench.learn.loss import FeatureHallucination, GeneratedTreatment
from genaug.bench.learn.pipeline import RecipePipeline, build_pipeline
from genaug.bench.plan.arms import Arm
from genaug.bench.plan.config import BenchConfig
from genaug.bench.plan.recipes import Recipe
from genaug.bench.plan.splits import CellSplit
from genaug.bench.run.cache import GeneratorCache, stable_seed
from genaug.data import ImageDataset
from genaug.errors import GenaugError
from genaug.models.base import Generator

__all__ = ["arm_pipeline", "run_key", "run_one", "subset_fingerprint"]


def run_key(shots: int, seed: int, arm: Arm) -> str:
    return f"{shots}|{seed}|{arm.key}"


def run_one(
    config: BenchConfig,
    arm: Arm,
    shots: int,
    seed: int,
    split: CellSplit,
    more_real: ImageDataset | None,
    cache: GeneratorCache,
    train: bool = True,
) -> dict[str, Any]:
    """One run of the grid: the timm classifier trained under ``arm`` on the cell's shots
    (``split``; ``more_real`` for the more-real reference), tested on the split's test images.

    Returns the ``runs.jsonl`` record. The generator must be trained already, or ``cache`` may
    train it (``train``: the main process; a worker process only loads).
    """
    recipe = arm.recipe
    labeled = more_real if recipe.more_real else split.labeled
    generator, facts = None, None
    if recipe.generative is not None:
        got = cache.get(recipe.generative.generator, arm.source, seed, shots, split.labeled, train)
        if got is None:
            raise GenaugError(f"the generator of {arm.label} is not trained; run the bench again.")
        generator, facts = got
    augment_seed = stable_seed(seed, shots, arm.key)
    pipeline = arm_pipeline(config, arm, generator, augment_seed, split, cache)
    if recipe.learner.is_head:
        measured = run_head(config, arm, split, generator, pipeline, augment_seed, cache.dataset)
    else:
        classifier = classifier_for(config, arm.base, recipe.learner.backbone)
        if recipe.learner.smoothing is not None:
            classifier.label_smoothing = recipe.learner.smoothing
        result = train_classifier(
            classifier,
            labeled.images,
            labeled.targets,
            split.test.images,
            split.test.targets,
            split.test.num_classes,
            augment=pipeline,
            init_seed=seed,
            data_seed=seed,
            augment_seed=augment_seed,
            treatment=_treatment(recipe),
            hallucination=_hallucination(config, generator, recipe, augment_seed),
        )
        measured = dataclasses.asdict(result)
    record = {
        "key": run_key(shots, seed, arm),
        "shots": shots,
        "seed": seed,
        "condition": arm.condition,
        "source": arm.source_label,
        "source_spec": arm.source,
        "arm": arm.label,
        "start": "base" if arm.base else "scratch",
        "kind": recipe.kind,
        "generative": recipe.generative.settings() if recipe.generative else None,
        "accuracy": measured["accuracy"],
        "macro_f1": measured["macro_f1"],
        "train_seconds": round(measured["train_seconds"], 3),
        "augment_seconds": round(measured["augment_seconds"], 3),
        "augment_ms_per_step": round(
            1000 * measured["augment_seconds"] / max(measured["steps"], 1), 3
        ),
        **_offline_cost(pipeline),
        "steps": measured["steps"],
        "train_images": measured["train_images"],
        "test_images": len(split.test),
        "subset_fingerprint": subset_fingerprint(split.labeled),
        "test_fingerprint": subset_fingerprint(split.test),
        "train_fingerprint": subset_fingerprint(labeled),
        "init_fingerprint": measured.get("init_fingerprint"),
        "generator": facts,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if recipe.learner.written:  # old conditions' records stay as they were
        record["learner"] = recipe.learner.record()
        record["generated_features"] = measured.get("generated_features")
    return record


def _offline_cost(pipeline: RecipePipeline | None) -> dict[str, float]:
    """``offline_seconds``: the one-off cost of an offline route's variations (none online)."""
    seconds = None if pipeline is None else pipeline.offline_seconds
    return {} if seconds is None else {"offline_seconds": round(seconds, 3)}


def _treatment(recipe: Recipe) -> GeneratedTreatment | None:
    """How the fine-tune treats an image generator's images (None: no image generator)."""
    step = recipe.generative
    if step is None:
        return None
    return GeneratedTreatment(weight=step.weight, soft=step.soft, bn=step.bn)


def _hallucination(
    config: BenchConfig, generator: Generator | None, recipe: Recipe, seed: int
) -> FeatureHallucination | None:
    """A feature-space generator feeding the fine-tune's head (None for image generators)."""
    if generator is None or not getattr(generator, "feature_space", False):
        return None
    generator.check_extractor(base_extractor(config))
    step = recipe.generative
    return FeatureHallucination(generator, step.count, step.weight, step.strength, seed + 2)


def arm_pipeline(
    config: BenchConfig,
    arm: Arm,
    generator: Generator | None,
    augment_seed: int,
    split: CellSplit,
    cache: GeneratorCache,
) -> RecipePipeline | None:
    """The arm's batch augmentation; mode ``neighbour`` walks toward the generator's data.

    A feature-space generator (a hallucinator) is not part of it: the learner uses it."""
    recipe = arm.recipe
    if generator is not None and getattr(generator, "feature_space", False):
        recipe, generator = dataclasses.replace(recipe, generative=None), None
    neighbours = cache.neighbours(arm.source, split.labeled) if arm.source else None
    # A guided walk spreads the shots' labels over the bank; a conditional generator's bank
    # is labelled already (its walk stays in the class without a guide).
    conditional = generator is not None and generator.conditional
    step = recipe.generative
    return build_pipeline(
        recipe,
        config.image_size,
        config.allow_flip(),
        generator,
        seed=augment_seed + 1,
        neighbours=neighbours,
        guide=None if conditional else split.labeled,
        keep=keep_filter(config, split.labeled) if step is not None and step.filter else None,
        shots=split.labeled if step is not None and step.offline else None,
    )


def subset_fingerprint(dataset: ImageDataset) -> str:
    """A short hash of a labelled subset's images and targets (equal subsets <-> equal hash)."""
    digest = hashlib.sha1(dataset.images.numpy().tobytes())
    digest.update(dataset.targets.numpy().tobytes())
    return digest.hexdigest()[:16]
