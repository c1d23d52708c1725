"""Training a timm classifier on a few labelled images, with an augmentation step per batch.

This is the measuring instrument of ``genaug bench``: one plain loop (AdamW + one-cycle schedule,
a fixed number of optimiser steps) whose only variable is the augmentation. Batches are index
gathers from the in-memory ``uint8`` images (no DataLoader workers), drawn from a seeded
generator, so every condition of a seed sees the same sequence of real images; the model is
created right after ``torch.manual_seed(init_seed)``, so every condition of a seed starts from
the same weights (a paired design).

The augmentation is any callable ``augment(images, labels) -> (images, labels)`` on a batch
``(B, C, H, W)`` (uint8 0-255 or float in [0, 1]) and labels ``(B,)``: a recipe from
:mod:`genaug.bench.learn.pipeline`, a :class:`~genaug.transforms.GenerativeMix`, or your own. If it has
a ``set_progress(fraction)`` method, the loop calls it before every step (for schedules).
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genaug.bench.learn.loss import (
    FeatureHallucination,
    GeneratedTreatment,
    batch_loss,
    parameter_groups,
)
from genaug.bench.plan.classifier_config import ClassifierConfig
from genaug.data import batch_indices
from genaug.data.convert import to_float_images
from genaug.device import autocast_for, memory_format_for, resolve_device
from genaug.errors import GenaugError, first_line
from genaug.models.features import timm_normalisation, weights_fingerprint

__all__ = [
    "BatchAugment",
    "ClassifierConfig",
    "ClassifierResult",
    "check_model_name",
    "create_classifier",
    "input_normalisation",
    "macro_f1",
    "predict",
    "train_classifier",
]

BatchAugment = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass
class ClassifierResult:
    """What :func:`train_classifier` returns (accuracies are fractions in [0, 1])."""

    accuracy: float
    macro_f1: float
    train_seconds: float  # the whole loop, augmentation included
    augment_seconds: float  # time spent in ``augment`` (device-synchronised on CUDA)
    steps: int
    train_images: int
    init_fingerprint: str  # hash of the initial weights: equal across paired conditions


# ---------------------------------------------------------------------------- building models
def check_model_name(name: str) -> str:
    """Return ``name`` if timm knows it, else raise with the closest timm names."""
    import timm

    if not isinstance(name, str) or not name:
        raise GenaugError(f"classifier model must be a timm model name, got {name!r}.")
    if timm.is_model(name):
        return name
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    if not close:  # a family prefix often finds what was meant ("resnet" -> resnet10t, ...)
        close = [m for m in timm.list_models(f"{name.split('_')[0]}*")][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()."
    raise GenaugError(f"timm has no model named {name!r}{hint}")


def create_classifier(
    name: str,
    *,
    in_chans: int,
    num_classes: int,
    image_size: int,
    pretrained_file: str | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Create a timm classifier for ``in_chans`` x ``image_size`` px images and check it runs.

    ``seed`` seeds torch's global RNG right before the model is built, so the same seed gives
    the same initial weights. A model that cannot take the image size is a clear error.
    """
    import timm

    check_model_name(name)
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans}
    if pretrained_file is not None:
        path = Path(pretrained_file).expanduser()
        if not path.is_file():
            raise GenaugError(
                f"pretrained weights file {path} does not exist; give a local .safetensors or "
                ".pth file (genaug never downloads weights)."
            )
        # timm reads the local file (safetensors, or torch.load with weights_only=True: never
        # an unpickle of arbitrary objects); source/hub id/url are cleared so that no model's
        # default config can send it to the network instead.
        overlay = {"file": str(path), "source": None, "hf_hub_id": None, "url": None}
        kwargs.update(pretrained=True, pretrained_cfg_overlay=overlay)
    else:
        kwargs["pretrained"] = False
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = timm.create_model(name, **kwargs)
    except GenaugError:
        raise
    except Exception as exc:  # timm raises many types for unloadable weights or bad arguments
        what = f"with the weights in {pretrained_file} " if pretrained_file else ""
        raise GenaugError(
            f"timm could not create {name!r} {what}({type(exc).__name__}: {first_line(exc)}); "
            "check the model name and the weights file."
        ) from None
    check_input_size(model, name, in_chans, image_size, num_classes)
    return model


def check_input_size(
    model: nn.Module, name: str, in_chans: int, image_size: int, num_classes: int
) -> None:
    """Run a dummy batch through ``model``; turn a failure into one clear sentence."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, in_chans, image_size, image_size))
    except Exception as exc:  # shape errors come as RuntimeError, AssertionError, ValueError...
        raise GenaugError(
            f"timm model {name!r} cannot take {in_chans}x{image_size}x{image_size} images "
            f"({type(exc).__name__}: {first_line(exc)}); use a larger --image-size or a "
            "model made for small images (e.g. resnet10t)."
        ) from None
    finally:
        model.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise GenaugError(
            f"timm model {name!r} returned outputs shaped {tuple(out.shape)} for "
            f"{image_size} px images instead of (2, {num_classes}); pick another model."
        )


def input_normalisation(model: nn.Module, channels: int, pretrained: bool) -> tuple[Tensor, Tensor]:
    """Per-channel (mean, std) applied to [0, 1] images: the weights' own when pretrained."""
    if pretrained:
        return timm_normalisation(model, channels)
    mean, std = torch.full((channels,), 0.5), torch.full((channels,), 0.5)
    return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)


