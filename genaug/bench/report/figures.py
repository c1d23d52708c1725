"""The benchmark's PNG plots: accuracy and paired gain per condition (one panel per shot
count), and the preview of augmented training images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genaug.data.convert import to_float_images

__all__ = ["error_extents", "plot_accuracy", "plot_gain", "save_preview"]

_KIND_COLOURS = {
    "none": "#7f7f7f",
    "classic": "#1f77b4",
    "generative": "#ff7f0e",
    "classic+generative": "#d62728",
    "more-real": "#2ca02c",
}


def _panels(summary: dict[str, Any]):
    import matplotlib.pyplot as plt

    entries = list(summary["shots"].items())
    n_rows = max((len(e["conditions"]) for _, e in entries), default=1)
    n_cols = max(len(entries), 1)
    fig, axes = plt.subplots(
        1, n_cols, figsize=(2.0 + 2.8 * n_cols, 1.0 + 0.3 * n_rows), sharey=True, squeeze=False
    )
    return fig, list(axes[0]), entries


def plot_accuracy(summary: dict[str, Any], path: str | Path) -> None:
    """Accuracy per condition with 95% interval bars, one panel per shot count."""

    fig, axes, entries = _panels(summary)
    for ax, (shots, entry) in zip(axes, entries):
        rows = entry["conditions"]
        # An accuracy lies in 0-100 %: clip its t-interval there, as the table does.
        _bars(ax, rows, lambda r: r.get("accuracy"), scale=100, bounds=(0.0, 100.0))
        ax.set_title(f"{shots}-shot", fontsize=9)
        ax.set_xlabel("test accuracy %", fontsize=8)
        if entry["best_classic"]:
            best = next(r for r in rows if r["arm"] == entry["best_classic"])
            ax.axvline(100 * best["accuracy"]["mean"], color="#1f77b4", lw=0.8, ls="--")
    _finish(fig, summary, "accuracy, mean and 95% interval", path)


def plot_gain(summary: dict[str, Any], path: str | Path) -> None:
    """Paired gain over the best classic condition (pp, 95% interval), one panel per shots."""
    fig, axes, entries = _panels(summary)
    for ax, (shots, entry) in zip(axes, entries):
        rows = entry["conditions"]
        _bars(ax, rows, lambda r: r.get("vs_best_classic"), scale=100, mean_key="mean_difference")
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_title(f"{shots}-shot, vs {entry['best_classic'] or '-'}", fontsize=9)
        ax.set_xlabel("paired gain, pp", fontsize=8)
    _finish(fig, summary, "paired gain over the best classic condition", path)


def _finish(fig, summary: dict[str, Any], what: str, path: str | Path) -> None:
    from genaug.plots import _save_figure

    fig.suptitle(_plot_title(summary, what), fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)


def _plot_title(summary: dict[str, Any], what: str) -> str:
    config = summary["config"]
    n = len(config["seeds"])
    return f"{config['data']}, {config['model']}: {what} over {n} seed{'s' * (n != 1)}"


def error_extents(
    mean: float, low: float, high: float, bounds: tuple[float, float] | None = None
) -> tuple[float, float]:
    """An error bar's (below, above) lengths from ``mean`` to the interval [low, high],
    clipped to ``bounds`` first (an accuracy's [0, 100] %: a t-interval over few seeds can
    reach past it)."""
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return max(0.0, mean - low), max(0.0, high - mean)


def _bars(
    ax,
    rows,
    stats_of,
    scale: float,
    mean_key: str = "mean",
    bounds: tuple[float, float] | None = None,
) -> None:
    """Horizontal bars (mean and interval, clipped to ``bounds``) for every row; rows without
    statistics stay empty."""
    labels = [r["arm"] for r in rows]
    means, low, high = [], [], []
    for r in rows:
        stats = stats_of(r) if r["n"] else None
        mean = scale * stats[mean_key] if stats else 0.0
        means.append(mean)
        has_interval = stats is not None and stats.get("low") is not None
        below, above = (
            error_extents(mean, scale * stats["low"], scale * stats["high"], bounds)
            if has_interval
            else (0.0, 0.0)
        )
        low.append(below)
        high.append(above)
    colours = [_KIND_COLOURS.get(r["kind"], "#7f7f7f") for r in rows]
    positions = list(range(len(rows)))[::-1]
    ax.barh(positions, means, xerr=[low, high], color=colours, capsize=2, height=0.7)
    ax.set_yticks(positions, labels, fontsize=7)
    ax.tick_params(axis="x", labelsize=7)


def save_preview(rows: list[tuple[str, torch.Tensor]], path: str | Path, title: str) -> None:
    """One row of augmented training images per condition."""
    from genaug.plots import save_image_rows

    per_row = min(r[1].shape[0] for r in rows)
    images = torch.cat([to_float_images(r[1][:per_row].cpu()) for r in rows])
    save_image_rows(images, [r[0] for r in rows], path, title=title)
