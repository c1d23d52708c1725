"""Generator quality metrics: pure functions on feature arrays (or image tensors).

Every function takes plain arrays: ``(N, D)`` features (numpy or torch) or ``(N, C, H, W)``
images, which are flattened. Nothing here trains or loads a model; :mod:`genaug.eval.evaluate`
feeds these functions with the reference classifier's features and the generator's samples.

- :func:`frechet_distance`: the Frechet distance between two Gaussians fitted to the features
  (FID's formula, in our reference classifier's features instead of Inception's).
- :func:`precision_recall`: the k-nearest-neighbour manifold estimate of Kynkaanniemi et al.
  (2019): precision = share of generated points inside the real manifold, recall = share of real
  points inside the generated manifold.
- :func:`memorisation`: the share of samples whose nearest training image is closer than a
  threshold (by default, relative to how close real training images are to each other).
- :func:`agreement`: the share of predictions equal to the labels (conditional accuracy, CAS).

Distances are computed in float64 (in chunks, with ``torch.cdist``) so that a copy of a point is
at distance ~0 rather than at the ~1e-3 noise of float32 matrix-product distances.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from genaug.errors import GenaugError

__all__ = [
    "Memorisation",
    "PrecisionRecall",
    "agreement",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "gaussian_statistics",
    "kth_neighbour_distances",
    "memorisation",
    "nearest_neighbours",
    "precision_recall",
]

ArrayLike = Tensor | np.ndarray

# Distance entries held at once per chunk (float64: 8 bytes each -> 128 MiB).
_CHUNK_ELEMENTS = 1 << 24
# When sqrtm's result keeps an imaginary part larger than this share of its real part, the
# product of covariances was numerically singular; retry with a small diagonal offset.
_IMAGINARY_TOLERANCE = 1e-3


def _as_matrix(x: ArrayLike, name: str) -> Tensor:
    """Features (N, D) or images (N, C, H, W) -> a (N, D) tensor (not copied when possible)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise GenaugError(f"{name} must be a torch.Tensor or numpy array, not {type(x).__name__}.")
    if x.ndim == 1 or x.ndim == 0:
        raise GenaugError(
            f"{name} must hold one row per item, shaped (N, D) or (N, C, H, W); got shape "
            f"{tuple(x.shape)}."
        )
    return x.reshape(x.shape[0], -1)


def _as_numpy64(x: ArrayLike, name: str) -> np.ndarray:
    return _as_matrix(x, name).detach().to("cpu", torch.float64).numpy()


