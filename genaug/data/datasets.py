"""In-memory image datasets and the ``load_dataset`` entry point.

Every dataset is loaded once into an :class:`ImageDataset`: a ``uint8`` tensor ``(N, C, H, W)``
plus ``int64`` targets, which keeps memory low and makes subsets and splits cheap. Nothing here
ever downloads: torchvision datasets are read with ``download=False`` from a folder you provide.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from genaug.data.convert import (
    convert_channels,
    pil_to_square_array,
    resize_images,
    to_float_images,
    to_uint8_images,
)
from genaug.data.groupfolder import parse_group_spec, read_group_folder
from genaug.data.omniglot import read_omniglot
from genaug.errors import GenaugError

__all__ = ["ImageDataset", "SkippedFileWarning", "list_dataset_specs", "load_dataset"]

_SPECS = ["digits", "imagefolder:PATH", "mnist:ROOT", "fashionmnist:ROOT", "cifar10:ROOT"]
_SPECS += ["omniglot:ZIP_OR_DIR[@ALPHABET,...]", "groupfolder:ROOT[@GROUP,...]"]
_CHUNK = 4096  # images converted at a time, to bound float32 memory
_MAX_SKIP_WARNINGS = 20  # one warning per skipped file up to this many, then a summary


class SkippedFileWarning(UserWarning):
    """A file inside an image folder could not be read as an image and was skipped."""


class ImageDataset(Dataset):
    """An in-memory labelled (or unlabelled) image set.

    Attributes:
        images: ``uint8`` tensor ``(N, C, H, W)`` with C in {1, 3}.
        targets: ``int64`` tensor ``(N,)``; ``-1`` marks a hidden label.
        class_names: one name per class; ``targets`` index into it.
        description: JSON-serialisable dict (spec, image_size, channels, count, ...), suitable for
            recording in a checkpoint what data a model saw.

    Indexing returns ``(image, label)`` with the image as float32 ``(C, H, W)`` in ``[0, 1]``.
    """

    def __init__(
        self,
        images: Tensor,
        targets: Tensor,
        class_names: Sequence[str],
        description: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            got = getattr(images, "dtype", type(images).__name__)
            got = f"{got} of shape {tuple(images.shape)}" if isinstance(images, Tensor) else got
            raise GenaugError(
                f"ImageDataset images must be a uint8 tensor shaped (N, C, H, W), got {got}; "
                "convert float images in [0, 1] with to_uint8_images first."
            )
        if images.shape[1] not in (1, 3):
            raise GenaugError(
                f"ImageDataset images must have 1 or 3 channels, got {images.shape[1]}; "
                "convert them with convert_channels first."
            )
        int_dtypes = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
        if not isinstance(targets, Tensor) or targets.ndim != 1 or targets.dtype not in int_dtypes:
            raise GenaugError(
                "ImageDataset targets must be a 1-D integer tensor, got "
                f"{getattr(targets, 'dtype', type(targets).__name__)}; "
                "pass torch.as_tensor(labels, dtype=torch.int64)."
            )
        if targets.shape[0] != images.shape[0]:
            raise GenaugError(
                f"ImageDataset has {images.shape[0]} images but {targets.shape[0]} targets; "
                "pass exactly one target per image."
            )
        names = [str(n) for n in class_names]
        targets = targets.to(torch.int64)
        if targets.numel() and (int(targets.min()) < -1 or int(targets.max()) >= len(names)):
            raise GenaugError(
                f"ImageDataset targets must lie in [0, {len(names) - 1}] (or -1 for hidden), got "
                f"{int(targets.min())}..{int(targets.max())}; fix the labels or class_names."
            )
        self.images = images.cpu()
        self.targets = targets.cpu()
        self.class_names: list[str] = names
        desc: dict[str, Any] = {"spec": "custom"}
        desc.update(description or {})
        desc.update(
            image_size=int(images.shape[2]),
            channels=int(images.shape[1]),
            count=int(images.shape[0]),
            num_classes=len(names),
        )
        try:
            json.dumps(desc)
        except (TypeError, ValueError) as exc:
            raise GenaugError(
                f"ImageDataset description must be JSON-serialisable ({exc}); "
                "use only str, int, float, bool, None, lists and dicts in it."
            ) from None
        self.description: dict[str, Any] = desc

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index].to(torch.float32).div_(255.0)  # (C, H, W)
        return image, int(self.targets[index])

    def __repr__(self) -> str:
        return f"ImageDataset({self.description.get('spec')!r}, count={len(self)})"

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(class_names)``), whether or not labels are hidden."""
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        """Image height H in pixels (datasets from ``load_dataset`` are square)."""
        return int(self.images.shape[2])

    @property
    def channels(self) -> int:
        """Number of channels C (1 or 3)."""
        return int(self.images.shape[1])

    @property
    def has_labels(self) -> bool:
        """True when no target is hidden (-1)."""
        return bool((self.targets >= 0).all())

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> ImageDataset:
        """Return a new dataset holding the images at ``indices`` (copied, in that order)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64).reshape(-1)
        n = len(self)
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise GenaugError(
                f"subset indices must lie in [0, {n - 1}] for a dataset of {n} images, got "
                f"{int(idx.min())}..{int(idx.max())}; pass valid positions."
            )
        desc = dict(self.description)
        desc.update(subset=True, parent_count=n)
        return ImageDataset(self.images[idx], self.targets[idx], self.class_names, desc)

    def without_labels(self) -> ImageDataset:
        """Return the same images (shared, not copied) with every target set to -1."""
        desc = dict(self.description)
        desc["labels_hidden"] = True
        hidden = torch.full_like(self.targets, -1)  # (N,)
        return ImageDataset(self.images, hidden, self.class_names, desc)

    def float_images(self) -> Tensor:
        """All images as a new float32 tensor ``(N, C, H, W)`` in ``[0, 1]``."""
        return self.images.to(torch.float32).div_(255.0)  # (N, C, H, W)


def list_dataset_specs() -> list[str]:
    """The accepted forms of the ``spec`` argument of :func:`load_dataset`."""
    return list(_SPECS)


def _finish(images: Tensor, size: int, channels: int | None) -> Tensor:
    """Resize and channel-convert ``(N, C, h, w)`` uint8 or float images to uint8, in chunks."""
    want_c = images.shape[1] if channels is None else channels
    if images.dtype == torch.uint8 and tuple(images.shape[1:]) == (want_c, size, size):
        return images.contiguous()
    out = torch.empty((images.shape[0], want_c, size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = to_float_images(images[start : start + _CHUNK])  # (n, C, h, w)
        chunk = convert_channels(resize_images(chunk, size), want_c)  # (n, want_c, size, size)
        out[start : start + _CHUNK] = to_uint8_images(chunk)
    return out


def load_dataset(
    spec: str, image_size: int = 32, channels: int | None = None, train: bool = True
) -> ImageDataset:
    """Load a dataset into memory as square ``image_size`` images.

    Args:
        spec: one of ``digits`` (sklearn's bundled 8x8 digits), ``imagefolder:PATH`` (one subfolder
            per class), ``mnist:ROOT``, ``fashionmnist:ROOT`` or ``cifar10:ROOT`` (torchvision
            files already under ROOT; nothing is downloaded); more in list_dataset_specs().
        image_size: output height and width, an int in [4, 1024].
        channels: None keeps the dataset's native channels; 1 or 3 converts.
        train: for the torchvision datasets, the train (True) or test (False) part; ``digits``
            and ``imagefolder`` have a single part and ignore it (use ``few_shot_split``).

    Raises:
        GenaugError: for an unknown spec, bad size/channels, or missing/unreadable data.
    """
    if type(image_size) is not int or not 4 <= image_size <= 1024:
        raise GenaugError(
            f"image_size must be an int between 4 and 1024, got {image_size!r}; "
            "pass for example image_size=32."
        )
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise GenaugError(
            f"channels must be None (native), 1 (gray) or 3 (RGB), got {channels!r}; "
            "pass one of those."
        )
    if not isinstance(spec, str) or not spec.strip():
        raise GenaugError(
            f"dataset spec must be a non-empty string, got {spec!r}; "
            f"use one of {', '.join(_SPECS)}."
        )
    name, sep, arg = spec.strip().partition(":")
    name = name.strip().lower()
    if name == "digits" and not sep:
        images, targets, names, extra = _load_digits()
    elif name in ("imagefolder", "mnist", "fashionmnist", "cifar10"):
        if not arg.strip():
            what = "PATH" if name == "imagefolder" else "ROOT"
            raise GenaugError(
                f"dataset spec {spec!r} is missing its folder; write it as {name}:{what}."
            )
        if name == "imagefolder":
            images, targets, names, extra = _load_image_folder(arg.strip(), image_size)
        else:
            images, targets, names, extra = _load_torchvision(name, arg.strip(), train)
    elif name == "omniglot":  # PATH[@ALPHABET,...]: see genaug.data.omniglot
        images, targets, names, extra = read_omniglot(*parse_group_spec(spec))
    elif name == "groupfolder":  # ROOT[@GROUP,...]: see genaug.data.groupfolder
        images, targets, names, extra = read_group_folder(*parse_group_spec(spec), image_size)
    else:
        raise GenaugError(
            f"unknown dataset spec {spec!r}; use one of {', '.join(_SPECS)} "
            "(PATH/ROOT being a folder on disk)."
        )
    extra.setdefault("native_channels", int(images.shape[1]))
    extra.setdefault("native_size", [int(images.shape[2]), int(images.shape[3])])
    out = _finish(images, image_size, channels)
    description = {"spec": spec.strip(), **extra}
    return ImageDataset(out, targets, names, description)


def _load_digits() -> tuple[Tensor, Tensor, list[str], dict[str, Any]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)  # (N, 8, 8)
    images = images.unsqueeze(1)  # (N, 1, 8, 8) float in [0, 1]
    targets = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))  # (N,)
    names = [str(i) for i in range(10)]
    return images, targets, names, {"source": "sklearn.datasets.load_digits", "train": None}


_MNIST_FIX = "the four {human} *-ubyte.gz files yourself and gunzip them into {folder}"
_TV_INFO = {  # name: (torchvision class, folder under ROOT, human name, how to get the files)
    "mnist": ("MNIST", "MNIST/raw", "MNIST", _MNIST_FIX),
    "fashionmnist": ("FashionMNIST", "FashionMNIST/raw", "Fashion-MNIST", _MNIST_FIX),
    "cifar10": (
        "CIFAR10",
        "cifar-10-batches-py",
        "CIFAR-10",
        "cifar-10-python.tar.gz yourself and extract it into {root}",
    ),
}


def _expected_files(name: str, cls: Any, folder: str) -> list[str]:
    if name == "cifar10":
        names = [f for f, _ in [*cls.train_list, *cls.test_list]] + [cls.meta["filename"]]
    else:  # torchvision strips ".gz" from the resource names once extracted
        names = [os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]
    return [os.path.join(folder, n) for n in names]


def _load_torchvision(
    name: str, root: str, train: bool
) -> tuple[Tensor, Tensor, list[str], dict[str, Any]]:
    import torchvision.datasets as tvd

    cls_name, sub, human, fix = _TV_INFO[name]
    cls = getattr(tvd, cls_name)
    root = os.path.expanduser(root)
    folder = os.path.join(root, *sub.split("/"))
    fix = fix.format(human=human, folder=folder, root=root)
    try:
        ds = cls(root=root, train=train, download=False)
    except Exception as exc:  # torchvision raises RuntimeError, corrupt files other errors
        missing = [p for p in _expected_files(name, cls, folder) if not os.path.isfile(p)]
        if missing:
            more = f" and {len(missing) - 1} more file(s) there" if len(missing) > 1 else ""
            raise GenaugError(
                f"{human} is not under {root}: expected {missing[0]}{more} "
                f"(download {fix}; genaug never downloads)."
            ) from None
        raise GenaugError(
            f"{human} files under {folder} could not be read ({type(exc).__name__}: {exc}); "
            f"download {fix} again."
        ) from None
    data = ds.data
    if isinstance(data, np.ndarray):  # CIFAR10: (N, H, W, 3) uint8
        images = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))
    else:  # MNIST-style: (N, H, W) uint8 tensor
        images = data.unsqueeze(1)  # (N, 1, H, W)
    targets = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)  # (N,)
    names = [str(i) for i in range(10)] if name == "mnist" else [str(c) for c in ds.classes]
    extra = {"source": f"torchvision.datasets.{cls_name}", "root": os.path.abspath(root)}
    extra["train"] = bool(train)
    return images, targets, names, extra


def _read_image(path: str, size: int) -> np.ndarray | str:
    """Read one file as a square array, or return why it could not be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return pil_to_square_array(img, size)
    except Exception as exc:  # any decoder failure means: skip this file
        return f"{type(exc).__name__}: {exc}"


