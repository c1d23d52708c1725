"""Checking what a generative transform is given: images, labels, and making the batch ready
for the generator (float32 in [0, 1], its channels and size, on its device).

A conditional generator handed images without labels (the ``transform=`` slot of
``ImageFolder``, a bare tensor, ``A.Compose`` without the label key) conditions on the class it
infers for each image (:meth:`~genaug.models.base.Generator.infer_labels`); the caller's labels,
if any, are never changed.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from genaug.data.convert import convert_channels, resize_images, to_float_images
from genaug.errors import GenaugError
from genaug.models.base import Generator

__all__ = [
    "RANGE_TOLERANCE",
    "LabelsRequiredWarning",
    "Prepared",
    "check_label_source",
    "check_labels",
    "config_label_problem",
    "prepare_batch",
    "warn_if_labels_required",
    "with_inferred_classes",
]

RANGE_TOLERANCE = 0.05  # float pixels this far outside [0, 1] are clamped; further is an error


class Prepared(NamedTuple):
    """A batch made ready for the generator, and what is needed to give it back as it came."""

    batch: Tensor  # the caller's images, untouched
    work: Tensor  # (B, C_gen, S, S) float32 in [0, 1] on the generator's device (if converted)
    classes: Tensor | None  # (B,) long on the generator's device (given or inferred), or None
    model: Generator
    device: torch.device  # the generator's (read once per call)
    # Classes still to infer from ``work`` (no labels came for a conditional generator): left
    # to :func:`with_inferred_classes`, so that only the images to transform are classified.
    infer: bool = False


def prepare_batch(
    batch: Any,
    labels: Any,
    model: Generator,
    owner: str,
    mode: str,
    guided: bool = False,
    convert: bool = True,
) -> Prepared:
    """Check a batch and its labels; with ``convert``, also the pixels, and make ``work``.

    ``owner`` names the transform in error messages; ``guided``: the neighbour walk has a
    guide (it then needs labels even for an unconditional generator). Classes a conditional
    generator must infer are inferred here for mode ``interpolate`` (its partners are drawn
    by class), else left to :func:`with_inferred_classes` (``Prepared.infer``).
    """
    if not isinstance(batch, Tensor):
        raise GenaugError(
            f"{owner} expects a torch.Tensor of images shaped (B, C, H, W), got "
            f"{type(batch).__name__}; convert it first (or use the torchvision or "
            "Albumentations adapter, which take PIL images and arrays)."
        )
    if batch.ndim != 4:
        raise GenaugError(
            f"{owner} expects images shaped (B, C, H, W), got shape {tuple(batch.shape)}; "
            "add a batch dimension with images.unsqueeze(0)."
        )
    n, channels, height, width = batch.shape
    if n == 0:
        raise GenaugError(f"{owner} got an empty batch (0 images); pass at least one image.")
    if channels not in (1, 3):
        raise GenaugError(
            f"{owner} got images with {channels} channels, shape {tuple(batch.shape)}; "
            f"expected 1 (gray) or 3 (RGB) channels in dim 1 (the generator makes "
            f"{model.channels}); drop alpha or extra channels, or permute HWC to CHW."
        )
    if height == 0 or width == 0:
        raise GenaugError(f"{owner} got images of size {height}x{width}; they must not be empty.")
    if batch.dtype != torch.uint8 and not batch.is_floating_point():
        raise GenaugError(
            f"{owner} got images of dtype {batch.dtype}; expected uint8 (0..255) or float "
            "(0..1), so cast them to one of those."
        )
    classes = check_labels(labels, n, model, owner, mode, guided)
    # No labels for a conditional generator (check_labels refused one that cannot infer): it
    # conditions on the inferred classes. Drawing parameters needs them only for partners.
    # Mode ``vary`` needs no class: without one, a conditional generator varies unconditionally.
    infer = classes is None and model.conditional and mode != "vary"
    device = model.device
    if not convert and not (infer and mode == "interpolate"):  # enough to draw parameters
        return Prepared(batch, batch, classes, model, device)
    work = to_float_images(batch)
    if batch.is_floating_point():
        finite, low, high = torch.stack(
            [torch.isfinite(work).all().float(), *torch.aminmax(work)]
        ).tolist()  # one host sync per batch
        if not finite:
            raise GenaugError(
                f"{owner} got NaN or infinite pixel values; clean the images (for example "
                "with torch.nan_to_num) before augmenting."
            )
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise GenaugError(
                f"{owner} expects float images in [0, 1], got values from {low:.3g} to "
                f"{high:.3g}; divide 0-255 images by 255, and place the transform before "
                "Normalize (or give GenerativeMix the mean and std)."
            )
    work = work.to(device, non_blocking=True).clamp(0.0, 1.0)
    work = convert_channels(work, model.channels)
    work = resize_images(work, model.image_size)  # (B, C_gen, S, S)
    work = work.contiguous(memory_format=torch.channels_last)  # what the convolutions prefer
    prepared = Prepared(batch, work if convert else batch, classes, model, device, infer)
    if infer and mode == "interpolate":
        prepared = with_inferred_classes(prepared._replace(work=work), None)
        prepared = prepared._replace(work=work if convert else batch)
    return prepared


def with_inferred_classes(prepared: Prepared, rows: Tensor | None) -> Prepared:
    """``prepared`` with the classes the generator infers for the images ``rows`` (None: all),
    where they are still to infer (``Prepared.infer``); other rows get class 0, never read.

    The classes condition the generator only; they are never returned to the caller. The
    label source was checked with the batch (:func:`check_labels`), so this goes straight
    to the class head (``Generator.infer_labels`` without its per-call checks).
    """
    if not prepared.infer:
        return prepared
    work, model = prepared.work, prepared.model
    with torch.no_grad():
        inferred = model.class_logits(work if rows is None else work[rows]).argmax(dim=1)
    if rows is None:
        return prepared._replace(classes=inferred, infer=False)
    classes = torch.zeros(work.shape[0], dtype=torch.long, device=work.device)  # (B,)
    classes[rows] = inferred
    return prepared._replace(classes=classes, infer=False)


def check_label_source(model: Generator, owner: str, mode: str, why: str) -> None:
    """Refuse a conditional generator that cannot infer classes where no label comes (``why``).

    Transforms call it when built if no label can ever reach them (the torchvision adapter's
    ``labels_getter=None``), and on a call that brings none.
    """
    problem = model.label_inference_problem() if model.conditional else None
    if problem:
        raise GenaugError(
            f"{owner}: mode {mode!r} of a conditional generator needs one class label per "
            f"image and {why}, but {problem[0].lower()}{problem[1:]}"
        )


class LabelsRequiredWarning(UserWarning):
    """A host adapter got a conditional generator that cannot infer an image's class.

    Said when the transform is built (not in the first DataLoader worker): every call must then
    bring labels, so an image-only slot (``ImageFolder(transform=...)``, ``A.Compose`` without
    the label) would fail. Silence it with ``warnings.filterwarnings`` where labels always come.
    """


def warn_if_labels_required(problem: str | None, owner: str) -> None:
    """Warn (:class:`LabelsRequiredWarning`) at build time when ``problem`` says that the
    generator cannot infer classes, naming the fixes; nothing when it can or needs no class."""
    if problem:
        warnings.warn(
            f"{owner}: every call must bring one class label per image, because "
            f"{problem[0].lower()}{problem[1:]}",
            LabelsRequiredWarning,
            stacklevel=3,
        )


def config_label_problem(config: dict[str, Any], has_encoder: bool, mode: str) -> str | None:
    """:meth:`Generator.label_inference_problem` read from a checkpoint's config (no weights)."""
    from genaug.models.labels import inference_problem

    args = config.get("model_args", {})
    if mode == "vary" or int(args.get("num_classes", 0)) <= 0:
        return None
    stand_in = SimpleNamespace(  # what inference_problem looks at
        conditional=True,
        has_encoder=has_encoder,
        family=config.get("family", "generator"),
        class_head=object() if args.get("class_head") else None,
    )
    return inference_problem(stand_in)


