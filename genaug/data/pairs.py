"""Pair order: for families trained on pairs, which two images of one class each step sees.

An image-conditioned generator (DAGAN) learns "another drawing of the same thing" from pairs
``(x_i, x_j)``: two *different* images of the *same* class. Pairs never cross classes. Anchors
run through per-epoch permutations of the images whose class holds at least two (like
:func:`~genaug.data.batches.batch_indices`); each anchor's partner is drawn uniformly among the
other images of its class. Both depend only on (seed, step), so a resumed run sees the same pairs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genaug.data.batches import batch_indices
from genaug.errors import GenaugError

__all__ = ["check_pairable", "pair_indices", "pairable"]


def pairable(targets: Tensor) -> Tensor:
    """Boolean mask (N,) of the images whose class holds at least two images (hidden -1: no)."""
    targets = torch.as_tensor(targets).long().cpu().reshape(-1)
    mask = targets >= 0
    if not bool(mask.any()):
        return mask
    counts = torch.bincount(targets[mask])  # (K,) images per class
    mask[mask.clone()] = counts[targets[mask]] >= 2
    return mask


def check_pairable(targets: Tensor, has_labels: bool = True, what: str = "This generator") -> None:
    """Raise a one-sentence error unless some class holds two labelled images to pair."""
    targets = torch.as_tensor(targets).long().reshape(-1)
    if not has_labels or (targets.numel() and bool((targets < 0).any())):
        raise GenaugError(
            f"{what} trains on pairs of images of the same class, so it needs labelled data; "
            "give a dataset with labels (one folder per class) and drop --unlabeled."
        )
    if not bool(pairable(targets).any()):
        raise GenaugError(
            f"{what} trains on pairs of different images of the same class, but no class of the "
            "dataset holds two images; give at least two images of some class."
        )


def pair_indices(step: int, batch_size: int, targets: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """Indices ``(first, second)`` (each (batch_size,), int64) of the pairs at ``step``.

    ``targets[first] == targets[second]`` and ``first != second`` always: anchors are only drawn
    from classes holding at least two images (others are skipped), partners uniformly among the
    anchor's classmates. Raises :class:`GenaugError` (via :func:`check_pairable`) when no class can
    be paired. ``targets`` (N,) are class indices, -1 for hidden.
    """
    targets = torch.as_tensor(targets).long().cpu().reshape(-1)
    check_pairable(targets)
    eligible = pairable(targets).nonzero().squeeze(1)  # (M,) positions of pairable images
    first = eligible[batch_indices(step, batch_size, len(eligible), seed)]  # (B,)

    # Images grouped by class: class c occupies order[starts[c] : starts[c] + counts[c]].
    counts = torch.bincount(targets[targets >= 0])  # (K,)
    order = torch.argsort(targets, stable=True)  # (N,); hidden (-1) first, then class 0, ...
    starts = torch.cumsum(counts, 0) - counts + int((targets < 0).sum())  # (K,)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))  # position of each image in ``order``

    classes = targets[first]  # (B,)
    size = counts[classes]  # (B,) >= 2
    own = rank[first] - starts[classes]  # (B,) the anchor's place within its class
    noise = torch.Generator().manual_seed(seed * 1_000_033 + step + 7_777_777)
    draw = (torch.rand(len(first), generator=noise, dtype=torch.float64) * (size - 1)).long()
    draw = torch.minimum(draw, size - 2)  # guard the float edge; draws lie in [0, size - 2]
    draw = draw + (draw >= own).long()  # skip the anchor itself: uniform over the others
    second = order[starts[classes] + draw]
    return first, second
