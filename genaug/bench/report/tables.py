"""The tables of a bench report: per shot count, one row per condition (accuracy, paired
differences, costs), and the targets (the best classic+generative condition per generator source
against the best classic one). Accuracies are percentages, differences percentage points."""

from __future__ import annotations

from typing import Any

from genaug.bench.report.cells import interval as _interval
from genaug.bench.report.cells import p_value as _p
from genaug.bench.report.cells import pct as _pct
from genaug.bench.report.cells import signed as _signed
from genaug.bench.report.cells import versus as _versus
from genaug.bench.report.summary import SIGNIFICANCE, TARGET_ERROR_CUT

__all__ = ["shot_tables", "targets_section"]


def _seconds(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def shot_tables(summary: dict[str, Any]) -> list[str]:
    """One ``## K shots per class`` table per shot count, and the cells it did not run."""
    unit = "episodes" if summary["config"].get("ways") else "seeds"
    lines: list[str] = []
    header = (
        f"| condition | generator data | {unit} | accuracy % | macro-F1 % | Δ vs none | "
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
    return lines


def targets_section(summary: dict[str, Any]) -> list[str]:
    """``## Targets`` (empty when the grid has no classic+generative condition to judge)."""
    lines: list[str] = []
    if summary["targets"]:
        # The real-images lines (and their column) exist only for neighbour walks on a pool.
        real = any(t.get("output", "generated") != "generated" for t in summary["targets"])
        intro = (
            "Best classic+generative condition per generator source (picked after the fact) "
            "against the best classic condition"
        )
        if real:
            intro += (
                "; conditions whose outputs are *real images* only (a whole neighbour walk "
                "with all the detail: the real unlabelled image the walk reached, under the "
                "labelled image's label; no generated pixels) get their own line"
            )
        intro += (
            f". *Beats*: mean gain > 0 with both paired tests p < {SIGNIFICANCE}. *Error cut*: "
            f"at least {TARGET_ERROR_CUT:.0%} of the best classic condition's errors removed. "
            "*Worth the real shots*: at least the accuracy of the best more-real reference."
        )
        if real:
            intro += (
                " *Δ vs real images*: a generated line against the real-images line of its "
                "source (paired, pp, t-test p): what the generated pixels add over the real "
                "images."
            )
        columns = ["shots", "generator data"] + (["output"] if real else [])
        columns += ["best classic", "best classic+generative", "Δ pp", "p (t / W)", "error cut"]
        columns += ["beats?", "error cut >= 20%?", "worth the real shots?"]
        columns += ["Δ vs real images"] if real else []
        lines += [
            "## Targets",
            "",
            intro,
            "",
            "| " + " | ".join(columns) + " |",
            "|" + " --- |" * len(columns),
        ]
        for t in summary["targets"]:
            vs = t["vs_best_classic"] or {}
            worth = (
                "-" if t["worth_more_real"] is None else ("yes" if t["worth_more_real"] else "no")
            )
            cells = [str(t["shots"]), str(t["source"])]
            cells += [t.get("output", "generated")] if real else []
            cells += [
                str(t["best_classic"]),
                str(t["best_classic_plus_generative"]),
                _signed(vs or None),
                f"{_p(vs.get('p_t'))} / {_p(vs.get('p_wilcoxon'))}",
                f"{_pct(vs.get('error_rate_reduction'), 0)}%",
                "yes" if t["beats_best_classic"] else "no",
                "yes" if t["error_cut_at_least_20pct"] else "no",
                worth,
            ]
            cells += [_versus(t.get("vs_real_images"))] if real else []
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines
