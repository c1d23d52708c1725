"""The evaluation's figures: a per-class sample grid and the closest (sample, nearest training
image) pairs, which show what the memorisation numbers count."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from genaug.eval.metrics import Memorisation
from genaug.models.base import Generator

__all__ = ["NEAREST_PAIRS", "save_evaluation_figures"]

#: How many closest (sample, training image) pairs the nearest-neighbour figure shows.
NEAREST_PAIRS = 8


def save_evaluation_figures(
    model: Generator,
    samples: Tensor,
    train_images: Tensor,
    memo: Memorisation,
    out: Path,
    stem: str,
    seed: int,
) -> dict[str, str]:
    """Write ``<stem>.samples.png`` (one row per class) and ``<stem>.nearest.png`` (the closest
    samples above their nearest training images) into ``out``; returns their paths by kind."""
    from genaug.plots import save_class_grid, save_image_rows

    grid = out / f"{stem}.samples.png"
    was_training = model.training
    model.eval()
    try:
        save_class_grid(model, grid, seed=seed, title=f"{model.family} samples, one row per class")
    finally:
        model.train(was_training)
    order = memo.distances.argsort()[:NEAREST_PAIRS]  # the closest pairs first
    pairs = torch.cat([samples[order], train_images[memo.nearest[order]]])  # (2P, C, H, W)
    distances = ", ".join(f"{float(d):.2f}" for d in memo.distances[order])
    nearest = out / f"{stem}.nearest.png"
    save_image_rows(
        pairs,
        ["sample", "nearest train"],
        nearest,
        title=(
            f"closest samples to training images\npixel L2: {distances}\n"
            f"(a copy is closer than {memo.threshold:.2f})"
        ),
    )
    return {"samples": str(grid), "nearest": str(nearest)}
