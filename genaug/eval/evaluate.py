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
size: the numbers are read against it, not against 0 or 1.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genaug.data import ImageDataset, load_dataset, train_test_split
from genaug.data.convert import convert_channels, resize_images, to_uint8_images
from genaug.device import resolve_device
from genaug.errors import GenaugError
from genaug.eval.metrics import (
    agreement,
    frechet_distance,
    memorisation,
    precision_recall,
)
from genaug.eval.reference import (
    ReferenceClassifier,
    accuracy,
    load_reference_classifier,
    read_reference_meta,
    save_reference_classifier,
    train_reference_classifier,
)
from genaug.io import atomic_write_json
from genaug.models.base import Generator
from genaug.models.sampling import sample_indices

__all__ = [
    "evaluate_generator",
    "format_metrics",
    "match_images",
    "prepare_real_data",
    "reference_classifier_for",
]

#: Seed of the reference classifier and of the CAS classifier (the same recipe for both).
CLASSIFIER_SEED = 0
#: How many closest (sample, training image) pairs the nearest-neighbour figure shows.
NEAREST_PAIRS = 8
_SAMPLE_BATCH = 256


# ----------------------------------------------------------------------------- the real data
def match_images(images: Tensor, channels: int, image_size: int, what: str = "data") -> Tensor:
    """Give a batch (N, C, H, W) the generator's channel count and square size, or refuse.

    Gray <-> RGB converts (``convert_channels``) and any size resizes (``resize_images``); other
    channel counts cannot be matched and raise a :class:`GenaugError` naming both shapes.
    """
    if images.ndim != 4:
        raise GenaugError(
            f"The {what} must be images shaped (N, C, H, W), got shape {tuple(images.shape)}."
        )
    have = f"{images.shape[1]}x{images.shape[2]}x{images.shape[3]}"
    want = f"{channels}x{image_size}x{image_size}"
    if images.shape[1] != channels and {int(images.shape[1]), channels} != {1, 3}:
        raise GenaugError(
            f"The {what} holds {have} (CxHxW) images but the generator makes {want} images, and "
            f"{images.shape[1]} channels cannot be converted to {channels}; only gray (1) <-> "
            "RGB (3) converts, so give the data 1 or 3 channels."
        )
    return resize_images(convert_channels(images, channels), image_size)


def prepare_real_data(data: ImageDataset | str | None, model: Generator) -> ImageDataset:
    """The labelled real data at the generator's size and channels, checked against its classes.

    ``data`` is an :class:`ImageDataset`, a dataset spec (loaded at the generator's size), or
    None for the spec recorded in the generator's checkpoint.
    """
    if data is None:
        data = model.data_description.get("spec")
        if not isinstance(data, str) or data in ("", "custom"):
            raise GenaugError(
                "The generator's checkpoint does not say which dataset it was trained on; "
                "name the real data to compare with (--data digits, imagefolder:PATH, ...)."
            )
    if isinstance(data, str):
        dataset = load_dataset(data, image_size=model.image_size, channels=model.channels)
    elif isinstance(data, ImageDataset):
        images = match_images(data.images, model.channels, model.image_size)
        dataset = (
            data
            if images is data.images
            else ImageDataset(images, data.targets, data.class_names, data.description)
        )
    else:
        raise GenaugError(
            f"The real data must be an ImageDataset or a dataset spec string, not "
            f"{type(data).__name__}; load it with genaug.data.load_dataset."
        )
    if not dataset.has_labels:
        raise GenaugError(
            "Evaluation needs labelled real data (its reference classifier learns the classes), "
            "but some labels are hidden; pass the labelled dataset."
        )
    if model.conditional:
        names = list(model.class_names)
        if model.num_classes != dataset.num_classes or names != list(dataset.class_names):
            raise GenaugError(
                f"The generator is conditioned on {model.num_classes} classes "
                f"({_short(names)}) but the data has {dataset.num_classes} "
                f"({_short(dataset.class_names)}); evaluate it on the data it was trained on."
            )
    return dataset


