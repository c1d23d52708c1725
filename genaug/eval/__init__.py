"""Measuring generators: a reference classifier trained on real data, quality metrics on its
features and on pixels, and :func:`evaluate_generator`, which runs them all on a checkpoint."""

from genaug.eval.evaluate import evaluate_generator, format_metrics
from genaug.eval.metrics import (
    Memorisation,
    PrecisionRecall,
    agreement,
    frechet_distance,
    frechet_distance_from_statistics,
    gaussian_statistics,
    memorisation,
    nearest_neighbours,
    precision_recall,
)
from genaug.eval.reference import (
    ReferenceClassifier,
    load_reference_classifier,
    save_reference_classifier,
    train_reference_classifier,
)

__all__ = [
    "Memorisation",
    "PrecisionRecall",
    "ReferenceClassifier",
    "agreement",
    "evaluate_generator",
    "format_metrics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "gaussian_statistics",
    "load_reference_classifier",
    "memorisation",
    "nearest_neighbours",
    "precision_recall",
    "save_reference_classifier",
    "train_reference_classifier",
]
