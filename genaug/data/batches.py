"""Batch order: which dataset positions each training step sees."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["batch_indices"]


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> Tensor:
    """Indices of the batch at ``step``: consecutive slices of per-epoch permutations.

    The order depends only on (seed, step), so a resumed run sees exactly the batches an
    uninterrupted one would, with no sampler state to save. Works when n < batch_size too.
    """
    start = step * batch_size
    parts, position = [], start
    while position < start + batch_size:
        epoch, offset = divmod(position, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        take = min(n - offset, start + batch_size - position)
        parts.append(order[offset : offset + take])
        position += take
    return torch.cat(parts)