def _short(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _fingerprint(dataset: ImageDataset) -> str:
    digest = hashlib.sha256()
    digest.update(dataset.images.numpy().tobytes())
    digest.update(dataset.targets.numpy().tobytes())
    digest.update("\n".join(dataset.class_names).encode())
    digest.update(str(tuple(dataset.images.shape)).encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------- the reference judge
def reference_classifier_for(
    train_part: ImageDataset,
    cache_dir: str | os.PathLike | None = None,
    steps: int = 600,
    device: str | torch.device = "auto",
) -> tuple[ReferenceClassifier, bool]:
    """The reference classifier of ``train_part``: loaded from ``cache_dir`` when it was trained
    on exactly these images with this recipe, else trained (and saved there). Returns
    ``(classifier, reused)``."""
    meta = {
        "recipe": "train_reference_classifier",
        "steps": steps,
        "seed": CLASSIFIER_SEED,
        "data_sha256": _fingerprint(train_part),
        "data": {
            k: train_part.description.get(k)
            for k in ("spec", "image_size", "channels", "count", "test_fraction", "test_seed")
        },
    }
    dev = resolve_device(device)
    if cache_dir is not None and read_reference_meta(cache_dir) == meta:
        return load_reference_classifier(cache_dir, device=str(dev)), True
    classifier = train_reference_classifier(
        train_part, steps=steps, seed=CLASSIFIER_SEED, device=str(dev)
    )
    if cache_dir is not None:
        save_reference_classifier(classifier, cache_dir, meta)
    return classifier, False


# ---------------------------------------------------------------------------- the generator
def _load_model(checkpoint_or_model: Generator | str | os.PathLike, device: torch.device):
    if isinstance(checkpoint_or_model, Generator):
        return checkpoint_or_model, None
    if isinstance(checkpoint_or_model, (str, os.PathLike)):
        from genaug.models import load_generator

        return load_generator(checkpoint_or_model, device=device), str(checkpoint_or_model)
    raise GenaugError(
        f"Evaluate a Generator or a checkpoint folder, not {type(checkpoint_or_model).__name__}."
    )


@torch.no_grad()
def _draw_samples(model: Generator, n: int, seed: int) -> tuple[Tensor, Tensor | None]:
    """``n`` samples (n, C, H, W) float32 on the CPU, deterministic by index; balanced classes."""
    chunks, labels = [], []
    for start in range(0, n, _SAMPLE_BATCH):
        index = torch.arange(start, min(n, start + _SAMPLE_BATCH))
        images, chunk_labels = sample_indices(model, index, seed)
        chunks.append(images)
        if chunk_labels is not None:
            labels.append(chunk_labels.cpu())
    samples = torch.cat(chunks)
    expected = (model.channels, model.image_size, model.image_size)
    if tuple(samples.shape[1:]) != expected or not torch.isfinite(samples).all():
        raise GenaugError(
            f"The generator made {tuple(samples.shape[1:])} samples with non-finite values or of "
            f"the wrong shape (expected {expected}); the checkpoint is broken, retrain it."
        )
    return samples.clamp(0, 1), (torch.cat(labels) if labels else None)


# ------------------------------------------------------------------------------ the evaluation
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
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples <= k:
        raise GenaugError(f"n_samples must be an integer above k={k}, got {n_samples!r}.")
    if isinstance(classifier_steps, bool) or not isinstance(classifier_steps, int):
        raise GenaugError(f"classifier_steps must be a positive int, got {classifier_steps!r}.")
    if classifier_steps < 1:
        raise GenaugError(f"classifier_steps must be a positive int, got {classifier_steps!r}.")
    dev = resolve_device(device)
    model, checkpoint = _load_model(checkpoint_or_model, dev)
    real = prepare_real_data(data, model)
    train_part, test_part = train_test_split(real, test_fraction=test_fraction, test_seed=test_seed)
    if len(train_part) <= k or len(test_part) <= k:
        raise GenaugError(
            f"The real data is too small to evaluate with k={k}: {len(train_part)} training and "
            f"{len(test_part)} test images; use a larger dataset."
        )
    out = Path(out_dir) if out_dir is not None else None
    if cache_dir is None and out is not None:
        cache_dir = out / "reference"
    timings: dict[str, float] = {}

    # 1. The judge: a small CNN trained on the real training part, and its test accuracy.
    tick = time.perf_counter()
    judge, reused = reference_classifier_for(train_part, cache_dir, classifier_steps, dev)
    timings["reference_classifier"] = time.perf_counter() - tick

    # 2. Samples (balanced classes) and everything the judge sees in them.
    tick = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        samples, labels = _draw_samples(model, n_samples, seed)  # (n, C, H, W), (n,) or None
    finally:
        model.train(was_training)
    timings["sampling"] = time.perf_counter() - tick
    train_images, test_images = train_part.float_images(), test_part.float_images()
    train_features, _ = judge.embed(train_images)
    test_features, test_predictions = judge.embed(test_images)
    fake_features, fake_predictions = judge.embed(samples)
    reference_accuracy = agreement(test_predictions, test_part.targets)

    # 3. Realism and coverage in the judge's features. Precision / recall compare sets of equal
    #    size (the radii depend on it): the training features are subsampled to the sample count.
    tick = time.perf_counter()
    pick = torch.Generator().manual_seed(seed)
    real_for_pr = train_features[torch.randperm(len(train_features), generator=pick)[:n_samples]]
    real_for_test = train_features[torch.randperm(len(train_features), generator=pick)]
    real_for_test = real_for_test[: len(test_features)]
    pr = precision_recall(real_for_pr, fake_features, k=k, device=dev)
    pr_real = precision_recall(real_for_test, test_features, k=k, device=dev)
    fd = frechet_distance(train_features, fake_features)
    fd_real = frechet_distance(train_features, test_features)
    timings["feature_metrics"] = time.perf_counter() - tick

    # 4. Usefulness: a classifier trained on samples only (CAS), tested on real test images.
    tick = time.perf_counter()
    conditional_accuracy = cas = cas_ratio = None
    if labels is not None:
        conditional_accuracy = agreement(fake_predictions, labels)
        synthetic = ImageDataset(
            to_uint8_images(samples),
            labels,
            model.class_names,
            {"spec": "synthetic", "family": model.family, "seed": seed},
        )
        cas_model = train_reference_classifier(
            synthetic, steps=classifier_steps, seed=CLASSIFIER_SEED, device=str(dev)
        )
        cas = accuracy(cas_model, test_part)
        cas_ratio = cas / reference_accuracy if reference_accuracy > 0 else None
    timings["cas"] = time.perf_counter() - tick

    # 5. Memorisation, in pixel space: copies of training images are what would leak.
    tick = time.perf_counter()
    memo = memorisation(
        samples, train_images, relative_threshold=relative_threshold, seed=seed, device=dev
    )
    memo_real = memorisation(test_images, train_images, threshold=memo.threshold, device=dev)
    timings["memorisation"] = time.perf_counter() - tick

    metrics: dict[str, Any] = {
        "checkpoint": checkpoint,
        "family": model.family,
        "conditional": model.conditional,
        "image_size": model.image_size,
        "channels": model.channels,
        "data": {
            "spec": real.description.get("spec"),
            "train_count": len(train_part),
            "test_count": len(test_part),
            "test_fraction": test_fraction,
            "test_seed": test_seed,
        },
        "n_samples": n_samples,
        "seed": seed,
        "device": str(dev),
        "reference_classifier": {
            "steps": classifier_steps,
            "test_accuracy": _round(reference_accuracy),
            "reused_from_cache": reused,
            "cache": str(cache_dir) if cache_dir is not None else None,
            "features": int(train_features.shape[1]),
        },
        "conditional_accuracy": _round(conditional_accuracy),
        "conditional_accuracy_real": _round(reference_accuracy),
        "frechet_distance": _round(fd),
        "frechet_distance_real": _round(fd_real),
        "precision": _round(pr.precision),
        "recall": _round(pr.recall),
        "precision_real": _round(pr_real.precision),
        "recall_real": _round(pr_real.recall),
        "k": k,
        "cas": _round(cas),
        "cas_real": _round(reference_accuracy),
        "cas_ratio": _round(cas_ratio),
        "memorisation_share": _round(memo.share),
        "memorisation_share_real": _round(memo_real.share),
        "nearest_distance_ratio": _round(_ratio(memo.distances, memo.typical_distance)),
        "nearest_distance_ratio_real": _round(_ratio(memo_real.distances, memo.typical_distance)),
        "memorisation_space": "pixels",
        "memorisation_threshold": _round(memo.threshold),
        "memorisation_typical_distance": _round(memo.typical_distance),
        "relative_threshold": relative_threshold,
        "notes": (
            "*_real: the held-out real test part scored the same way (what fresh real images "
            "get; precision/recall and FD at the test-set size). Features: the reference "
            "classifier's. cas_real: the same classifier recipe trained on the real training "
            "part; cas_ratio = cas / cas_real. Memorisation: pixel-space L2 to the nearest "
            "training image below relative_threshold x the median nearest-neighbour distance "
            "between training images (the typical distance); nearest_distance_ratio: the "
            "samples' median distance to their nearest training image over the typical distance "
            "(about 1 for fresh real images, towards 0 for copies)."
        ),
        "timings_seconds": {name: round(t, 2) for name, t in timings.items()},
        "files": {},
    }

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        stem = Path(metrics_name).stem
        if plot:
            metrics["files"] = _plots(model, samples, train_images, memo, out, stem, seed)
        metrics["files"]["metrics"] = str(out / metrics_name)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    if out is not None:
        atomic_write_json(out / metrics_name, metrics)
    return metrics


def _ratio(distances: Tensor, typical: float) -> float | None:
    """Median distance to the nearest training image, over the typical one (1 = like real)."""
    return float(distances.median()) / typical if typical > 0 else None


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _plots(
    model: Generator,
    samples: Tensor,
    train_images: Tensor,
    memo: Any,
    out: Path,
    stem: str,
    seed: int,
) -> dict[str, str]:
    """The per-class sample grid and the closest (sample, nearest training image) pairs."""
    from genaug.plots import save_class_grid, save_image_rows

    grid = out / f"{stem}.samples.png"
    was_training = model.training
    model.eval()
    try:
        save_class_grid(model, grid, seed=seed, title=f"{model.family} samples, one row per class")
    finally:
        model.train(was_training)
    order = memo.distances.argsort()[:NEAREST_PAIRS]  # the closest pairs first
    pairs = torch.cat([samples[order], train_images[memo.nearest[order]]])  # (2P, C, H, W)
    distances = ", ".join(f"{float(d):.2f}" for d in memo.distances[order])
    nearest = out / f"{stem}.nearest.png"
    save_image_rows(
        pairs,
        ["sample", "nearest train"],
        nearest,
        title=(
            f"closest samples to training images\npixel L2: {distances}\n"
            f"(a copy is closer than {memo.threshold:.2f})"
        ),
    )
    return {"samples": str(grid), "nearest": str(nearest)}


def format_metrics(metrics: dict[str, Any]) -> str:
    """A one-screen table of :func:`evaluate_generator`'s result: generator vs real test data."""

    def cell(value: Any, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    m = metrics
    ref = m["reference_classifier"]
    rows = [
        ("conditional accuracy", cell(m["conditional_accuracy"]), cell(m["cas_real"])),
        (
            "Frechet distance (ref. features)",
            cell(m["frechet_distance"], 2),
            cell(m["frechet_distance_real"], 2),
        ),
        (f"precision (k={m['k']})", cell(m["precision"]), cell(m["precision_real"])),
        (f"recall (k={m['k']})", cell(m["recall"]), cell(m["recall_real"])),
        ("CAS (train on samples, test real)", cell(m["cas"]), cell(m["cas_real"])),
        ("CAS / real-data accuracy", cell(m["cas_ratio"]), "1.000"),
        (
            f"memorisation share ({m['memorisation_space']})",
            cell(m["memorisation_share"]),
            cell(m["memorisation_share_real"]),
        ),
        (
            "median nearest-train distance / typ.",
            cell(m["nearest_distance_ratio"]),
            cell(m["nearest_distance_ratio_real"]),
        ),
    ]
    data = m["data"]
    head = (
        f"{m['family']} generator ({'conditional' if m['conditional'] else 'unconditional'}, "
        f"{m['channels']}x{m['image_size']}px), {m['n_samples']} samples, seed {m['seed']}; "
        f"real data {data['spec']}: {data['train_count']} train / {data['test_count']} test"
    )
    width = max(len(r[0]) for r in rows)
    lines = [head, "", f"{'metric':<{width}}  {'generator':>9}  {'real test':>9}"]
    lines += [f"{name:<{width}}  {gen:>9}  {real:>9}" for name, gen, real in rows]
    lines += [
        "",
        f"reference classifier: {ref['steps']} steps, test accuracy {ref['test_accuracy']:.3f}"
        f"{' (reused from cache)' if ref['reused_from_cache'] else ''}; copy threshold "
        f"{m['memorisation_threshold']:.3f} (pixel L2) = {m['relative_threshold']} x typical "
        f"{m['memorisation_typical_distance']:.3f}; took {m['seconds']:.1f} s",
    ]
    return "\n".join(lines)
