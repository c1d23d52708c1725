"""Sampling a generator by index: sample ``i`` is the same image however indices are batched,
sharded or ordered (what synthetic datasets, ``genaug sample`` and the metrics rely on)."""

from __future__ import annotations

import torch
from torch import Tensor

from genaug.models.base import Generator

__all__ = ["labels_for_indices", "latents_for_indices", "sample_indices"]


def latents_for_indices(indices: Tensor, seed: int, latent_dim: int) -> Tensor:
    """One latent (latent_dim,) per sample index, from a generator seeded by (seed, index).

    Sample ``i`` is the same image however the indices are batched, sharded or ordered.
    """
    rows = [
        torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + int(i)))
        for i in indices.tolist()
    ]
    return torch.stack(rows) if rows else torch.empty(0, latent_dim)


def labels_for_indices(indices: Tensor, num_classes: int) -> Tensor | None:
    """Balanced classes by index (index i has class i % num_classes), None when unconditional."""
    return indices.long() % num_classes if num_classes else None


@torch.no_grad()
def sample_indices(model: Generator, indices: Tensor, seed: int) -> tuple[Tensor, Tensor | None]:
    """Images (B, C, H, W) in [0, 1] on the CPU and their labels for the given sample indices."""
    z = latents_for_indices(indices, seed, model.latent_dim).to(model.device)
    labels = labels_for_indices(indices, model.num_classes)
    images = model.decode(z, None if labels is None else labels.to(model.device))
    return images.float().cpu(), labels
