"""Evaluate a trained generator against real data: how realistic, varied, useful and new.

:func:`evaluate_generator` draws samples from any generator family (only the
:class:`~genaug.models.base.Generator` contract is used), trains (or reuses) a small reference
classifier on the real training part, and reports:

- ``conditional_accuracy``: how often the reference classifier agrees with the class a
  conditional generator was asked for (None for an unconditional generator);
- ``frechet_distance``: the Frechet distance between generated and real training features of the
  reference classifier (no Inception weights are downloaded);
- ``precision`` / ``recall``: the k-NN manifold estimate (Kynkaanniemi et al., 2019);
- ``cas``: Classification Accuracy Score, the test accuracy of a classifier trained on generated
  images only, beside ``cas_real``, the same recipe trained on the real training part;
- ``memorisation_share``: the share of samples closer (in pixels) to a training image than real
  images usually are to each other.

Each generator number comes with the score of the real held-out test part (``*_real``), which
is what a generator drawing fresh images from the data distribution would get at that sample
size: the numbers are read against it, not against 0 or 1. Each number is one step of
:mod:`genaug.eval.measures`; the real data is prepared in :mod:`genaug.eval.real`, the generator sampled in
:mod:`genaug.eval.samples`, the judge cached by
:func:`~genaug.eval.reference.reference_classifier_for`, the figures drawn by
:mod:`genaug.eval.figures` and the table by :mod:`genaug.eval.table`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genaug.data import ImageDataset, train_test_split
from genaug.device import resolve_device
from genaug.errors import GenaugError
from genaug.eval.measures import (
    cas_metrics,
    conditional_accuracy,
    feature_metrics,
    judge_facts,
    judge_sees,
    memorisation_metrics,
)
from genaug.eval.metrics import Memorisation
from genaug.eval.real import match_images, prepare_real_data
from genaug.eval.reference import CLASSIFIER_SEED, reference_classifier_for
from genaug.eval.samples import draw_samples, load_model
from genaug.eval.table import format_metrics
from genaug.io import atomic_write_json, check_writable, os_errors_as_sentences
from genaug.models.base import Generator

__all__ = [
    "CLASSIFIER_SEED",
    "evaluate_generator",
    "format_metrics",
    "match_images",
    "prepare_real_data",
    "reference_classifier_for",
]

_NOTES = (
    "*_real: the held-out real test part scored the same way (what fresh real images "
    "get; precision/recall and FD at the test-set size). Features: the reference "
    "classifier's. cas_real: the same classifier recipe trained on the real training "
    "part; cas_ratio = cas / cas_real. Memorisation: pixel-space L2 to the nearest "
    "training image below relative_threshold x the median nearest-neighbour distance "
    "between training images (the typical distance); nearest_distance_ratio: the "
    "samples' median distance to their nearest training image over the typical distance "
    "(about 1 for fresh real images, towards 0 for copies)."
)


# ----------------------------------------------------------------------------- the steps
def _check_arguments(n_samples: int, classifier_steps: int, k: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples <= k:
        raise GenaugError(f"n_samples must be an integer above k={k}, got {n_samples!r}.")
    if isinstance(classifier_steps, bool) or not isinstance(classifier_steps, int):
        raise GenaugError(f"classifier_steps must be a positive int, got {classifier_steps!r}.")
    if classifier_steps < 1:
        raise GenaugError(f"classifier_steps must be a positive int, got {classifier_steps!r}.")


def _split_real(
    real: ImageDataset, test_fraction: float, test_seed: int, k: int
) -> tuple[ImageDataset, ImageDataset]:
    """The training part (what the generator is compared with) and the held-out test part."""
    train_part, test_part = train_test_split(real, test_fraction=test_fraction, test_seed=test_seed)
    if len(train_part) <= k or len(test_part) <= k:
        raise GenaugError(
            f"The real data is too small to evaluate with k={k}: {len(train_part)} training and "
            f"{len(test_part)} test images; use a larger dataset."
        )
    return train_part, test_part


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    tick = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - tick


# ------------------------------------------------------------------------------ the evaluation
def _check_measurable(model: Generator) -> None:
    """Refuse a generator that does not draw images from noise: nothing here applies to it."""
    if model.feature_space:  # makes features
        raise GenaugError(
            f"genaug evaluate measures images, which a {model.family} does not make (it makes "
            "features); measure it with an episodic `genaug bench` (base:proto, base:probe)."
        )
    if model.image_conditioned:
        raise GenaugError(
            f"genaug evaluate measures images drawn from noise, which a {model.family} generator "
            "does not make (it varies given images); measure it with an episodic `genaug bench`."
        )


@dataclass(frozen=True)
class _Output:
    """Where an evaluation writes: ``folder`` (None: nowhere) gets the JSON ``metrics_name``
    and, with ``plot``, the figures named after its stem."""

    folder: Path | None
    metrics_name: str
    plot: bool


def evaluate_generator(
    checkpoint_or_model: Generator | str | os.PathLike,
    data: ImageDataset | str | None = None,
    n_samples: int = 1000,
    seed: int = 0,
    device: str | torch.device = "auto",
    out_dir: str | os.PathLike | None = None,
    plot: bool = False,
    *,
    cache_dir: str | os.PathLike | None = None,
    classifier_steps: int = 600,
    k: int = 3,
    relative_threshold: float = 0.5,
    test_fraction: float = 0.3,
    test_seed: int = 0,
    metrics_name: str = "metrics.json",
) -> dict[str, Any]:
    """Measure a generator's samples against real data; returns the metrics as a JSON-able dict.

    The real data is split like the benchmark splits it (``train_test_split(data, test_fraction,
    test_seed)``, the same test part as ``few_shot_split``): the generator is compared with the
    training part, and the held-out test part gives the real-data reference of every number and
    tests the CAS classifiers.

    Args:
        checkpoint_or_model: a Generator, or a checkpoint / training run folder.
        data: ImageDataset or dataset spec; None = the spec recorded in the checkpoint. Other
            sizes are resized and gray <-> RGB converted to the generator's.
        n_samples: generated images (sample ``i`` has class ``i % num_classes``).
        seed: which samples (the same seed gives the same samples).
        device: "auto", "cpu" or "cuda" for the classifiers and distances (a Generator object
            samples on its own device).
        out_dir: when given, ``metrics_name`` (JSON) is written there, and with ``plot`` the
            per-class sample grid (``<stem>.samples.png``) and the closest (sample, training
            image) pairs (``<stem>.nearest.png``).
        cache_dir: folder for the reference classifier, reused when it matches the data and
            recipe; default ``out_dir/reference`` (None without ``out_dir``: not cached).
        classifier_steps: training steps of the reference and of the CAS classifier.
        k: neighbours for precision / recall.
        relative_threshold: a sample is a copy when its nearest training image is closer than
            this times the median nearest-neighbour distance between training images (pixels).

    Example: ``evaluate_generator("runs/digits-vae", "digits", out_dir="runs/digits-vae/eval")``.
    """
    started = time.perf_counter()
    _check_arguments(n_samples, classifier_steps, k)
    dev = resolve_device(device)
    model, checkpoint = load_model(checkpoint_or_model, dev)
    _check_measurable(model)  # before the judge trains
    real = prepare_real_data(data, model)
    train_part, test_part = _split_real(real, test_fraction, test_seed, k)
    out = Path(out_dir) if out_dir is not None else None
    if cache_dir is None and out is not None:
        cache_dir = out / "reference"
    _check_writable_folders(out, cache_dir)
    timings: dict[str, float] = {}

    # 1. The judge: a small CNN trained on the real training part, and its test accuracy.
    with _timed(timings, "reference_classifier"):
        judge, reused = reference_classifier_for(train_part, cache_dir, classifier_steps, dev)
    # 2. Samples (balanced classes) and everything the judge sees in them.
    with _timed(timings, "sampling"):
        samples, labels = draw_samples(model, n_samples, seed)
    train_images, test_images = train_part.float_images(), test_part.float_images()
    seen = judge_sees(judge, train_images, test_images, test_part, samples)
    # 3. Realism and coverage; 4. usefulness; 5. memorisation.
    with _timed(timings, "feature_metrics"):
        features = feature_metrics(seen, n_samples, seed, k, dev)
    with _timed(timings, "cas"):
        cas = cas_metrics(model, samples, labels, seen, test_part, classifier_steps, seed, dev)
    with _timed(timings, "memorisation"):
        memo, copies = memorisation_metrics(
            samples, train_images, test_images, relative_threshold, seed, dev
        )

    metrics: dict[str, Any] = {
        "checkpoint": checkpoint,
        **{key: getattr(model, key) for key in ("family", "conditional", "image_size", "channels")},
        "data": _data_facts(real, train_part, test_part, test_fraction, test_seed),
        "n_samples": n_samples,
        "seed": seed,
        "device": str(dev),
        "reference_classifier": judge_facts(seen, classifier_steps, reused, cache_dir),
        **conditional_accuracy(seen, labels),
        **features,
        **cas,
        **copies,
        "notes": _NOTES,
        "timings_seconds": {name: round(t, 2) for name, t in timings.items()},
        "files": {},
    }
    output = _Output(out, metrics_name, plot)
    _write(metrics, output, model=model, samples=samples, train_images=train_images, memo=memo)
    _finish(metrics, output, started)
    return metrics


def _data_facts(
    real: ImageDataset,
    train_part: ImageDataset,
    test_part: ImageDataset,
    test_fraction: float,
    test_seed: int,
) -> dict[str, Any]:
    """The real data an evaluation compared with, as its JSON records it."""
    return {
        "spec": real.description.get("spec"),
        "train_count": len(train_part),
        "test_count": len(test_part),
        "test_fraction": test_fraction,
        "test_seed": test_seed,
    }


def _write(
    metrics: dict[str, Any],
    output: _Output,
    *,
    model: Generator,
    samples: Tensor,
    train_images: Tensor,
    memo: Memorisation,
) -> None:
    """Draw the figures (with ``plot``) into the output folder and name the files in ``metrics``."""
    if output.folder is None:
        return
    output.folder.mkdir(parents=True, exist_ok=True)
    if output.plot:
        from genaug.eval.figures import save_evaluation_figures

        stem = Path(output.metrics_name).stem
        metrics["files"] = save_evaluation_figures(
            model, samples, train_images, memo, output.folder, stem, metrics["seed"]
        )
    metrics["files"]["metrics"] = str(output.folder / output.metrics_name)


def _finish(metrics: dict[str, Any], output: _Output, started: float) -> None:
    """Add the total seconds; write the JSON into the output folder."""
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    if output.folder is not None:
        atomic_write_json(output.folder / output.metrics_name, metrics)


def _check_writable_folders(out: Path | None, cache_dir: str | os.PathLike | None) -> None:
    """Refuse, before any work, folders the evaluation could not write its files into."""
    fix = (
        "give writable folders with --out FILE.json and --cache DIR (out_dir= and cache_dir= "
        "in Python)"
    )
    for folder in (out, cache_dir):
        if folder is not None:
            with os_errors_as_sentences(f"write the evaluation's files in {folder}", fix):
                check_writable(folder)