def check_labels(
    labels: Any, n: int, model: Generator, owner: str, mode: str, guided: bool = False
) -> Tensor | None:
    """Labels as (B,) long class indices on the generator's device (None when not given)."""
    if labels is None:
        if guided and not model.conditional:
            raise GenaugError(
                f"{owner}: the neighbour walk was given a guide, so it stays within each "
                "image's class and needs one class label per image, and none was given; "
                "pass the labels (an (image, label) sample, or labels=...)."
            )
        if model.conditional and mode != "vary":
            check_label_source(model, owner, mode, "none was given")
        return None
    if isinstance(labels, dict):  # parameters given where the labels go
        raise GenaugError(
            f"{owner} got a dict where the labels go; pass parameters by keyword "
            "(aug(images, params=aug.last_params)) and labels as class indices."
        )
    if not model.conditional and mode == "resample":
        raise GenaugError(
            f"{owner}: an unconditional {model.family} generator cannot resample a labelled "
            "image (its sample has no known class); use a conditional generator, another "
            "mode, or pass no labels (unlabelled data)."
        )
    try:
        tensor = torch.as_tensor(np.asarray(labels) if isinstance(labels, list) else labels)
    except (TypeError, ValueError, RuntimeError):
        raise GenaugError(
            f"{owner} expects labels as class indices (B,) or soft labels (B, num_classes), "
            f"got {type(labels).__name__}; pass a tensor or a list of ints."
        ) from None
    if tensor.ndim == 0:
        tensor = tensor.reshape(1)
    if tensor.ndim == 2 and tensor.is_floating_point():  # soft labels (Mixup, smoothing)
        if model.conditional and tensor.shape[1] != model.num_classes:
            raise GenaugError(
                f"{owner} got soft labels over {tensor.shape[1]} classes; the generator "
                f"knows {model.num_classes}, so give labels shaped (B, {model.num_classes})."
            )
        tensor = tensor.argmax(dim=1)
    elif tensor.ndim != 1 or tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise GenaugError(
            f"{owner} expects labels as integer class indices (B,) or soft labels "
            f"(B, num_classes), got {tensor.dtype} of shape {tuple(tensor.shape)}."
        )
    if tensor.shape[0] != n:
        raise GenaugError(
            f"{owner} got {tensor.shape[0]} labels for {n} images; give one label per image."
        )
    if model.conditional:
        low, high = torch.stack([tensor.min(), tensor.max()]).tolist()
        if low < 0 or high >= model.num_classes:
            raise GenaugError(
                f"{owner} got labels from {low} to {high}, but the generator knows classes "
                f"0 to {model.num_classes - 1}; map the labels into that range."
            )
    return tensor.long().to(model.device)
