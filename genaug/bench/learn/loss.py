"""The fine-tune's loss on one batch, when some of it is generated or hallucinated.

A plain batch is plain cross-entropy. When the augmentation reports which images a generator made
(its ``last_generated`` mask), :class:`GeneratedTreatment` says how the classifier treats them:

- ``weight``: each generated image's loss counts ``weight`` x a real one's (a weighted mean);
- ``soft``: label smoothing of the generated images' labels;
- ``bn="separate"``: the generated images go through the network in a forward pass of their
  own, with their own batch statistics, and leave the BatchNorm running statistics (what the
  test images are normalised with) to the real images (a batch with fewer than two generated or
  two real images runs in one pass: one image has no batch statistics).

:class:`FeatureHallucination` adds, for every real image of the batch, ``count`` features a
hallucinator makes from the network's own pooled features, classified by the network's head,
with loss weight ``weight`` (the head learns from them; the backbone gets no gradient through
them). Both work with any timm model (``forward_features`` / ``forward_head(pre_logits=True)`` /
``get_classifier()``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["FeatureHallucination", "GeneratedTreatment", "batch_loss", "parameter_groups"]


@dataclass(frozen=True)
class GeneratedTreatment:
    """How the fine-tune treats generated images (see the module docstring)."""

    weight: float = 1.0
    soft: float = 0.0
    bn: str = "shared"

    @property
    def plain(self) -> bool:
        return self.weight == 1.0 and self.soft == 0.0 and self.bn == "shared"


@dataclass
class FeatureHallucination:
    """A hallucinator feeding the head of a fine-tune (see the module docstring)."""

    hallucinator: Any
    count: int = 5
    weight: float = 1.0
    strength: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.noise = torch.Generator(device=self.hallucinator.device).manual_seed(self.seed)


def parameter_groups(model: nn.Module, lr: float, backbone: float) -> list[dict[str, Any]]:
    """The head at ``lr`` and the rest at ``backbone`` x ``lr`` (one group when 1)."""
    if backbone == 1.0:
        return [{"params": list(model.parameters()), "lr": lr}]
    head = {id(p) for p in model.get_classifier().parameters()}
    rest = [p for p in model.parameters() if id(p) not in head]
    return [
        {"params": [p for p in model.parameters() if id(p) in head], "lr": lr},
        {"params": rest, "lr": lr * backbone},
    ]


@contextlib.contextmanager
def _frozen_statistics(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise with the batch's statistics but do not update their running
    ones (momentum 0) inside the block."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(layers, saved):
            m.momentum = momentum


def _pooled_and_logits(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    pooled = model.forward_head(model.forward_features(x), pre_logits=True)  # (B, D)
    return pooled, model.get_classifier()(pooled)


def batch_loss(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    generated: Tensor | None,
    treatment: GeneratedTreatment,
    hallucination: FeatureHallucination | None,
    autocast: Callable[[], contextlib.AbstractContextManager],
    label_smoothing: float = 0.0,
) -> Tensor:
    """The loss of a normalised batch ``x`` (B, C, H, W) with labels ``y`` (B,)."""
    special = generated is not None and bool(generated.any()) and not treatment.plain
    if not special and hallucination is None:
        with autocast():
            logits = model(x)
        return F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    fake = generated.to(x.device) if generated is not None else torch.zeros_like(y, dtype=bool)
    weights = torch.where(fake, treatment.weight, 1.0).to(x.device)
    smoothing = torch.where(fake, treatment.soft, label_smoothing).to(x.device)
    parts: list[tuple[Tensor, Tensor, Tensor]] = []  # (logits, labels, weights) per pass
    pooled_real: Tensor | None = None
    made = int(fake.sum())
    # A pass of one image has no batch statistics: with fewer than two of either, one pass.
    if treatment.bn == "separate" and 2 <= made <= len(fake) - 2:
        real = ~fake
        with autocast():
            pooled, logits = _pooled_and_logits(model, x[real])
            with _frozen_statistics(model):
                _, fake_logits = _pooled_and_logits(model, x[fake])
        parts += [(logits, y[real], weights[real]), (fake_logits, y[fake], weights[fake])]
        pooled_real, labels_real = pooled, y[real]
        smooth = [smoothing[real], smoothing[fake]]
    else:
        with autocast():
            pooled, logits = _pooled_and_logits(model, x)
        parts.append((logits, y, weights))
        pooled_real, labels_real = pooled[~fake], y[~fake]
        smooth = [smoothing]
    losses, masses = [], []
    for (logits, labels, w), s in zip(parts, smooth):
        losses.append(_smoothed_ce(logits.float(), labels, s) * w)
        masses.append(w)
    if hallucination is not None and pooled_real.shape[0]:
        made = hallucination.hallucinator.hallucinate(
            pooled_real.detach().float(),
            hallucination.count,
            hallucination.strength,
            hallucination.noise,
        ).to(x.device)
        with autocast():
            logits = model.get_classifier()(made.to(pooled_real.dtype))
        labels = labels_real.repeat_interleave(hallucination.count)
        w = torch.full((len(made),), float(hallucination.weight), device=x.device)
        losses.append(F.cross_entropy(logits.float(), labels, reduction="none") * w)
        masses.append(w)
    return torch.cat(losses).sum() / torch.cat(masses).sum().clamp_min(1e-8)


def _smoothed_ce(logits: Tensor, labels: Tensor, smoothing: Tensor) -> Tensor:
    """Per-row cross-entropy (N,) with a per-row label smoothing (N,)."""
    logp = F.log_softmax(logits, dim=1)
    nll = -logp.gather(1, labels[:, None]).squeeze(1)
    return (1 - smoothing) * nll - smoothing * logp.mean(1)
