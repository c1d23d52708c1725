"""The support set a few-shot head is fit on: the shots' features, their augmented views, and
generated features, each with a weight.

For N x k shot images, :func:`support_features` extracts:

- the features of every shot as it is (weight 1);
- ``views`` augmented views of every shot, made by a batch augmentation (classic transforms,
  and/or an image generator's variations, which the augmentation reports in its
  ``last_generated`` mask): weight 1 for classic views, ``weight`` for generated ones;
  a ``keep`` filter may drop generated views (weight 0);
- ``count`` hallucinations of every shot's features from a feature-space generator
  (:class:`~genaug.models.hallucinator.Hallucinator`), weight ``weight``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genaug.errors import GenaugError
from genaug.fewshot.heads import fit_prototypes

__all__ = ["Support", "nearest_own_class", "per_image", "support_features"]

BatchAugment = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass
class Support:
    """Features (N, D) with labels (N,), weights (N,) and a generated mask (N,)."""

    features: Tensor
    labels: Tensor
    weights: Tensor
    generated: Tensor

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def join(self, other: Support) -> Support:
        return Support(
            torch.cat([self.features, other.features]),
            torch.cat([self.labels, other.labels]),
            torch.cat([self.weights, other.weights]),
            torch.cat([self.generated, other.generated]),
        )


def per_image(transform: Callable[[Tensor], Tensor]) -> BatchAugment:
    """A per-image transform (a torchvision v2 transform on one (C, H, W) image) as a batch
    augmentation ``(images, labels) -> (images, labels)``."""

    def augment(images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        return torch.stack([transform(image) for image in images]), labels

    return augment


def nearest_own_class(shots: Tensor, labels: Tensor, num_classes: int) -> Callable:
    """A filter for generated features (M, D) with labels (M,): True where the nearest
    prototype of the real shots' features ``shots`` (N, D) is the feature's own class."""
    head = fit_prototypes(shots, labels, num_classes)

    def keep(features: Tensor, classes: Tensor) -> Tensor:
        return head(features).argmax(1) == classes.to(head.weight.device)

    return keep


def _views(
    extractor: Any,
    images: Tensor,
    labels: Tensor,
    views: int,
    augment: BatchAugment,
    weight: float,
    keep: Callable | None,
) -> Support:
    """``views`` augmented copies of every image, as features with their weights."""
    repeated = images.repeat(views, *([1] * (images.ndim - 1)))  # (V * N, C, H, W)
    classes = labels.repeat(views)
    out = augment(repeated, classes)
    viewed, classes = out[0], out[1]
    generated = getattr(augment, "last_generated", None)
    if generated is None:
        generated = torch.zeros(len(classes), dtype=torch.bool)
    generated = generated.cpu().bool()
    features = extractor(viewed)
    weights = torch.where(generated, float(weight), 1.0).to(features.device)
    if keep is not None and bool(generated.any()):
        kept = keep(features, classes.long()).cpu() | ~generated
        weights = weights * kept.to(weights)
    return Support(features, classes.long().to(features.device), weights, generated)


def support_features(
    extractor: Any,
    images: Tensor,
    labels: Tensor,
    *,
    views: int = 0,
    augment: BatchAugment | None = None,
    hallucinator: Any = None,
    count: int = 0,
    weight: float = 1.0,
    strength: float = 1.0,
    filter_generated: bool = False,
    num_classes: int | None = None,
    seed: int = 0,
) -> Support:
    """The weighted support set of shot images (N, C, H, W) with labels (N,).

    Args:
        extractor: a :class:`~genaug.models.features.FeatureExtractor`.
        views, augment: how many augmented views of each shot, and the batch augmentation that
            makes them (``(images, labels) -> (images, labels)``; its ``last_generated`` mask,
            if it has one, says which views a generator made).
        hallucinator, count: a feature-space generator trained on this extractor, and how many
            hallucinations of each shot's features it adds.
        weight: the weight of every generated feature (real ones weigh 1).
        strength: the hallucinator's noise scale.
        filter_generated: drop generated features whose nearest prototype of the real shots is
            another class.
        num_classes: the class count (default: ``labels.max() + 1``).
        seed: seeds the augmentation's and the hallucinator's draws.
    """
    if isinstance(views, bool) or not isinstance(views, int) or views < 0:
        raise GenaugError(f"views must be a whole number >= 0, got {views!r}.")
    if views and augment is None:
        raise GenaugError(f"views={views} needs an augmentation to make them; give augment=.")
    if not float(weight) >= 0.0:
        raise GenaugError(f"weight must be 0 or more, got {weight!r}.")
    labels = torch.as_tensor(labels).long().cpu()
    k = int(num_classes if num_classes is not None else int(labels.max()) + 1)
    features = extractor(images)
    device = features.device
    real = Support(
        features,
        labels.to(device),
        torch.ones(len(labels), device=device),
        torch.zeros(len(labels), dtype=torch.bool),
    )
    keep = nearest_own_class(features, labels, k) if filter_generated else None
    support = real
    if views:
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # classic transforms draw from the global RNG
        try:
            support = support.join(_views(extractor, images, labels, views, augment, weight, keep))
        finally:
            torch.random.set_rng_state(state)
    if hallucinator is not None and count:
        hallucinator.check_extractor(extractor)
        noise = torch.Generator(device=hallucinator.device).manual_seed(seed + 1)
        made = hallucinator.hallucinate(real.features, count, strength, noise).to(device)
        classes = real.labels.repeat_interleave(count)
        weights = torch.full((len(made),), float(weight), device=device)
        if keep is not None:
            weights = weights * keep(made, classes).to(weights)
        generated = torch.ones(len(made), dtype=torch.bool)
        support = support.join(Support(made, classes, weights, generated))
    return support
