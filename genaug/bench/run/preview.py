"""The preview of a bench report: a few training images per arm after augmentation (first
shot count, first seed), from generators already trained."""

from __future__ import annotations

import torch

from genaug.bench.plan.arms import Arm
from genaug.bench.plan.config import BenchConfig
from genaug.bench.plan.splits import make_split, more_real_support
from genaug.bench.run.cache import GeneratorCache, stable_seed
from genaug.bench.run.measure import arm_pipeline
from genaug.data import ImageDataset, batch_indices

__all__ = ["preview_rows"]


def preview_rows(
    config: BenchConfig, arms: list[Arm], dataset: ImageDataset, cache: GeneratorCache
) -> list[tuple[str, torch.Tensor]]:
    """A few training images per arm after augmentation (first shot count, first seed)."""
    shots, seed = config.shots[0], config.seeds[0]
    split = make_split(config, dataset, shots, seed)
    rows: list[tuple[str, torch.Tensor]] = []
    state = torch.random.get_rng_state()
    try:
        for arm in arms:
            labeled = split.labeled
            if arm.recipe.more_real:
                labeled = more_real_support(config, dataset, shots, seed)
            generator = None
            if arm.recipe.generative is not None:
                got = cache.get(
                    arm.recipe.generative.generator, arm.source, seed, shots, split.labeled, False
                )
                if got is None:  # not trained yet (a partial report): leave the arm out
                    continue
                generator = got[0]
            index = batch_indices(0, config.preview, len(labeled), seed)
            images, labels = labeled.images[index], labeled.targets[index]
            augment_seed = stable_seed(seed, shots, arm.key)
            pipeline = arm_pipeline(config, arm, generator, augment_seed, split, cache)
            torch.manual_seed(augment_seed)
            if pipeline is not None:  # show the generated share at its largest
                warmup = arm.recipe.generative and arm.recipe.generative.schedule == "warmup"
                pipeline.set_progress(1.0 if warmup else 0.0)
                images, labels = pipeline(images, labels)
            rows.append((arm.label, images))
    finally:
        torch.random.set_rng_state(state)
    return rows
