"""GenerativeCollate: generative augmentation of whole batches inside the DataLoader workers.

The generator costs far less per image on a batch than on one image at a time, so in a
``DataLoader`` the fast place for it is after collation: ``DataLoader(dataset,
collate_fn=GenerativeCollate(...))`` collates each batch as usual, then augments it in one call,
in the worker that made it (fork or spawn; the worker's CPU copy of the generator, one thread).
Each image gets the draw (transform or not, its latent noise) that the per-sample transform of
the same seed gives it in the same worker, so moving the generator from ``transform=`` to the
collate step keeps every image's randomness; only mode ``interpolate`` draws for the batch,
whose images are its partners. Labels come back unchanged, so timm's ``Mixup`` comes after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor
from torch.utils.data import default_collate

from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.transforms.batch import GenerativeMix
from genaug.transforms.settings import AdapterAttributes
from genaug.transforms.walk import NeighbourWalk

__all__ = ["GenerativeCollate"]


class GenerativeCollate(AdapterAttributes):
    """A DataLoader ``collate_fn``: collate the samples, then augment the batch's images.

    Args:
        generator: a Generator, a checkpoint path, or a genaug transform whose generator to
            share (as for :class:`~genaug.transforms.core.GenerativeAugment`); in workers it is
            a CPU copy, pickled by path where there is one.
        mode, p, strength, detail, neighbours, precision, compile: the settings every
            transform takes (see :class:`~genaug.transforms.settings.AugmentSettings`);
            ``p`` is drawn per image.
        seed: seeds the transform's own random stream; in a DataLoader worker it is re-seeded
            from this seed and the worker's seed (workers differ, runs repeat), and each image
            gets the draw the per-sample transform with this seed gives it there.
        mean, std: the per-channel normalisation the dataset's transform applied (its
            ``v2.Normalize``), undone before and redone after (as for ``GenerativeMix``).
        collate_fn: what collates the samples first (default ``torch``'s ``default_collate``);
            it must give ``(images, labels, ...)`` with images ``(B, C, H, W)``, or the images.
        use_labels: condition a conditional generator on the batch's labels (True), as
            ``JointTransformDataset`` does per sample; False infers each image's class, as in
            ``ImageFolder``'s ``transform=`` slot. The labels come back unchanged either way.

    Images are uint8 0-255 or float in [0, 1] (or normalised, with ``mean`` and ``std``) and
    keep their dtype, size and channels. ``collate(samples, params=collate.last_params)``
    replays a call.

    Example::

        data = ImageFolder(root, transform=v2.Compose([v2.PILToTensor(), v2.TrivialAugmentWide()]))
        collate = GenerativeCollate("runs/digits-vae", p=0.5, seed=0)
        loader = DataLoader(data, batch_size=64, num_workers=4, collate_fn=collate)
        for images, labels in loader:  # uint8 (64, C, H, W), augmented in the workers
            images, labels = mixup_fn(images.to(device).float() / 255, labels.to(device))
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
        collate_fn: Callable[[list[Any]], Any] | None = None,
        use_labels: bool = True,
    ) -> None:
        if collate_fn is not None and not callable(collate_fn):
            raise GenaugError(f"collate_fn must be callable or None, got {collate_fn!r}.")
        if not isinstance(use_labels, bool):
            raise GenaugError(f"use_labels must be True or False, got {use_labels!r}.")
        self.mix = GenerativeMix(
            generator,
            mode=mode,
            p=p,
            strength=strength,
            detail=detail,
            neighbours=neighbours,
            precision=precision,
            compile=compile,
            seed=seed,
            mean=mean,
            std=std,
        )
        self.mix.augment.owner = type(self).__name__  # how error messages name it
        self.augment = self.mix.augment
        self.collate_fn = collate_fn
        self.use_labels = use_labels

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.augment.extra_repr()})"

    def __call__(self, samples: list[Any], *, params: dict[str, Tensor] | None = None) -> Any:
        """Collate ``samples`` and augment the images; pass ``params`` to replay a call."""
        batch = (self.collate_fn or default_collate)(samples)
        images, labels = _images_and_labels(batch)
        given = labels if self.use_labels else None
        if params is None and self.mode != "interpolate":  # image by image, as per sample
            params = self.augment.make_params(images, given, per_image=True)
        out, _ = self.mix(images, given, params=params)
        if isinstance(batch, Tensor):
            return out
        items = [out, *batch[1:]]  # the batch as it came, its images augmented
        if isinstance(batch, tuple):
            return type(batch)(*items) if hasattr(batch, "_fields") else tuple(items)
        return items


def _images_and_labels(batch: Any) -> tuple[Tensor, Any]:
    """The images (B, C, H, W) and labels (or None) of a collated batch."""
    if isinstance(batch, Tensor):
        images, labels = batch, None
    elif isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Tensor):
        images, labels = batch[0], batch[1] if len(batch) > 1 else None
    else:
        raise GenaugError(
            "GenerativeCollate needs the collated batch as (images, labels, ...) or the images "
            f"alone, with images one tensor (B, C, H, W), got {type(batch).__name__}; give a "
            "collate_fn that returns that (and images of one size: resize them in the "
            "dataset's transform)."
        )
    if images.ndim != 4:
        raise GenaugError(
            f"GenerativeCollate needs images collated to (B, C, H, W), got shape "
            f"{tuple(images.shape)}; make the dataset's transform give (C, H, W) tensors "
            "(v2.PILToTensor() or v2.ToImage())."
        )
    return images, labels
