"""PNG figures: per-class sample grids and loss curves (matplotlib, headless)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from genaug.io import atomic_write_bytes  # noqa: E402


def _save_figure(fig: plt.Figure, path: str | os.PathLike) -> None:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def save_image_rows(
    images: Tensor, row_names: list[str], path: str | os.PathLike, title: str = ""
) -> None:
    """Save images (R * K, C, H, W) in [0, 1] as a grid of R labelled rows of K images."""
    rows = max(len(row_names), 1)
    per_row = images.shape[0] // rows
    grid = make_grid(images.float().cpu().clamp(0, 1), nrow=per_row, padding=2, pad_value=1.0)
    height = grid.shape[1] / (images.shape[-2] + 2)
    fig, ax = plt.subplots(figsize=(max(per_row * 0.6, 3), max(height * 0.6, 2)))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray" if images.shape[1] == 1 else None)
    step = images.shape[-2] + 2
    ax.set_yticks([step * (i + 0.5) for i in range(len(row_names))], row_names)
    ax.set_xticks([])
    if title:
        ax.set_title(title)
    _save_figure(fig, path)


@torch.no_grad()
def save_class_grid(
    model, path: str | os.PathLike, per_class: int = 8, seed: int = 0, title: str = ""
) -> None:
    """Save a PNG with one row of samples per class (8 rows of samples when unconditional)."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    if model.conditional:
        labels = torch.arange(model.num_classes, device=model.device).repeat_interleave(per_class)
        names = list(model.class_names)
    else:
        labels, names = None, [""] * 8
    n = len(names) * per_class
    z = torch.randn(n, model.latent_dim, generator=generator, device=model.device)
    images = model.decode(z, labels)
    save_image_rows(images, names, path, title)


@torch.no_grad()
def save_variation_grid(
    model,
    exemplars: Tensor,
    path: str | os.PathLike,
    per_row: int = 8,
    seed: int = 0,
    title: str = "",
) -> None:
    """Save a PNG with one row per exemplar (R, C, H, W): the exemplar, then its variations."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    exemplars = exemplars.to(model.device).float()
    repeated = exemplars.repeat_interleave(per_row - 1, dim=0)  # (R * (K - 1), C, H, W)
    varied = model.vary(repeated, generator=generator)
    varied = varied.view(len(exemplars), per_row - 1, *exemplars.shape[1:])
    rows = torch.cat([exemplars[:, None], varied], dim=1).flatten(0, 1)  # (R * K, C, H, W)
    save_image_rows(rows, [f"x{i}" for i in range(len(exemplars))], path, title)


def save_loss_curve(stats_path: str | os.PathLike, path: str | os.PathLike) -> None:
    """Plot every loss in a stats.jsonl against the step (one panel per loss)."""
    records = [json.loads(line) for line in Path(stats_path).read_text().splitlines() if line]
    skip = {"step", "time", "lr", "images_per_second"}
    keys = [k for k in (records[0] if records else {}) if k not in skip]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3))
    axes = axes if hasattr(axes, "__len__") else [axes]
    steps = [r["step"] for r in records]
    for ax, key in zip(axes, keys):
        ax.plot(steps, [r[key] for r in records])
        ax.set_title(key)
        ax.set_xlabel("step")
    _save_figure(fig, path)