# ---------------------------------------------------------------------------- metrics
def macro_f1(predictions: Tensor, targets: Tensor, num_classes: int) -> float:
    """Unweighted mean F1 over the classes present in ``targets`` or ``predictions``."""
    predictions, targets = predictions.long().cpu(), targets.long().cpu()
    tp = torch.bincount(targets[predictions == targets], minlength=num_classes).double()
    predicted = torch.bincount(predictions, minlength=num_classes).double()
    actual = torch.bincount(targets, minlength=num_classes).double()
    present = (predicted + actual) > 0
    f1 = 2 * tp / (predicted + actual).clamp_min(1)
    return float(f1[present].mean()) if bool(present.any()) else 0.0


@torch.no_grad()
def predict(
    model: nn.Module,
    images: Tensor,
    mean: Tensor,
    std: Tensor,
    device: torch.device,
    amp: bool = True,
    batch_size: int = 256,
) -> Tensor:
    """Class indices (N,) for uint8 or [0, 1] images (N, C, H, W)."""
    was_training = model.training
    model.eval()
    autocast = autocast_for(device, amp)
    memory_format = memory_format_for(device)
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = to_float_images(images[start : start + batch_size].to(device))
        x = ((x - mean) / std).contiguous(memory_format=memory_format)
        with autocast():
            out.append(model(x).argmax(1).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


# ---------------------------------------------------------------------------- training
def _optimiser(
    model: nn.Module, config: ClassifierConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW (the backbone at ``backbone`` x the head's lr) and its one-cycle schedule."""
    groups = parameter_groups(model, config.lr, config.backbone)
    # foreach: the same arithmetic, tensor by tensor, as the CPU default (bit-identical
    # weights), with fewer passes over memory; CUDA's default already. fused: one pass.
    kernel = {"fused": True} if config.fused_adamw else {"foreach": True}
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, **kernel)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in groups], total_steps=config.steps
    )
    return optimizer, schedule


def train_classifier(
    config: ClassifierConfig,
    train_images: Tensor,
    train_targets: Tensor,
    test_images: Tensor,
    test_targets: Tensor,
    num_classes: int,
    augment: BatchAugment | None = None,
    init_seed: int = 0,
    data_seed: int = 0,
    augment_seed: int = 0,
    treatment: GeneratedTreatment | None = None,
    hallucination: FeatureHallucination | None = None,
) -> ClassifierResult:
    """Train ``config.model`` on the labelled images, then measure it on the test images.

    Args:
        train_images, test_images: ``uint8`` (or float [0, 1]) images ``(N, C, H, W)``.
        train_targets, test_targets: class indices ``(N,)``.
        augment: the batch augmentation (``None``: the images as they are).
        init_seed: seeds the initial weights (equal across paired conditions).
        data_seed: seeds the order of the training batches (equal across paired conditions).
        augment_seed: seeds torch's global RNG for the augmentation's draws (per condition).
        treatment: how generated images are treated (weight, soft labels, separate BatchNorm
            statistics), read from the augmentation's ``last_generated`` mask; see
            :mod:`genaug.bench.learn.loss`.
        hallucination: a hallucinator adding features to the head's loss.

    Example: ``train_classifier(ClassifierConfig("resnet10t"), xs, ys, xt, yt, 10).accuracy``.
    """
    config.validate()
    if train_images.shape[0] == 0:
        raise GenaugError("the classifier got no training images; give it at least one.")
    device = resolve_device(config.device)
    channels, image_size = int(train_images.shape[1]), int(train_images.shape[2])
    model = create_classifier(
        config.model,
        in_chans=channels,
        num_classes=num_classes,
        image_size=image_size,
        pretrained_file=config.pretrained_file,
        seed=init_seed,
    )
    fingerprint = weights_fingerprint(model)
    memory_format = memory_format_for(device)
    model = model.to(device=device, memory_format=memory_format).train()
    mean, std = input_normalisation(model, channels, config.pretrained_file is not None)
    mean, std = mean.to(device), std.to(device)
    optimizer, schedule = _optimiser(model, config)
    autocast = autocast_for(device, config.amp)
    treatment = treatment or GeneratedTreatment()
    set_progress = getattr(augment, "set_progress", None)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = int(train_images.shape[0])
    targets_all = train_targets.long()

    torch.manual_seed(augment_seed)  # the augmentation's draws (classic transforms use it)
    augment_seconds = 0.0
    started = time.perf_counter()
    for step in range(config.steps):
        index = batch_indices(step, config.batch_size, n, data_seed)  # (B,) shared per seed
        images, labels = train_images[index], targets_all[index]  # (B, C, H, W), (B,)
        generated = None
        if augment is not None:
            if set_progress is not None:
                set_progress(step / max(config.steps - 1, 1))
            sync()
            t0 = time.perf_counter()
            images, labels = augment(images, labels)
            generated = getattr(augment, "last_generated", None)  # (B,) bool, or None
            sync()
            augment_seconds += time.perf_counter() - t0
        x = to_float_images(images.to(device, non_blocking=True))  # (B, C, H, W) in [0, 1]
        x = ((x - mean) / std).contiguous(memory_format=memory_format)
        y = labels.to(device, non_blocking=True)
        loss = batch_loss(
            model, x, y, generated, treatment, hallucination, autocast, config.label_smoothing
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    sync()
    train_seconds = time.perf_counter() - started

    predictions = predict(model, test_images, mean, std, device, config.amp)
    targets = test_targets.long().cpu()
    accuracy = float((predictions == targets).float().mean()) if targets.numel() else float("nan")
    return ClassifierResult(
        accuracy=accuracy,
        macro_f1=macro_f1(predictions, targets, num_classes),
        train_seconds=train_seconds,
        augment_seconds=augment_seconds,
        steps=config.steps,
        train_images=n,
        init_fingerprint=fingerprint,
    )
