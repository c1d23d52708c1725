"""The base classifier's frozen features in a bench: ``base:proto`` / ``base:probe`` runs, and the
filter that keeps a generated image only where those features put it in its own class.

The extractor is the bench's base classifier (``pretrained/base-classifier``) without its head;
the centre (``center=1``) is the mean feature of the base classes' images. Both are computed
once per process and kept (the bench's runs share them; worker processes each build their own).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from torch import Tensor

from genaug.bench.learn.base_classifier import base_folder, load_base_data
from genaug.bench.learn.classifier import macro_f1
from genaug.bench.learn.pipeline import RecipePipeline
from genaug.bench.plan.arms import Arm
from genaug.bench.plan.config import BenchConfig
from genaug.bench.plan.splits import CellSplit
from genaug.data import ImageDataset
from genaug.device import resolve_device
from genaug.fewshot import fit_head, nearest_own_class, support_features
from genaug.models.base import Generator
from genaug.models.features import FeatureExtractor

__all__ = ["base_center", "base_extractor", "keep_filter", "run_head"]

_EXTRACTORS: dict[str, FeatureExtractor] = {}
_CENTERS: dict[str, Tensor] = {}


def base_extractor(config: BenchConfig) -> FeatureExtractor:
    """The bench's base classifier as a frozen feature extractor (loaded once per process)."""
    folder = str(base_folder(config.out))
    if folder not in _EXTRACTORS:
        device = resolve_device(config.device)
        _EXTRACTORS[folder] = FeatureExtractor.from_folder(folder).to(device)
    return _EXTRACTORS[folder]


def base_center(config: BenchConfig, evaluated: ImageDataset) -> Tensor:
    """The mean feature (D,) of the base classes' images (computed once per process)."""
    extractor = base_extractor(config)
    key = f"{extractor.source}|{extractor.fingerprint}"
    if key not in _CENTERS:
        base = load_base_data(config, evaluated)
        _CENTERS[key] = extractor(base.images).mean(0)
    return _CENTERS[key]


def keep_filter(config: BenchConfig, shots: ImageDataset) -> Callable[[Tensor, Tensor], Tensor]:
    """``filter=1``: keep a generated image (float [0, 1]) when the base features' nearest
    prototype of the episode's real shots is its own class."""
    extractor = base_extractor(config)
    keep = nearest_own_class(extractor(shots.images), shots.targets, shots.num_classes)

    def images_kept(images: Tensor, labels: Tensor) -> Tensor:
        return keep(extractor(images), labels)

    return images_kept


def run_head(
    config: BenchConfig,
    arm: Arm,
    split: CellSplit,
    generator: Generator | None,
    pipeline: RecipePipeline | None,
    augment_seed: int,
    evaluated: ImageDataset,
) -> dict[str, Any]:
    """A ``base:proto`` / ``base:probe`` run: fit the head on the shots' frozen features (their
    augmented views and generated features as the recipe says), test it on the split's test
    images."""
    recipe, learner = arm.recipe, arm.recipe.learner
    step = recipe.generative
    extractor = base_extractor(config)
    center = base_center(config, evaluated) if learner.center else None
    feature_space = generator is not None and getattr(generator, "feature_space", False)
    shots, test = split.labeled, split.test
    started = time.perf_counter()
    support = support_features(
        extractor,
        shots.images,
        shots.targets,
        views=learner.views if pipeline is not None else 0,
        augment=pipeline,
        hallucinator=generator if feature_space else None,
        count=step.count if step is not None else 0,
        weight=step.weight if step is not None else 1.0,
        strength=step.strength if step is not None else 1.0,
        filter_generated=bool(step is not None and step.filter),
        num_classes=test.num_classes,
        seed=augment_seed,
    )
    made = time.perf_counter() - started
    head = fit_head(
        learner.name,
        support.features,
        support.labels,
        test.num_classes,
        support.weights,
        center,
        learner.regularisation,
    )
    seconds = time.perf_counter() - started
    predictions = head(extractor(test.images)).argmax(1).cpu()
    targets = test.targets.long().cpu()
    generated = support.generated.to(support.weights.device)
    return {
        "accuracy": float((predictions == targets).float().mean()),
        "macro_f1": macro_f1(predictions, targets, test.num_classes),
        "train_seconds": seconds,  # the head's fitting, views and hallucinations included
        "augment_seconds": made,  # making the views and the generated features
        "steps": 0,
        "train_images": len(support),  # features the head was fit on
        "generated_features": int(generated.sum()),
        "kept_generated": int((support.weights[generated] > 0).sum()),
    }
