"""The benchmark's report: ``summary.json``, ``summary.md`` and PNG plots of a bench folder.

Everything here is computed from the finished runs (the ``runs.jsonl`` records), so a report can
be written for a partial grid too; it then says how many runs are missing. Accuracies are
fractions in the JSON and percentages (or percentage points, "pp") in the Markdown and plots.
The parts: :mod:`~genaug.bench.report.summary` (the statistics),
:mod:`~genaug.bench.report.markdown` (the tables) and :mod:`~genaug.bench.report.figures` (the
plots and the preview).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genaug.bench.report.figures import plot_accuracy, plot_gain, save_preview
from genaug.bench.report.markdown import format_markdown
from genaug.bench.report.summary import build_summary
from genaug.io import atomic_write_json, atomic_write_text

__all__ = ["write_report"]


def write_report(
    out: str | Path,
    config: dict[str, Any],
    arms: list[dict[str, Any]],
    records: list[dict[str, Any]],
    expected_runs: int,
    preview: list[tuple[str, torch.Tensor]] | None = None,
    command: str | None = None,
    skipped: list[dict[str, str]] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Write summary.json, summary.md, accuracy.png, gain.png (and augmented.png) into ``out``."""
    out = Path(out)
    summary = build_summary(config, arms, records, expected_runs, command, skipped)
    files = {
        "summary_json": out / "summary.json",
        "summary_md": out / "summary.md",
        "accuracy_png": out / "accuracy.png",
        "gain_png": out / "gain.png",
    }
    summary["files"] = {k: v.name for k, v in files.items()}
    if preview:
        files["augmented_png"] = out / "augmented.png"
        summary["files"]["augmented_png"] = "augmented.png"
    atomic_write_json(files["summary_json"], summary)
    atomic_write_text(files["summary_md"], format_markdown(summary))
    plot_accuracy(summary, files["accuracy_png"])
    plot_gain(summary, files["gain_png"])
    if preview:
        shots, seed = config["shots"][0], config["seeds"][0]
        save_preview(
            preview,
            files["augmented_png"],
            f"training images after augmentation ({shots}-shot, "
            f"{'episode' if config.get('ways') else 'seed'} {seed})",
        )
    return summary, {k: str(v) for k, v in files.items()}
