"""The real data a generator is judged against: matched to its size and channels, checked
against its classes, and fingerprinted (the reference classifier's cache key)."""

from __future__ import annotations

import hashlib

from torch import Tensor

from genaug.data import ImageDataset, load_dataset
from genaug.data.convert import convert_channels, resize_images
from genaug.errors import GenaugError
from genaug.models.base import Generator

__all__ = ["data_fingerprint", "match_images", "prepare_real_data"]


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


def data_fingerprint(dataset: ImageDataset) -> str:
    """SHA-256 of a dataset's images, targets, class names and shape (equal data, equal hash)."""
    digest = hashlib.sha256()
    digest.update(dataset.images.numpy().tobytes())
    digest.update(dataset.targets.numpy().tobytes())
    digest.update("\n".join(dataset.class_names).encode())
    digest.update(str(tuple(dataset.images.shape)).encode())
    return digest.hexdigest()