def _load_image_folder(path: str, size: int) -> tuple[Tensor, Tensor, list[str], dict[str, Any]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    root = os.path.expanduser(path)
    fix = "point imagefolder:PATH at a folder with one subfolder of images per class"
    if not os.path.exists(root):
        raise GenaugError(f"image folder {root} does not exist; {fix}.")
    if not os.path.isdir(root):
        raise GenaugError(f"{root} is a file, not a folder; {fix}.")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise GenaugError(
            f"image folder {root} has no class subfolders; put the images into one subfolder "
            f"per class, e.g. {os.path.join(root, 'cats', '1.png')}."
        )
    if len(classes) == 1:
        raise GenaugError(
            f"image folder {root} has only one class subfolder ({classes[0]!r}); a classifier "
            "and a conditional generator need two or more, so add another class subfolder."
        )
    files: list[str] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, name), followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(f for f in filenames if not f.startswith(".")):
                full = os.path.join(dirpath, fname)
                if fname.lower().endswith(IMG_EXTENSIONS):
                    files.append(full)
                    labels.append(label)
                else:
                    skipped.append((full, "not an image file extension"))
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda p: _read_image(p, size), files))
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    for file, label, result in zip(files, labels, results, strict=True):
        if isinstance(result, str):
            skipped.append((file, result))
        else:
            arrays.append(result)
            kept.append(label)
    for file, why in skipped[:_MAX_SKIP_WARNINGS]:
        warnings.warn(f"skipped {file} ({why})", SkippedFileWarning, stacklevel=3)
    if len(skipped) > _MAX_SKIP_WARNINGS:
        warnings.warn(
            f"skipped {len(skipped) - _MAX_SKIP_WARNINGS} more unreadable files under {root}",
            SkippedFileWarning,
            stacklevel=3,
        )
    if not arrays:
        raise GenaugError(
            f"image folder {root} contains no readable images; put image files "
            f"({', '.join(IMG_EXTENSIONS)}) into its class subfolders."
        )
    counts = np.bincount(np.asarray(kept), minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise GenaugError(
            f"class folder {os.path.join(root, empty[0])} has no readable images; add images "
            "to it or remove the folder."
        )
    chans = 3 if any(a.ndim == 3 for a in arrays) else 1
    out = np.empty((len(arrays), chans, size, size), dtype=np.uint8)  # (N, C, S, S)
    for i, arr in enumerate(arrays):
        out[i] = arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]  # gray broadcasts to RGB
    extra = {"source": "imagefolder", "root": os.path.abspath(root), "train": None}
    extra["skipped_files"] = len(skipped)
    targets = torch.as_tensor(kept, dtype=torch.int64)  # (N,)
    return torch.from_numpy(out), targets, classes, extra
