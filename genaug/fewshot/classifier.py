"""Few-shot classification on a pretrained model's frozen features, with or without a
hallucinator: :func:`fit_few_shot` -> :class:`FewShotClassifier`; :func:`train_hallucinator`.

This is what the bench's ``base:proto`` and ``base:probe`` conditions do, for users: from a
pretrained timm model (or any ``nn.Module`` that returns features, or a bench's base-classifier
folder) and N x k labelled images, fit a prototype or linear-probe head on the frozen features,
optionally with augmented views of the shots and hallucinated features.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from genaug.data import ImageDataset
from genaug.errors import GenaugError
from genaug.fewshot.heads import LinearHead, fit_head
from genaug.fewshot.support import per_image, support_features
from genaug.models.features import FeatureExtractor, load_extractor

__all__ = ["FewShotClassifier", "as_extractor", "fit_few_shot", "train_hallucinator"]


def as_extractor(extractor: Any, images: Tensor | None = None) -> FeatureExtractor:
    """A :class:`FeatureExtractor` from one, a folder / ``timm:NAME@FILE`` string, or an
    ``nn.Module`` (sized from ``images`` (N, C, S, S))."""
    if isinstance(extractor, FeatureExtractor):
        return extractor
    if isinstance(extractor, (str, os.PathLike)):
        size = channels = None
        if images is not None and images.ndim == 4:
            channels, size = int(images.shape[1]), int(images.shape[-1])
        return load_extractor(os.fspath(extractor), size, channels)
    if isinstance(extractor, nn.Module):
        if images is None or images.ndim != 4:
            raise GenaugError(
                "an nn.Module extractor is sized from the images; give images (N, C, S, S)."
            )
        return FeatureExtractor(
            extractor, image_size=int(images.shape[-1]), channels=images.shape[1]
        )
    raise GenaugError(
        f"extractor must be a FeatureExtractor, an nn.Module or a classifier folder, got "
        f"{type(extractor).__name__}."
    )


class FewShotClassifier(nn.Module):
    """A frozen extractor and a fitted head: images -> logits over the few-shot classes.

    Example: ``classifier = fit_few_shot(model, shots, labels)``, then
    ``classifier.predict(images)``.
    """

    def __init__(self, extractor: FeatureExtractor, head: LinearHead) -> None:
        super().__init__()
        self.extractor, self.head = extractor, head

    def forward(self, images: Tensor) -> Tensor:
        """Logits (B, K) of images (B, C, S, S), uint8 or float in [0, 1]."""
        return self.head(self.extractor(images))

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """Class indices (B,) of images (B, C, S, S)."""
        return self(images).argmax(1)


def fit_few_shot(
    extractor: Any,
    images: Tensor,
    labels: Tensor,
    *,
    head: str = "probe",
    views: int = 0,
    augment: Callable | None = None,
    batched: bool = False,
    hallucinator: Any = None,
    count: int = 5,
    weight: float = 1.0,
    strength: float = 1.0,
    center: Tensor | None = None,
    regularisation: float = 1e-3,
    num_classes: int | None = None,
    seed: int = 0,
) -> FewShotClassifier:
    """Fit a few-shot head on frozen features of the labelled shots.

    Args:
        extractor: a :class:`~genaug.models.features.FeatureExtractor`, a pretrained
            ``nn.Module`` returning features (a timm model's pooled features are used), a
            bench's base-classifier folder or ``timm:NAME@FILE``.
        images, labels: the shots (N, C, S, S) (uint8 or [0, 1] float) and classes (N,) in
            ``0..num_classes-1``, every class with at least one image.
        head: ``probe`` (logistic regression) or ``proto`` (nearest class mean, cosine).
        views, augment, batched: ``views`` augmented copies of each shot, made by ``augment``
            (a per-image transform such as a torchvision v2 one; ``batched=True``: a callable
            on ``(images, labels)`` batches instead, e.g. a genaug generative transform).
        hallucinator, count, weight, strength: a hallucinator trained on this extractor
            (:func:`train_hallucinator`), ``count`` hallucinated features per shot, their
            loss weight, and its noise scale.
        center: a mean feature of the base classes to subtract before normalising (SimpleShot).
        regularisation: the probe's L2 penalty.
        seed: seeds the views and the hallucinations.

    Example: ``fit_few_shot(timm_model, shots, labels, head="proto").predict(queries)``.
    """
    extractor = as_extractor(extractor, images)
    labels = torch.as_tensor(labels).long()
    if images.ndim != 4 or labels.shape != (images.shape[0],):
        raise GenaugError(
            f"give images (N, C, H, W) and one label per image, got {tuple(images.shape)} "
            f"and {tuple(labels.shape)}."
        )
    extractor.check_images(images[:1])  # another size or channel count: one sentence
    k = int(num_classes if num_classes is not None else int(labels.max()) + 1)
    if augment is not None and not batched:
        augment = per_image(augment)
    support = support_features(
        extractor,
        images,
        labels,
        views=views,
        augment=augment,
        hallucinator=hallucinator,
        count=count if hallucinator is not None else 0,
        weight=weight,
        strength=strength,
        num_classes=k,
        seed=seed,
    )
    fitted = fit_head(
        head, support.features, support.labels, k, support.weights, center, regularisation
    )
    return FewShotClassifier(extractor, fitted)


def train_hallucinator(
    extractor: Any,
    data: ImageDataset | str,
    out: str | os.PathLike,
    *,
    objective: str = "episodes",
    model: str = "hallucinator",
    **settings: Any,
) -> Any:
    """Train a hallucinator on the base classes' images ``data`` (an ImageDataset or a dataset
    spec, at the extractor's size), through genaug's one training loop, into ``out``.

    ``settings`` are :class:`~genaug.train.TrainConfig` fields (steps, batch_size, lr, seed,
    resume, ...); returns its :class:`~genaug.train.TrainResult`. An in-memory extractor is
    registered for this process (a resumed run in another process passes it again).
    """
    from genaug.data import load_dataset
    from genaug.train import TrainConfig, train

    if isinstance(extractor, (str, os.PathLike)):
        extractor = load_extractor(os.fspath(extractor))
    elif not isinstance(extractor, FeatureExtractor):
        raise GenaugError(
            "train_hallucinator takes a FeatureExtractor or a classifier folder; wrap a module "
            "with genaug.models.FeatureExtractor(module, image_size=..., channels=...)."
        )
    if isinstance(data, str):
        data = load_dataset(data, image_size=extractor.image_size, channels=extractor.channels)
    model_args = dict(settings.pop("model_args", {}) or {})
    model_args.update(extractor=extractor.spec(), objective=objective)
    config = TrainConfig(
        model=model,
        data=str(data.description.get("spec", "in-memory")),
        out=os.fspath(out),
        image_size=extractor.image_size,
        channels=extractor.channels,
        model_args=model_args,
        **settings,
    )
    return train(config, dataset=data)
