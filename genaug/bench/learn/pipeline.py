"""The batch pipeline of a recipe: classic per-image transforms and a generative stage.

:func:`build_pipeline` turns a parsed :class:`~genaug.bench.plan.recipes.Recipe` into
``(images, labels) -> (images, labels)`` stages, in the recipe's order; the generative stage
follows the recipe's schedule of p over training (``set_progress``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from genaug.bench.learn.offline import OfflineVariations
from genaug.bench.plan.recipes import CLASSIC, GenerativeStep, Recipe
from genaug.data import ImageDataset
from genaug.data.convert import to_float_images, to_uint8_images
from genaug.errors import GenaugError
from genaug.models.base import Generator

__all__ = [
    "ClassicStage",
    "GenerativeStage",
    "RecipePipeline",
    "build_pipeline",
    "classic_transform",
]


def classic_transform(name: str, image_size: int, allow_flip: bool = True) -> Callable:
    """The torchvision v2 transform of a classic baseline, for one ``uint8`` image (C, H, W)."""
    from torchvision.transforms import v2

    if name == "flipcrop":
        parts: list[Any] = [v2.RandomCrop(image_size, padding=max(1, image_size // 8))]
        if allow_flip:
            parts.append(v2.RandomHorizontalFlip())
        return v2.Compose(parts)
    if name == "affine":
        return v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10)
    if name == "trivialaugment":
        return v2.TrivialAugmentWide()
    if name == "randaugment":
        return v2.RandAugment()
    raise GenaugError(f"unknown classic augmentation {name!r}; use one of {', '.join(CLASSIC)}.")


class ClassicStage:
    """Per-image torchvision v2 transforms over a batch, on ``uint8`` CPU tensors."""

    def __init__(self, names: tuple[str, ...], image_size: int, allow_flip: bool) -> None:
        from torchvision.transforms import v2

        transforms = [classic_transform(n, image_size, allow_flip) for n in names]
        self.transform = transforms[0] if len(transforms) == 1 else v2.Compose(transforms)

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        device = images.device
        batch = to_uint8_images(images.cpu()) if images.is_floating_point() else images.cpu()
        out = torch.stack([self.transform(image) for image in batch])  # (B, C, H, W) uint8
        return out.to(device), labels


class GenerativeStage:
    """A :class:`~genaug.transforms.GenerativeAugment` over a batch, with a schedule of p, a cap
    on the generated share and an optional filter; ``last_generated`` (B,) says which images of
    the last batch it replaced.

    ``keep``: a filter ``(images, labels) -> (B,) bool`` over generated images (float [0, 1]);
    a generated image it rejects is given back as the real image it came from. ``shots``: the
    labelled images, for the offline route (``offline=V``: V variations of each made here,
    once; see :mod:`~genaug.bench.learn.offline`).
    """

    def __init__(
        self,
        generator: Generator,
        step: GenerativeStep,
        seed: int,
        neighbours: ImageDataset | None = None,
        guide: ImageDataset | None = None,
        keep: Callable[[Tensor, Tensor], Tensor] | None = None,
        shots: ImageDataset | None = None,
    ) -> None:
        from genaug.transforms import GenerativeAugment

        self.step, self.keep = step, keep
        self.last_generated: Tensor | None = None
        self.augment = GenerativeAugment(
            generator,
            mode=step.mode,
            p=step.p,
            strength=step.strength,
            seed=seed,
            neighbours=step.neighbour_walk(neighbours, guide),
            detail=step.detail,
        )
        self.offline: OfflineVariations | None = None
        if step.offline:
            if shots is None:
                raise GenaugError(f"offline={step.offline} needs the labelled shots to vary.")
            self.offline = OfflineVariations(self.augment, shots, step.offline, step.chain, seed)

    def set_progress(self, fraction: float) -> None:
        self.augment.p = self.step.p_at(fraction)

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        self.last_generated = torch.zeros(images.shape[0], dtype=torch.bool)
        if self.augment.p <= 0.0:
            return images, labels
        simple = self.step.chain == 1 and self.step.cap >= 1.0 and self.keep is None
        if simple and self.offline is None:
            out = self.augment(images, labels)
            self.last_generated = self.augment.last_params["apply"].cpu().clone()
            return out, labels
        # One draw holds every link of a chain (mode vary); the cap edits it before use.
        params = self.augment.make_params(images, labels, chain=self.step.chain)
        params["apply"] = _capped(params["apply"], self.step.cap)
        generated = params["apply"].cpu().clone()
        if self.offline is not None:  # the share drawn takes variations made before training
            out = images.clone()
            rows = generated.nonzero().squeeze(1)
            if len(rows):
                out[rows.to(out.device)] = self.offline.draw(images[rows], labels[rows])
        else:
            out = self.augment(images, labels, params=params)
        if self.keep is not None and bool(generated.any()):
            rows = generated.nonzero().squeeze(1)
            kept = self.keep(to_float_images(out[rows]), labels[rows].long()).cpu()
            back = rows[~kept]
            out = out.clone()
            out[back] = images[back].to(out.dtype)
            generated[back] = False
        self.last_generated = generated
        return out, labels


def _capped(apply: Tensor, cap: float) -> Tensor:
    """The draw ``apply`` (B,) bool with at most ``floor(cap * B)`` True (the first ones)."""
    if cap >= 1.0:
        return apply
    most = int(cap * apply.shape[0])
    rank = torch.cumsum(apply.long(), 0)  # (B,) how many generated up to each position
    return apply & (rank <= most)


class RecipePipeline:
    """The batch augmentation of a recipe: ``(images, labels) -> (images, labels)``;
    ``last_generated`` (B,) bool: which images of the last batch a generator made (None when
    the recipe has no generator)."""

    def __init__(self, recipe: Recipe, stages: list[Any]) -> None:
        self.recipe = recipe
        self.stages = stages

    @property
    def offline_seconds(self) -> float | None:
        """The one-off cost of the offline route's variations (None: online)."""
        for stage in self.stages:
            if isinstance(stage, GenerativeStage) and stage.offline is not None:
                return stage.offline.seconds
        return None

    @property
    def last_generated(self) -> Tensor | None:
        for stage in self.stages:
            if isinstance(stage, GenerativeStage):
                return stage.last_generated
        return None

    def set_progress(self, fraction: float) -> None:
        for stage in self.stages:
            if hasattr(stage, "set_progress"):
                stage.set_progress(fraction)

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        for stage in self.stages:
            images, labels = stage(images, labels)
        return images, labels

    def __repr__(self) -> str:
        return f"RecipePipeline({self.recipe.name!r})"


