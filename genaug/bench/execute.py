"""One run of a bench grid: a timm classifier trained under one arm, and its record.

Shared by the grid loop (:mod:`genaug.bench.run`) and its CPU worker processes
(:mod:`genaug.bench.workers`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from genaug.bench.arms import Arm
from genaug.bench.cache import GeneratorCache, stable_seed
from genaug.bench.classifier import train_classifier
from genaug.bench.config import BenchConfig
from genaug.bench.pipeline import build_pipeline
from genaug.bench.pretrain import classifier_for
from genaug.data import ImageDataset
from genaug.errors import GenaugError

__all__ = ["arm_pipeline", "run_key", "run_one", "subset_fingerprint"]


def run_key(shots: int, seed: int, arm: Arm) -> str:
    return f"{shots}|{seed}|{arm.key}"


def run_one(
    config: BenchConfig,
    arm: Arm,
    shots: int,
    seed: int,
    split: Any,
    more_real: Any,
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
    result = train_classifier(
        classifier_for(config, arm.base),
        labeled.images,
        labeled.targets,
        split.test.images,
        split.test.targets,
        split.test.num_classes,
        augment=pipeline,
        init_seed=seed,
        data_seed=seed,
        augment_seed=augment_seed,
    )
    return {
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
        "accuracy": result.accuracy,
        "macro_f1": result.macro_f1,
        "train_seconds": round(result.train_seconds, 3),
        "augment_seconds": round(result.augment_seconds, 3),
        "augment_ms_per_step": round(1000 * result.augment_seconds / result.steps, 3),
        "steps": result.steps,
        "train_images": result.train_images,
        "test_images": len(split.test),
        "subset_fingerprint": subset_fingerprint(split.labeled),
        "test_fingerprint": subset_fingerprint(split.test),
        "train_fingerprint": subset_fingerprint(labeled),
        "init_fingerprint": result.init_fingerprint,
        "generator": facts,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def arm_pipeline(
    config: BenchConfig,
    arm: Arm,
    generator: Any,
    augment_seed: int,
    split: Any,
    cache: GeneratorCache,
) -> Any:
    """The arm's batch augmentation; mode ``neighbour`` walks toward the generator's data."""
    neighbours = cache.neighbours(arm.source, split.labeled) if arm.source else None
    # A guided walk spreads the shots' labels over the bank; a conditional generator's bank
    # is labelled already (its walk stays in the class without a guide).
    conditional = generator is not None and generator.conditional
    return build_pipeline(
        arm.recipe,
        config.image_size,
        config.allow_flip(),
        generator,
        seed=augment_seed + 1,
        neighbours=neighbours,
        guide=None if conditional else split.labeled,
    )


def subset_fingerprint(dataset: ImageDataset) -> str:
    """A short hash of a labelled subset's images and targets (equal subsets <-> equal hash)."""
    digest = hashlib.sha1(dataset.images.numpy().tobytes())
    digest.update(dataset.targets.numpy().tobytes())
    return digest.hexdigest()[:16]
