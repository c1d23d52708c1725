"""A torchvision transforms v2 adapter: ``TorchvisionGenerativeAugment``.

It takes PIL images (mode L or RGB), uint8 or float tensors ``(C, H, W)`` or ``(B, C, H, W)`` and
``tv_tensors.Image``, inside any sample structure v2 understands (tuples, lists, dicts). Labels
are read from an ``(image, label)`` sample or a dict (like ``v2.MixUp``'s ``labels_getter``) and
passed through unchanged. Bounding boxes, masks and keypoints pass through too, with a warning:
the generator moves the image content, so they may no longer match.

``torchvision.datasets.ImageFolder`` gives its ``transform`` the image alone: a conditional
generator then conditions on the class it infers for the image (the dataset's label is not
touched). To condition on the dataset's labels instead, wrap the dataset in
:class:`JointTransformDataset` so the transform sees ``(image, label)`` samples.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import PIL.Image
from torch import Tensor
from torch.utils._pytree import tree_flatten, tree_unflatten
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.transforms._inputs import check_label_source, warn_if_labels_required
from genaug.transforms.core import GenerativeAugment
from genaug.transforms.settings import AdapterAttributes, AugmentSettings
from genaug.transforms.walk import NeighbourWalk

__all__ = ["JointTransformDataset", "TargetsNotTransformedWarning", "TorchvisionGenerativeAugment"]

_PIL_MODES = ("L", "RGB")
_GEOMETRY = (tv_tensors.BoundingBoxes, tv_tensors.Mask, tv_tensors.KeyPoints)


class TargetsNotTransformedWarning(UserWarning):
    """Boxes, masks or keypoints passed through a transform that moves the image content."""


def default_labels_getter(sample: Any) -> Any:
    """The label of a sample: the second item of a tuple/list, or a dict's label-like key.

    A dict key ``labels`` wins, then the first key containing ``label`` (any case), as in
    ``v2.MixUp``. Returns None when the sample carries no label.
    """
    candidate = sample
    if isinstance(sample, (tuple, list)):
        if len(sample) < 2:
            return None
        candidate = sample[1]
    if isinstance(candidate, Mapping):
        keys = [k for k in candidate if isinstance(k, str)]
        key = next((k for k in keys if k.lower() == "labels"), None)
        key = key or next((k for k in keys if "label" in k.lower()), None)
        return None if key is None else candidate[key]
    if candidate is sample:  # a bare image or a dict without labels
        return None
    if isinstance(candidate, (int, np.integer, np.ndarray)) and not isinstance(candidate, bool):
        return candidate
    if isinstance(candidate, Tensor) and not isinstance(candidate, tv_tensors.TVTensor):
        return candidate
    if isinstance(candidate, (str, bytes, bool, float, np.floating, np.bool_)):
        return candidate  # a label of the wrong type: returned so that the check names it
    return None


def _no_labels(sample: Any) -> None:
    return None


def _labels_function(labels_getter: Any) -> Callable[[Any], Any]:
    """The function reading a sample's labels, for a checked ``labels_getter``."""
    if labels_getter == "default":
        return default_labels_getter
    return _no_labels if labels_getter is None else labels_getter


def _is_image(item: Any) -> bool:
    return isinstance(item, (PIL.Image.Image, tv_tensors.Image)) or (
        isinstance(item, Tensor) and not isinstance(item, tv_tensors.TVTensor)
    )


