"""Few-shot heads on frozen features: nearest class mean (prototypes) and a linear probe.

Both work on L2-normalised features (optionally centred first on a mean feature of the base
classes, as SimpleShot does), so they compare directions. Every feature may carry a weight:
real features 1, generated ones ``w`` (a hallucinator's, or an image generator's variations).

- :func:`fit_prototypes`: per class the weighted mean of its unit features, normalised again;
  logits are cosine similarities (x ``scale``).
- :func:`fit_probe`: multinomial logistic regression (weighted cross-entropy + ``regularisation``
  x squared weight norm / 2), fit to convergence with L-BFGS in float64: deterministic, no
  learning rate to tune.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.errors import GenaugError

__all__ = ["HEADS", "LinearHead", "fit_head", "fit_probe", "fit_prototypes", "unit_features"]

HEADS = ("proto", "probe")


def unit_features(features: Tensor, center: Tensor | None = None) -> Tensor:
    """Features (N, D) minus ``center`` (D,) if given, scaled to unit length."""
    if center is not None:
        features = features - center.to(features)
    return F.normalize(features.float(), dim=1)


class LinearHead(nn.Module):
    """Logits ``scale * unit(f - center) @ weight.T + bias`` for features (N, D): what both heads
    fit (prototypes: ``weight`` the unit class means, no bias)."""

    def __init__(
        self, weight: Tensor, bias: Tensor, center: Tensor | None = None, scale: float = 1.0
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight.float())  # (K, D)
        self.register_buffer("bias", bias.float())  # (K,)
        self.register_buffer("center", None if center is None else center.float())
        self.scale = float(scale)

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    def forward(self, features: Tensor) -> Tensor:
        """Logits (N, K) of features (N, D)."""
        unit = unit_features(features.to(self.weight.device), self.center)
        return self.scale * unit @ self.weight.T + self.bias


def _check(features: Tensor, labels: Tensor, num_classes: int, weights: Tensor | None) -> Tensor:
    """Weights (N,) (ones by default), or one sentence for inputs no head can fit."""
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise GenaugError(
            f"a head fits features (N, D) with labels (N,), got {tuple(features.shape)} and "
            f"{tuple(labels.shape)}."
        )
    labels = labels.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise GenaugError(
            f"labels must lie in 0..{num_classes - 1} for {num_classes} classes, got values "
            f"from {int(labels.min())} to {int(labels.max())}; number the classes from 0."
        )
    counts = torch.bincount(labels.cpu(), minlength=num_classes)
    if bool((counts == 0).any()):
        empty = int((counts == 0).nonzero()[0])
        raise GenaugError(
            f"class {empty} has no image; give at least one image of each of the "
            f"{num_classes} classes (or lower the class count)."
        )
    if weights is None:
        return torch.ones(features.shape[0], device=features.device)
    weights = weights.to(features.device).float()
    if weights.shape != (features.shape[0],) or bool((weights < 0).any()):
        raise GenaugError("weights must be one non-negative number per feature.")
    return weights


def fit_prototypes(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weights: Tensor | None = None,
    center: Tensor | None = None,
    scale: float = 10.0,
) -> LinearHead:
    """The nearest-class-mean head (cosine) of weighted features (N, D) with labels (N,)."""
    weights = _check(features, labels, num_classes, weights)
    unit = unit_features(features, center)
    onehot = F.one_hot(labels.long().to(unit.device), num_classes).float() * weights[:, None]
    means = onehot.T @ unit  # (K, D) weighted sums
    prototypes = F.normalize(means, dim=1)
    return LinearHead(prototypes, torch.zeros(num_classes, device=unit.device), center, scale)


def fit_probe(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weights: Tensor | None = None,
    center: Tensor | None = None,
    regularisation: float = 1e-3,
    max_iter: int = 300,
) -> LinearHead:
    """Multinomial logistic regression on weighted unit features (N, D), labels (N,).

    Minimises ``sum_i w_i CE_i / sum_i w_i + regularisation / 2 * |W|^2`` (the bias is not
    penalised) with L-BFGS (strong Wolfe line search) in float64.
    """
    weights = _check(features, labels, num_classes, weights)
    if not regularisation > 0:
        raise GenaugError(f"regularisation must be positive, got {regularisation!r}.")
    x = unit_features(features, center).double()  # (N, D)
    y = labels.long().to(x.device)
    w = (weights / weights.sum()).double()
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        ce = F.cross_entropy(x @ weight.T + bias, y, reduction="none")
        loss = (w * ce).sum() + 0.5 * regularisation * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LinearHead(weight.detach().float(), bias.detach().float(), center)


def fit_head(
    head: str,
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weights: Tensor | None = None,
    center: Tensor | None = None,
    regularisation: float = 1e-3,
) -> LinearHead:
    """``fit_prototypes`` (``head="proto"``) or ``fit_probe`` (``"probe"``)."""
    if head == "proto":
        return fit_prototypes(features, labels, num_classes, weights, center)
    if head == "probe":
        return fit_probe(features, labels, num_classes, weights, center, regularisation)
    raise GenaugError(f"head must be one of {', '.join(HEADS)}, got {head!r}.")
