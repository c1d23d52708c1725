"""The numbers of a generator's evaluation (:func:`~genaug.eval.evaluate.evaluate_generator`),
one step each: what the judge (the reference classifier) sees, conditional accuracy, realism and
coverage in its features, usefulness (CAS) and memorisation; each with the score of the real
held-out test part (``*_real``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genaug.data import ImageDataset
from genaug.data.convert import to_uint8_images
from genaug.eval.metrics import (
    Memorisation,
    agreement,
    frechet_distance,
    memorisation,
    precision_recall,
)
from genaug.eval.reference import (
    CLASSIFIER_SEED,
    ReferenceClassifier,
    accuracy,
    train_reference_classifier,
)
from genaug.models.base import Generator

__all__ = [
    "Seen",
    "cas_metrics",
    "conditional_accuracy",
    "feature_metrics",
    "judge_facts",
    "judge_sees",
    "memorisation_metrics",
    "rounded",
]


@dataclass
class Seen:
    """What the judge sees: features (N, F) of each image set and its predicted classes (N,)."""

    train_features: Tensor
    test_features: Tensor
    test_predictions: Tensor
    fake_features: Tensor
    fake_predictions: Tensor
    reference_accuracy: float  # the judge's accuracy on the real test part


def judge_sees(
    judge: ReferenceClassifier,
    train_images: Tensor,
    test_images: Tensor,
    test_part: ImageDataset,
    samples: Tensor,
) -> Seen:
    train_features, _ = judge.embed(train_images)
    test_features, test_predictions = judge.embed(test_images)
    fake_features, fake_predictions = judge.embed(samples)
    return Seen(
        train_features,
        test_features,
        test_predictions,
        fake_features,
        fake_predictions,
        agreement(test_predictions, test_part.targets),
    )


def judge_facts(
    seen: Seen, steps: int, reused: bool, cache_dir: str | os.PathLike | None
) -> dict[str, Any]:
    """What the judge is, as the evaluation's JSON records it."""
    return {
        "steps": steps,
        "test_accuracy": rounded(seen.reference_accuracy),
        "reused_from_cache": reused,
        "cache": str(cache_dir) if cache_dir is not None else None,
        "features": int(seen.train_features.shape[1]),
    }


def conditional_accuracy(seen: Seen, labels: Tensor | None) -> dict[str, Any]:
    """How often the judge names the class a conditional generator was asked for."""
    value = agreement(seen.fake_predictions, labels) if labels is not None else None
    return {
        "conditional_accuracy": rounded(value),
        "conditional_accuracy_real": rounded(seen.reference_accuracy),
    }


def feature_metrics(
    seen: Seen, n_samples: int, seed: int, k: int, device: torch.device
) -> dict[str, Any]:
    """Realism and coverage in the judge's features: Frechet distance, precision / recall.

    Precision / recall compare sets of equal size (the radii depend on it): the training
    features are subsampled to the sample count (and to the test count for the real line).
    """
    train_features = seen.train_features
    pick = torch.Generator().manual_seed(seed)
    real_for_pr = train_features[torch.randperm(len(train_features), generator=pick)[:n_samples]]
    real_for_test = train_features[torch.randperm(len(train_features), generator=pick)]
    real_for_test = real_for_test[: len(seen.test_features)]
    pr = precision_recall(real_for_pr, seen.fake_features, k=k, device=device)
    pr_real = precision_recall(real_for_test, seen.test_features, k=k, device=device)
    fd = frechet_distance(train_features, seen.fake_features)
    fd_real = frechet_distance(train_features, seen.test_features)
    return {
        "frechet_distance": rounded(fd),
        "frechet_distance_real": rounded(fd_real),
        "precision": rounded(pr.precision),
        "recall": rounded(pr.recall),
        "precision_real": rounded(pr_real.precision),
        "recall_real": rounded(pr_real.recall),
        "k": k,
    }


def cas_metrics(
    model: Generator,
    samples: Tensor,
    labels: Tensor | None,
    seen: Seen,
    test_part: ImageDataset,
    classifier_steps: int,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """Usefulness: a classifier trained on samples only (CAS), tested on real test images."""
    cas = cas_ratio = None
    if labels is not None:
        synthetic = ImageDataset(
            to_uint8_images(samples),
            labels,
            model.class_names,
            {"spec": "synthetic", "family": model.family, "seed": seed},
        )
        cas_model = train_reference_classifier(
            synthetic, steps=classifier_steps, seed=CLASSIFIER_SEED, device=str(device)
        )
        cas = accuracy(cas_model, test_part)
        reference = seen.reference_accuracy
        cas_ratio = cas / reference if reference > 0 else None
    return {
        "cas": rounded(cas),
        "cas_real": rounded(seen.reference_accuracy),
        "cas_ratio": rounded(cas_ratio),
    }


def memorisation_metrics(
    samples: Tensor,
    train_images: Tensor,
    test_images: Tensor,
    relative_threshold: float,
    seed: int,
    device: torch.device,
) -> tuple[Memorisation, dict[str, Any]]:
    """Memorisation in pixel space (copies of training images are what would leak)."""
    memo = memorisation(
        samples, train_images, relative_threshold=relative_threshold, seed=seed, device=device
    )
    real = memorisation(test_images, train_images, threshold=memo.threshold, device=device)
    typical = memo.typical_distance
    return memo, {
        "memorisation_share": rounded(memo.share),
        "memorisation_share_real": rounded(real.share),
        "nearest_distance_ratio": rounded(_ratio(memo.distances, typical)),
        "nearest_distance_ratio_real": rounded(_ratio(real.distances, typical)),
        "memorisation_space": "pixels",
        "memorisation_threshold": rounded(memo.threshold),
        "memorisation_typical_distance": rounded(typical),
        "relative_threshold": relative_threshold,
    }


def _ratio(distances: Tensor, typical: float) -> float | None:
    """Median distance to the nearest training image, over the typical one (1 = like real)."""
    return float(distances.median()) / typical if typical > 0 else None


def rounded(value: float | None, digits: int = 6) -> float | None:
    """``value`` rounded to ``digits`` decimals (None stays None): what the JSON holds."""
    return None if value is None else round(float(value), digits)