def build_pipeline(
    recipe: Recipe,
    image_size: int,
    allow_flip: bool = True,
    generator: Generator | None = None,
    seed: int = 0,
    neighbours: ImageDataset | None = None,
    guide: ImageDataset | None = None,
    keep: Callable[[Tensor, Tensor], Tensor] | None = None,
    shots: ImageDataset | None = None,
) -> RecipePipeline | None:
    """The batch pipeline of ``recipe`` (None for ``none``), with ``generator`` when it has one.

    ``neighbours``: the bank of images for mode ``neighbour`` (ignored by the other modes);
    ``guide``: the labelled images a ``guide=1`` walk spreads its classes from; ``keep``: the
    filter of generated images (``filter=1``); ``shots``: the labelled images the offline
    route varies (``offline=V``).
    """
    stages: list[Any] = []
    if recipe.classic:
        stages.append(ClassicStage(recipe.classic, image_size, allow_flip))
    if recipe.generative is not None:
        if generator is None:
            raise GenaugError(f"condition {recipe.name!r} needs a generator; none was given.")
        generative = GenerativeStage(
            generator, recipe.generative, seed, neighbours, guide, keep, shots
        )
        if recipe.generative.order == "generative-first":
            stages.insert(0, generative)
        else:
            stages.append(generative)
    return RecipePipeline(recipe, stages) if stages else None
