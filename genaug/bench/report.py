"""The benchmark's report: ``summary.json``, ``summary.md`` and PNG plots of a bench folder.

Everything here is computed from the finished runs (the ``runs.jsonl`` records), so a report can
be written for a partial grid too; it then says how many runs are missing. Accuracies are
fractions in the JSON and percentages (or percentage points, "pp") in the Markdown and plots.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from genaug.bench.stats import error_rate_reduction, paired_comparison, summarize
from genaug.data.convert import to_float_images
from genaug.io import atomic_write_json, atomic_write_text

__all__ = ["build_summary", "format_markdown", "write_report"]

SUMMARY_FORMAT_VERSION = 1
SIGNIFICANCE = 0.05
TARGET_ERROR_CUT = 0.20
_KIND_COLOURS = {
    "none": "#7f7f7f",
    "classic": "#1f77b4",
    "generative": "#ff7f0e",
    "classic+generative": "#d62728",
    "more-real": "#2ca02c",
}


# ---------------------------------------------------------------------------- summary
def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _paired(a: dict[int, float], b: dict[int, float]) -> dict[str, Any] | None:
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    xa, xb = [a[s] for s in seeds], [b[s] for s in seeds]
    result = paired_comparison(xa, xb).to_dict()
    cut = error_rate_reduction(sum(xa) / len(xa), sum(xb) / len(xb))
    result["error_rate_reduction"] = None if math.isnan(cut) else cut
    return result


def build_summary(
    config: dict[str, Any],
    arms: list[dict[str, Any]],
    records: list[dict[str, Any]],
    expected_runs: int,
    command: str | None = None,
    skipped: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Statistics per shot count and arm, paired comparisons and the issue's targets.

    ``arms`` lists ``{"arm", "condition", "source"}`` in display order; ``records`` are the
    finished runs (``runs.jsonl`` lines) of the grid.
    """
    by_cell: dict[tuple[int, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for record in records:
        by_cell[(record["shots"], record["arm"])][record["seed"]] = record
    summary: dict[str, Any] = {
        "format_version": SUMMARY_FORMAT_VERSION,
        "command": command,
        "config": config,
        "runs_expected": expected_runs,
        "runs_found": len(records),
        "complete": len(records) >= expected_runs,
        "skipped": list(skipped or []),
        "shots": {},
        "targets": [],
    }
    for shots in config["shots"]:
        rows = []
        for arm in arms:
            cell = by_cell.get((shots, arm["arm"]), {})
            first = next(iter(cell.values())) if cell else None
            kind = first["kind"] if first else None
            row: dict[str, Any] = {**arm, "kind": kind, "seeds": sorted(cell), "n": len(cell)}
            row["real_images_only"] = bool(first and _real_images_only(first.get("generative")))
            if cell:
                acc = {s: r["accuracy"] for s, r in cell.items()}
                row["accuracy"] = summarize(list(acc.values())).to_dict()
                row["macro_f1"] = summarize([r["macro_f1"] for r in cell.values()]).to_dict()
                row["augment_ms_per_step"] = _mean(
                    [r["augment_ms_per_step"] for r in cell.values()]
                )
                row["train_seconds"] = _mean([r["train_seconds"] for r in cell.values()])
                row["train_images"] = _mean([r["train_images"] for r in cell.values()])
                generators = [r["generator"] for r in cell.values() if r.get("generator")]
                row["generator_seconds"] = _mean([g.get("train_seconds") for g in generators])
                row["_acc"] = acc
            rows.append(row)
        measured = [r for r in rows if r["n"]]
        classic = [r for r in measured if r["kind"] == "classic"]
        best = max(classic, key=lambda r: r["accuracy"]["mean"]) if classic else None
        none = next((r for r in measured if r["kind"] == "none"), None)
        more = [r for r in measured if r["kind"] == "more-real"]
        best_more = max(more, key=lambda r: r["accuracy"]["mean"]) if more else None
        for row in measured:
            row["vs_none"] = (
                _paired(row["_acc"], none["_acc"]) if none and row is not none else None
            )
            row["vs_best_classic"] = (
                _paired(row["_acc"], best["_acc"]) if best and row is not best else None
            )
            row["vs_more_real"] = (
                _paired(row["_acc"], best_more["_acc"])
                if best_more and row["kind"] in ("generative", "classic+generative")
                else None
            )
        summary["shots"][str(shots)] = {
            "best_classic": best["arm"] if best else None,
            "best_more_real": best_more["arm"] if best_more else None,
            "conditions": rows,
        }
        summary["targets"] += _targets(shots, measured, best, best_more)
    for entry in summary["shots"].values():
        for row in entry["conditions"]:
            row.pop("_acc", None)
    return summary


def _real_images_only(generative: dict[str, Any] | None) -> bool:
    """Whether a generative step outputs real images only: a whole neighbour walk
    (strength 1) with all the detail lands exactly on the real bank image it reached."""
    if not generative or generative.get("mode") != "neighbour":
        return False
    whole = generative.get("walk") == "whole" and generative.get("strength") == 1.0
    whole = whole and not generative.get("jitter")  # a jittered walk decodes a new latent
    return whole and generative.get("detail") == 1.0


def _targets(
    shots: int,
    rows: list[dict[str, Any]],
    best: dict[str, Any] | None,
    best_more: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Per generator source: does its best classic+generative arm beat the best classic one?

    Arms whose outputs are real images only (:func:`_real_images_only`) compete separately
    from those that output generated pixels, so each kind gets its own line; a generated line
    is also compared, paired, with the best real-images-only arm of its source, which says
    what the generated pixels add over the real images a walk reaches.
    """
    if best is None:
        return []
    out = []
    sources = sorted({r["source"] for r in rows if r["kind"] == "classic+generative"})
    groups = [
        (source, real)
        for source in sources
        for real in (False, True)
        if any(
            r["kind"] == "classic+generative"
            and r["source"] == source
            and r["real_images_only"] == real
            for r in rows
        )
    ]
    tops = {}
    for source, real in groups:
        candidates = [
            r
            for r in rows
            if r["kind"] == "classic+generative"
            and r["source"] == source
            and r["real_images_only"] == real
        ]
        tops[source, real] = max(candidates, key=lambda r: r["accuracy"]["mean"])
    for source, real in groups:
        top = tops[source, real]
        vs = _paired(top["_acc"], best["_acc"])
        reference = None if real else tops.get((source, True))
        significant = bool(
            vs
            and vs["mean_difference"] > 0
            and vs["p_t"] is not None
            and vs["p_t"] < SIGNIFICANCE
            and vs["p_wilcoxon"] is not None
            and vs["p_wilcoxon"] < SIGNIFICANCE
        )
        cut = vs["error_rate_reduction"] if vs else None
        worth = None
        if best_more is not None:
            worth = top["accuracy"]["mean"] >= best_more["accuracy"]["mean"]
        out.append(
            {
                "shots": shots,
                "source": source,
                "output": "real images" if real else "generated",
                "best_classic": best["arm"],
                "best_classic_plus_generative": top["arm"],
                "vs_best_classic": vs,
                "beats_best_classic": significant,
                "error_cut_at_least_20pct": bool(cut is not None and cut >= TARGET_ERROR_CUT),
                "worth_more_real": worth,
                "more_real": best_more["arm"] if best_more else None,
                "real_images_reference": reference["arm"] if reference else None,
                "vs_real_images": _paired(top["_acc"], reference["_acc"]) if reference else None,
            }
        )
    return out


# ---------------------------------------------------------------------------- markdown
def _pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"


def _interval(stats: dict[str, Any] | None, bounded: bool = False) -> str:
    """``mean [low, high]`` in %; ``bounded``: an accuracy, so the interval is clipped to
    [0, 100] (a t-interval over few seeds can reach past it)."""
    if not stats:
        return "-"
    mean = _pct(stats.get("mean", stats.get("mean_difference")))
    if stats.get("low") is None:
        return mean
    low, high = stats["low"], stats["high"]
    if bounded:
        low, high = max(0.0, low), min(1.0, high)
    return f"{mean} [{_pct(low)}, {_pct(high)}]"


def _signed(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "-"
    text = _interval(stats)
    return text if text.startswith("-") else "+" + text


def _versus(stats: dict[str, Any] | None) -> str:
    """A paired difference with its t-test p, or ``-``."""
    return "-" if not stats else f"{_signed(stats)}, p {_p(stats.get('p_t'))}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _seconds(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_markdown(summary: dict[str, Any]) -> str:
    """The report as Markdown: settings, one table per shot count, the targets."""
    config = summary["config"]
    seeds = config["seeds"]
    lines = [f"# genaug bench: {config['data']}, timm {config['model']}", ""]
    if summary.get("command"):
        lines += ["Command:", "", f"    {summary['command']}", ""]
    if not summary["complete"]:
        lines += [
            f"**Partial results: {summary['runs_found']} of {summary['runs_expected']} runs "
            "finished.** Statistics below use the seeds each cell has.",
            "",
        ]
    lines += [
        f"- {len(seeds)} seeds ({', '.join(map(str, seeds))}); each seed draws its own k-shot "
        "subset, classifier initialisation and generator; all conditions of a seed share the "
        "subset, the initial weights and the batch order (paired design).",
        f"- Classifier: timm `{config['model']}` "
        f"({'weights from ' + config['pretrained_file'] if config['pretrained_file'] else 'from scratch'}), "
        f"{config['image_size']} px, {config['steps']} steps of batch {config['batch_size']}, "
        f"AdamW (lr {config['lr']}, weight decay {config['weight_decay']}) with a one-cycle "
        "schedule, the same for every condition.",
        f"- Test set: a fixed real {config['test_fraction']:.0%} of every class "
        f"(test seed {config['test_seed']}), the same for every seed and condition.",
        "- Generator data: `labeled` = the k-shot images with their labels only; `pool` = every "
        "training image with its label hidden (the semi-supervised setting: the pool's labels "
        "are never used); `checkpoint` = a given generator.",
        "- Accuracy: mean over seeds [95% t-interval, clipped to 0-100], in %. Δ: paired mean difference in "
        "percentage points [95% interval]; p: two-sided paired t-test / Wilcoxon signed-rank. "
        "The best classic condition is chosen per shot count after the fact (the strongest "
        "baseline, so the comparison is never against a weak one). Error cut: the share of the "
        "best classic condition's errors removed.",
        "- Cost: augmentation ms per step and classifier training seconds per run (mean); "
        "generator s: the one-off training of the generator a run used (mean per generator).",
        "",
    ]
    for item in summary.get("skipped") or []:
        lines += [f"- Not run: {item['arm']} ({item['reason']})"]
    if summary.get("skipped"):
        lines.append("")
    header = (
        "| condition | generator data | seeds | accuracy % | macro-F1 % | Δ vs none | "
        "Δ vs best classic | p (t / W) | error cut | aug ms/step | train s | generator s |"
    )
    for shots, entry in summary["shots"].items():
        best = entry["best_classic"] or "none measured"
        lines += [f"## {shots} shot{'s' if shots != '1' else ''} per class (best classic: {best})"]
        lines += ["", header, "|" + " --- |" * 12]
        not_run: dict[str, list[str]] = {}  # generator data -> conditions, for a short line
        for row in entry["conditions"]:
            if not row["n"]:
                not_run.setdefault(row["source"] or "", []).append(row["condition"])
        for row in entry["conditions"]:
            if not row["n"]:  # listed under the table instead
                continue
            vs = row.get("vs_best_classic")
            p = f"{_p(vs['p_t'])} / {_p(vs['p_wilcoxon'])}" if vs else "-"
            cut = _pct(vs.get("error_rate_reduction"), 0) + "%" if vs else "-"
            name = (
                f"**{row['condition']}**"
                if row["arm"] == entry["best_classic"]
                else row["condition"]
            )
            if row.get("real_images_only"):
                name += " (real images only)"
            lines.append(
                f"| {name} | {row['source'] or '-'} | {row['n']} | {_interval(row['accuracy'], bounded=True)} "
                f"| {_pct(row['macro_f1']['mean'])} | {_signed(row.get('vs_none'))} "
                f"| {_signed(vs)} | {p} | {cut} | {_seconds(row['augment_ms_per_step'])} "
                f"| {_seconds(row['train_seconds'])} | {_seconds(row['generator_seconds'], 0)} |"
            )
        lines.append("")
        if not_run:
            groups = [
                f"{f'generator data {source}' if source else 'no generator'}: "
                f"{', '.join(conditions)}"
                for source, conditions in not_run.items()
            ]
            lines += [f"Not run at this shot count - {'; '.join(groups)}.", ""]
    if summary["targets"]:
        lines += [
            "## Targets",
            "",
            "Best classic+generative condition per generator source (picked after the fact) "
            "against the best classic condition; conditions whose outputs are *real images* "
            "only (a whole neighbour walk with all the detail: the real unlabelled image the "
            "walk reached, under the labelled image's label; no generated pixels) get their "
            "own line. *Beats*: mean gain > 0 with both paired tests "
            f"p < {SIGNIFICANCE}. *Error cut*: at least {TARGET_ERROR_CUT:.0%} of the best "
            "classic condition's errors removed. *Worth the real shots*: at least the accuracy "
            "of the best more-real reference. *Δ vs real images*: a generated line against the "
            "real-images line of its source (paired, pp, t-test p): what the generated pixels "
            "add over the real images.",
            "",
            "| shots | generator data | output | best classic | best classic+generative | Δ pp | "
            "p (t / W) | error cut | beats? | error cut >= 20%? | worth the real shots? | "
            "Δ vs real images |",
            "|" + " --- |" * 12,
        ]
        for t in summary["targets"]:
            vs = t["vs_best_classic"] or {}
            worth = (
                "-" if t["worth_more_real"] is None else ("yes" if t["worth_more_real"] else "no")
            )
            lines.append(
                f"| {t['shots']} | {t['source']} | {t.get('output', 'generated')} | "
                f"{t['best_classic']} | "
                f"{t['best_classic_plus_generative']} | {_signed(vs or None)} | "
                f"{_p(vs.get('p_t'))} / {_p(vs.get('p_wilcoxon'))} | "
                f"{_pct(vs.get('error_rate_reduction'), 0)}% | "
                f"{'yes' if t['beats_best_classic'] else 'no'} | "
                f"{'yes' if t['error_cut_at_least_20pct'] else 'no'} | {worth} | "
                f"{_versus(t.get('vs_real_images'))} |"
            )
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- plots
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


# ---------------------------------------------------------------------------- writing
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
            f"training images after augmentation ({shots}-shot, seed {seed})",
        )
    return summary, {k: str(v) for k, v in files.items()}
