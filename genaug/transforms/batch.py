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
from genaug.transforms.core import GenerativeAugment, warn_from_checkpoint
from genaug.transforms.settings import AdapterAttributes, AugmentSettings
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


class GenerativeMix(AdapterAttributes, nn.Module):
    """Batched generative augmentation of a training batch: ``images, labels = mix(images, labels)``.

    Args:
        generator: a Generator, a checkpoint path, or a genaug transform whose generator to
            share (as for :class:`~genaug.transforms.core.GenerativeAugment`).
        mode, p, strength, detail, neighbours, precision, compile: the settings every
            transform takes (see :class:`~genaug.transforms.settings.AugmentSettings`);
            ``bfloat16`` and ``compile=True`` are the fast choice on a GPU or on a CPU with AMX.
        seed: seeds the transform's own random stream (as for ``GenerativeAugment``).
        mean, std: if the loader already normalised the images (timm's prefetcher does), the
            per-channel normalisation to undo before and redo after (e.g. ImageNet's).

    Images are ``(B, C, H, W)`` uint8 0-255 or float in [0, 1] (or normalised with ``mean`` and
    ``std``) and come back in the same dtype, device, size and channels. Labels are class indices
    ``(B,)`` or soft labels ``(B, num_classes)``; they come back as they went in (the same
    object). Move it to the training device with ``.to(device)``; ``mix(images, labels,
    params=mix.last_params)`` replays a call.

    Example::

        mix = GenerativeMix("runs/digits-vae", p=0.5, seed=0).to(device)
        for images, labels in loader:
            images, labels = mix(images.to(device), labels.to(device))
            images, labels = mixup_fn(images, labels)  # optional, timm's Mixup
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
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        settings = AugmentSettings(mode, p, strength, detail, neighbours, precision, compile)
        self.augment = GenerativeAugment.from_settings(
            generator, settings, seed=seed, owner=type(self).__name__
        )
        if (mean is None) != (std is None):
            raise GenaugError("GenerativeMix needs both mean and std, or neither.")
        self.register_buffer("mean", _stats(mean, "mean"), persistent=False)
        self.register_buffer("std", _stats(std, "std"), persistent=False)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs: Any) -> GenerativeMix:
        """Deprecated: ``GenerativeMix(path, ...)`` (every transform takes a path)."""
        warn_from_checkpoint(cls)
        return cls(os.fspath(path), **kwargs)

    def make_params(self, images: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """Draw per-image parameters for a batch (see ``GenerativeAugment.make_params``)."""
        return self.augment.make_params(images, labels)

    def __getstate__(self) -> dict[str, Any]:
        # mean and std as plain numbers: a spawn DataLoader would send tensors through
        # shared-memory file descriptors.
        state = super().__getstate__()
        state["_buffers"] = {
            name: None if value is None else value.tolist() for name, value in self._buffers.items()
        }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        buffers = state.pop("_buffers")
        super().__setstate__({**state, "_buffers": {}})
        for name, value in buffers.items():
            self._buffers[name] = None if value is None else torch.tensor(value)

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        *,
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