class TorchvisionGenerativeAugment(AdapterAttributes, v2.Transform):
    """Generative augmentation as a torchvision v2 transform.

    Args:
        generator: a Generator, a checkpoint path, or a genaug transform whose generator to
            share (pickled copies carry the path when there is one, else plain bytes).
        mode, p, strength, detail, neighbours, precision, compile: the settings every
            transform takes (see :class:`~genaug.transforms.settings.AugmentSettings`);
            ``p`` is drawn per image (inside ``v2.RandomApply`` use ``p=1``).
        seed: seeds the transform's own random stream (as for ``GenerativeAugment``).
        labels_getter: ``"default"`` (tuple second item / dict label key), a callable taking
            the sample and returning its label(s), or None (the samples carry no labels: a
            conditional generator infers each image's class, and one that cannot is refused
            here). Without a label a conditional generator conditions on the inferred class.

    ``aug(sample, params=aug.last_params)`` replays the last call.

    Example::

        aug = TorchvisionGenerativeAugment("runs/digits-vae", p=0.5, seed=0)
        pipeline = v2.Compose([v2.PILToTensor(), aug, v2.ToDtype(torch.float32, scale=True)])
        image, label = pipeline((pil_image, 3))
    """

    def __init__(
        self,
        generator: Generator | str | os.PathLike,
        *,
        mode: str = "auto",
        p: float = 0.5,
        strength: float = 1.0,
        detail: float = 0.0,
        neighbours: NeighbourWalk | Any = None,
        precision: str = "auto",
        compile: bool = False,
        seed: int | None = None,
        labels_getter: str | Callable[[Any], Any] | None = "default",
    ) -> None:
        super().__init__()
        if labels_getter != "default" and labels_getter is not None and not callable(labels_getter):
            raise GenaugError(
                f"labels_getter must be 'default', a callable or None, got {labels_getter!r}."
            )
        settings = AugmentSettings(mode, p, strength, detail, neighbours, precision, compile)
        owner = type(self).__name__
        self.augment = GenerativeAugment.from_settings(generator, settings, seed=seed, owner=owner)
        self.labels_getter = labels_getter
        self._get_labels = _labels_function(labels_getter)
        if labels_getter is None:  # no label can come: refuse now a generator that cannot infer
            check_label_source(self.generator, owner, self.mode, "none can come")
        elif self.generator.conditional:  # labels may come; say now if they must
            warn_if_labels_required(self.generator.label_inference_problem(), owner)

    def extra_repr(self) -> str:
        return self.augment.extra_repr()

    def forward(self, *inputs: Any, params: dict[str, Tensor] | None = None) -> Any:
        """Transform the images of a sample; pass ``params`` (e.g. ``last_params``) to replay."""
        sample = inputs if len(inputs) > 1 else inputs[0]
        flat, spec = tree_flatten(sample)
        needs = self._needs_transform_list(flat)
        images = [i for i, (item, need) in enumerate(zip(flat, needs)) if need and _is_image(item)]
        if not images:
            kinds = ", ".join(sorted({type(item).__name__ for item in flat})) or "nothing"
            raise GenaugError(
                f"{type(self).__name__} found no image in the sample (got {kinds}); pass a PIL "
                "image, a tensor (C, H, W) or (B, C, H, W), or a tv_tensors.Image."
            )
        others = [item for item, need in zip(flat, needs) if need and not _is_image(item)]
        if others:
            kinds = ", ".join(sorted({type(item).__name__ for item in others}))
            warnings.warn(
                f"{type(self).__name__} (mode {self.mode!r}) changes the image content; the "
                f"{kinds} in the sample pass through unchanged and may no longer match it.",
                TargetsNotTransformedWarning,
                stacklevel=2,
            )
        labels = self._get_labels(sample)
        out = list(flat)
        for index in images:  # several images in one sample share the parameters
            batch, restore = self._to_batch(flat[index])
            out[index] = restore(self.augment(batch, labels, params=params))
            params = self.augment.last_params
        return tree_unflatten(out, spec)

    def _to_batch(self, image: Any) -> tuple[Tensor, Callable[[Tensor], Any]]:
        """An image as a batch tensor (B, C, H, W), and the function giving a result back as it came."""
        name = type(self).__name__
        if isinstance(image, PIL.Image.Image):
            if image.mode not in _PIL_MODES:
                raise GenaugError(
                    f"{name} takes PIL images in mode L or RGB, got mode {image.mode}; convert "
                    "it with image.convert('RGB') (or put v2.RGB() before)."
                )
            mode = image.mode
            batch = TF.pil_to_tensor(image).unsqueeze(0)  # (1, C, H, W) uint8
            return batch, lambda out: TF.to_pil_image(out[0], mode=mode)
        tensor = image.as_subclass(Tensor)
        if tensor.ndim == 3:
            batch, restore = tensor.unsqueeze(0), (lambda out: out[0])
        elif tensor.ndim == 4:
            batch, restore = tensor, (lambda out: out)
        else:
            raise GenaugError(
                f"{name} expects image tensors shaped (C, H, W) or (B, C, H, W), got shape "
                f"{tuple(tensor.shape)}; add the channel dimension with unsqueeze(0)."
            )
        if isinstance(image, tv_tensors.Image):
            return batch, lambda out: tv_tensors.wrap(restore(out), like=image)
        return batch, restore


class JointTransformDataset(Dataset):
    """A dataset whose ``(image, label)`` samples go through one transform together.

    ``ImageFolder(root, transform=...)`` shows its transform the image alone; a label-aware
    transform (a conditional generator needs the class) must see the pair::

        data = JointTransformDataset(ImageFolder(root), v2.Compose([..., generative, ...]))
    """

    def __init__(self, dataset: Dataset, transform: Callable[[Any], Any]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.transform(self.dataset[index])
