"""GenerativeMix: the batched ``(images, labels) -> (images, labels)`` transform for the device.

It sits after the DataLoader, on the training device, where ``v2.MixUp`` / ``v2.CutMix`` or timm's
``mixup_fn`` sit. Every mode keeps the labels, so they come back unchanged; put it before timm's
``Mixup`` (whose soft labels then stay as Mixup made them). Given soft labels (after Mixup), it
conditions each image on its strongest class and still returns the soft labels unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.transforms.core import GenerativeAugment
from genaug.transforms.walk import NeighbourWalk

__all__ = ["GenerativeMix"]


def _stats(values: Sequence[float] | Tensor | None, name: str) -> Tensor | None:
    if values is None:
        return None
    tensor = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if tensor.numel() not in (1, 3) or (name == "std" and bool((tensor <= 0).any())):
        raise GenaugError(
            f"GenerativeMix {name} must hold 1 or 3 {'positive ' if name == 'std' else ''}"
            f"numbers (one per channel), got {values!r}."
        )
    return tensor.view(1, -1, 1, 1)


class GenerativeMix(nn.Module):
    """Batched generative augmentation of a training batch: ``images, labels = mix(images, labels)``.

    Args:
        generator: a Generator, or a checkpoint path.
        mode, p, strength, seed: as for :class:`~genaug.transforms.core.GenerativeAugment`.
        mean, std: if the loader already normalised the images (timm's prefetcher does), the
            per-channel normalisation to undo before and redo after (e.g. ImageNet's).
        precision, compile: speed settings, as for ``GenerativeAugment`` (``bfloat16`` and
            ``compile=True`` are the fast choice on a GPU or on a CPU with AMX).
        neighbours: for mode ``neighbour``, a :class:`~genaug.transforms.walk.NeighbourWalk`
            (or just its bank of images), as for ``GenerativeAugment``.
        detail: how much of each image's own detail to keep (as for ``GenerativeAugment``).

    Images are ``(B, C, H, W)`` uint8 0-255 or float in [0, 1] (or normalised with ``mean`` and
    ``std``) and come back in the same dtype, device, size and channels. Labels are class indices
    ``(B,)`` or soft labels ``(B, num_classes)``; they come back as they went in (the same
    object). Move it to the training device with ``.to(device)``.

    Example::

        mix = GenerativeMix("runs/digits-vae", p=0.5, seed=0).to(device)
        for images, labels in loader:
            images, labels = mix(images.to(device), labels.to(device))
            images, labels = mixup_fn(images, labels)  # optional, timm's Mixup
    """

    def __init__(
        self,
        generator: Generator | str | os.PathLike,
        mode: str = "auto",
        p: float = 0.5,
        strength: float = 1.0,
        seed: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        precision: str = "auto",
        compile: bool = False,
        neighbours: NeighbourWalk | Any = None,
        detail: float = 0.0,
    ) -> None:
        super().__init__()
        self.augment = GenerativeAugment(
            generator,
            mode=mode,
            p=p,
            strength=strength,
            seed=seed,
            precision=precision,
            compile=compile,
            neighbours=neighbours,
            detail=detail,
        )
        self.augment.owner = type(self).__name__
        if (mean is None) != (std is None):
            raise GenaugError("GenerativeMix needs both mean and std, or neither.")
        self.register_buffer("mean", _stats(mean, "mean"), persistent=False)
        self.register_buffer("std", _stats(std, "std"), persistent=False)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs) -> GenerativeMix:
        """Build from a checkpoint folder; pickled copies carry the path, not the weights."""
        return cls(os.fspath(path), **kwargs)

    @property
    def generator(self) -> Generator:
        return self.augment.generator

    @property
    def mode(self) -> str:
        return self.augment.mode

    @property
    def last_params(self) -> dict[str, Tensor] | None:
        return self.augment.last_params

    def make_params(self, images: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """Draw per-image parameters for a batch (see ``GenerativeAugment.make_params``)."""
        return self.augment.make_params(images, labels)

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        params: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Augment a batch; returns ``(images, labels)`` with the labels unchanged."""
        if self.mean is None:
            return self.augment(images, labels, params=params), labels
        if not isinstance(images, Tensor) or not images.is_floating_point():
            raise GenaugError(
                "GenerativeMix with mean and std expects normalised float images, got "
                f"{getattr(images, 'dtype', type(images).__name__)}; drop mean/std for raw images."
            )
        mean = self.mean.to(images.device, images.dtype)
        std = self.std.to(images.device, images.dtype)
        # Back to [0, 1]; clamped, as normalised pipelines may hold values outside (RandomErasing).
        raw = (images * std + mean).clamp(0.0, 1.0)
        out = self.augment(raw, labels, params=params)
        applied = self.augment.last_params["apply"].to(images.device).view(-1, 1, 1, 1)
        return torch.where(applied, (out - mean) / std, images), labels