# --------------------------------------------------------------------------- Frechet distance
def gaussian_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), in float64 (unbiased covariance)."""
    x = _as_numpy64(features, "features")
    if x.shape[0] < 2:
        raise GenaugError(
            f"Gaussian statistics need at least 2 feature rows, got {x.shape[0]}; use more samples."
        )
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance_from_statistics(
    mean_a: np.ndarray,
    cov_a: np.ndarray,
    mean_b: np.ndarray,
    cov_b: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Frechet distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    ``|mean_a - mean_b|^2 + Tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))``. The matrix square root
    comes from :func:`scipy.linalg.sqrtm`. The product of two covariance matrices has real,
    non-negative eigenvalues, so any imaginary part of its square root is rounding residue: it
    is dropped when small; when it is not (or the root is not finite) the product is nearly
    singular, and ``eps`` is added to both diagonals before trying again. Tiny negative results
    of rounding are clipped to 0.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    if mean_a.shape != mean_b.shape or cov_a.shape != cov_b.shape:
        raise GenaugError(
            f"Cannot compare statistics of {mean_a.shape[0]}-d and {mean_b.shape[0]}-d features; "
            "compute both with the same feature extractor."
        )
    covmean = _sqrtm_of_product(cov_a, cov_b, strict=True)
    if covmean is None:  # nearly singular (e.g. fewer samples than dimensions): regularise
        offset = np.eye(cov_a.shape[0]) * eps
        covmean = _sqrtm_of_product(cov_a + offset, cov_b + offset, strict=False)
    if covmean is None:
        raise ArithmeticError(
            "The Frechet distance is undefined here: the covariance product has no real square "
            "root even after regularisation (are the features finite?)."
        )
    diff = mean_a - mean_b
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def _sqrtm_of_product(cov_a: np.ndarray, cov_b: np.ndarray, strict: bool) -> np.ndarray | None:
    """Real square root of cov_a @ cov_b, or None when it is not finite or clearly complex.

    ``strict`` also gives None when scipy warns that the product is singular (the root may then
    be inaccurate, and the caller regularises instead).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    singular = False
    for w in caught:
        if issubclass(w.category, scipy.linalg.LinAlgWarning):
            singular = True
        else:  # not ours to hide
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if (strict and singular) or not np.isfinite(root).all():
        return None
    if np.iscomplexobj(root):
        scale = max(float(np.abs(root.real).max(initial=0.0)), np.finfo(np.float64).tiny)
        if float(np.abs(root.imag).max(initial=0.0)) > _IMAGINARY_TOLERANCE * scale:
            return None
        root = root.real  # rounding residue: the exact root of this product is real
    return root


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D).

    0 for identical sets; grows with a shift of the mean or a change of the spread. For two
    diagonal Gaussians it is ``sum((mu_a - mu_b)^2) + sum((sigma_a - sigma_b)^2)``.
    Example: ``frechet_distance(real_features, fake_features)``.
    """
    mean_a, cov_a = gaussian_statistics(features_a)
    mean_b, cov_b = gaussian_statistics(features_b)
    return frechet_distance_from_statistics(mean_a, cov_a, mean_b, cov_b)


# ------------------------------------------------------------------ nearest-neighbour helpers
def _rows_per_chunk(columns: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return max(1, int(chunk_size))
    return max(1, _CHUNK_ELEMENTS // max(columns, 1))


def _resolve(device: str | torch.device | None, x: Tensor) -> torch.device:
    return torch.device(device) if device is not None else x.device


def nearest_neighbours(
    queries: ArrayLike,
    references: ArrayLike,
    exclude: Tensor | None = None,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[Tensor, Tensor]:
    """Distance (Q,) and index (Q,) of each query's nearest reference (Euclidean, float64).

    ``exclude`` (Q,) names, for each query, one reference index it must not match: its own
    position when the queries are drawn from the references, so that an item is never its own
    neighbour (exact duplicates elsewhere still count). Both sets are processed in chunks, so
    neither is held in float64 at once.
    """
    q, r = _as_matrix(queries, "queries"), _as_matrix(references, "references")
    _check_same_width(q, r)
    if r.shape[0] < (2 if exclude is not None else 1):
        raise GenaugError("nearest_neighbours needs at least one (other) reference item.")
    dev = _resolve(device, q)
    ref_rows = 4096
    rows = _rows_per_chunk(min(r.shape[0], ref_rows), chunk_size)
    best_d = torch.full((q.shape[0],), float("inf"), dtype=torch.float64, device=dev)
    best_i = torch.zeros(q.shape[0], dtype=torch.long, device=dev)
    skip = None if exclude is None else torch.as_tensor(exclude).reshape(-1).long().to(dev)
    for qs in range(0, q.shape[0], rows):
        qc = q[qs : qs + rows].to(dev, torch.float64)
        window = slice(qs, qs + qc.shape[0])
        for rs in range(0, r.shape[0], ref_rows):
            d = torch.cdist(qc, r[rs : rs + ref_rows].to(dev, torch.float64))  # (rows, refs)
            if skip is not None:
                own = skip[window] - rs
                hit = ((own >= 0) & (own < d.shape[1])).nonzero().squeeze(1)
                d[hit, own[hit]] = float("inf")
            value, index = d.min(dim=1)
            better = value < best_d[window]
            best_d[window] = torch.where(better, value, best_d[window])
            best_i[window] = torch.where(better, index + rs, best_i[window])
    return best_d.cpu(), best_i.cpu()


def kth_neighbour_distances(
    features: ArrayLike,
    k: int = 3,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> Tensor:
    """Distance (N,) from each row to its k-th nearest *other* row (the k-NN ball radius)."""
    x = _as_matrix(features, "features")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise GenaugError(f"k must be a positive integer, got {k!r}; the usual choice is 3.")
    if x.shape[0] <= k:
        raise GenaugError(
            f"The k-nearest-neighbour estimate needs more than k={k} items per set, got "
            f"{x.shape[0]}; use more samples or a smaller k."
        )
    dev = _resolve(device, x)
    full = x.to(dev, torch.float64)
    rows = _rows_per_chunk(x.shape[0], chunk_size)
    radii = []
    for start in range(0, x.shape[0], rows):
        d = torch.cdist(full[start : start + rows], full)  # (rows, N)
        own = torch.arange(d.shape[0], device=dev)
        d[own, own + start] = float("inf")  # not its own neighbour
        radii.append(d.kthvalue(k, dim=1).values)
    return torch.cat(radii).cpu()


def _inside_any_ball(
    queries: Tensor, centres: Tensor, radii: Tensor, chunk_size: int | None, dev: torch.device
) -> Tensor:
    """Boolean (Q,): whether each query lies within radius of at least one centre."""
    centres = centres.to(dev, torch.float64)
    radii = radii.to(dev, torch.float64)
    rows = _rows_per_chunk(centres.shape[0], chunk_size)
    inside = []
    for start in range(0, queries.shape[0], rows):
        d = torch.cdist(queries[start : start + rows].to(dev, torch.float64), centres)
        inside.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(inside).cpu()


def _check_same_width(a: Tensor, b: Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise GenaugError(
            f"Cannot compare items of {a.shape[1]} and {b.shape[1]} values each; give both sets "
            "the same feature extractor or image size."
        )


# ------------------------------------------------------------------------ precision / recall
class PrecisionRecall(NamedTuple):
    """Improved precision and recall (Kynkaanniemi et al., 2019)."""

    precision: float  # share of generated items inside the real k-NN manifold
    recall: float  # share of real items inside the generated k-NN manifold


def precision_recall(
    real_features: ArrayLike,
    fake_features: ArrayLike,
    k: int = 3,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> PrecisionRecall:
    """k-NN precision and recall of generated features against real ones.

    Each set's manifold is the union of balls around its points, each ball reaching that
    point's k-th nearest neighbour in the same set. Precision is the share of generated points
    inside the real manifold (are the samples realistic?), recall the share of real points inside
    the generated manifold (do the samples cover the data?). Both are 1 for identical sets. The
    paper compares sets of equal size; the ball radii shrink as a set grows.
    Example: ``precision_recall(real_features, fake_features, k=3).precision``.
    """
    real, fake = _as_matrix(real_features, "real_features"), _as_matrix(fake_features, "fake")
    _check_same_width(real, fake)
    dev = _resolve(device, real)
    real_radii = kth_neighbour_distances(real, k, chunk_size, dev)
    fake_radii = kth_neighbour_distances(fake, k, chunk_size, dev)
    precision = _inside_any_ball(fake, real, real_radii, chunk_size, dev).double().mean()
    recall = _inside_any_ball(real, fake, fake_radii, chunk_size, dev).double().mean()
    return PrecisionRecall(float(precision), float(recall))


# ---------------------------------------------------------------------------- memorisation
class Memorisation(NamedTuple):
    """What :func:`memorisation` finds."""

    share: float  # share of samples closer to a training item than ``threshold``
    threshold: float  # the distance below which a sample counts as a copy
    typical_distance: float  # median distance of a training item to its nearest other one
    distances: Tensor  # (S,) each sample's distance to its nearest training item
    nearest: Tensor  # (S,) the index of that training item


def memorisation(
    samples: ArrayLike,
    training: ArrayLike,
    threshold: float | None = None,
    relative_threshold: float = 0.5,
    reference_size: int = 2000,
    seed: int = 0,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> Memorisation:
    """Share of samples that sit closer to a training item than real items sit to each other.

    Works on whatever rows it is given: flattened images (pixel space) or features. Each
    sample's nearest training item is found (Euclidean). Unless ``threshold`` is given, it is
    ``relative_threshold`` x the *typical distance*: the median distance from a training item to
    its nearest other training item (estimated on at most ``reference_size`` items drawn with
    ``seed``). So an exact copy of a training item is always counted and fresh noise never is;
    a generalising generator scores about what held-out real items score.
    Example: ``memorisation(samples, train_images).share``.
    """
    s, t = _as_matrix(samples, "samples"), _as_matrix(training, "training")
    _check_same_width(s, t)
    if t.shape[0] < 2:
        raise GenaugError("The memorisation check needs at least 2 training items.")
    if not relative_threshold > 0:
        raise GenaugError(f"relative_threshold must be positive, got {relative_threshold!r}.")
    dev = _resolve(device, s)
    distances, nearest = nearest_neighbours(s, t, chunk_size=chunk_size, device=dev)
    # The typical spacing of real training items: nearest *other* training item, on a subset.
    order = torch.randperm(t.shape[0], generator=torch.Generator().manual_seed(seed))
    chosen = order[: min(reference_size, t.shape[0])]
    own_distances, _ = nearest_neighbours(
        t[chosen], t, exclude=chosen, chunk_size=chunk_size, device=dev
    )
    typical = float(own_distances.median())
    if threshold is None:
        threshold = relative_threshold * typical
    share = float((distances < threshold).double().mean()) if len(distances) else float("nan")
    return Memorisation(share, float(threshold), typical, distances, nearest)


# --------------------------------------------------------------------------------- agreement
def agreement(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Share of ``predictions`` (N,) equal to ``labels`` (N,): conditional accuracy, CAS."""
    p = torch.as_tensor(predictions).reshape(-1).cpu()
    y = torch.as_tensor(labels).reshape(-1).cpu()
    if p.shape != y.shape:
        raise GenaugError(f"Got {p.numel()} predictions for {y.numel()} labels; give one each.")
    if p.numel() == 0:
        raise GenaugError("Cannot compute an accuracy on zero items.")
    return float((p == y).double().mean())
