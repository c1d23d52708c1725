"""The benchmark's ``summary.md``: settings, one table per shot count, the targets.

Accuracies are percentages and differences percentage points ("pp"), from the summary of
:func:`~genaug.bench.summary.build_summary`.
"""

from __future__ import annotations

from typing import Any

from genaug.bench.cells import interval as _interval
from genaug.bench.cells import p_value as _p
from genaug.bench.cells import pct as _pct
from genaug.bench.cells import signed as _signed
from genaug.bench.cells import versus as _versus
from genaug.bench.summary import SIGNIFICANCE, TARGET_ERROR_CUT
from genaug.bench.transfer_markdown import (
    episode_bullet,
    pipelines_section,
    references_section,
    test_bullet,
    verdict_lines,
)

__all__ = ["format_markdown"]


def _seconds(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


_SOURCES = {
    "labeled": "`labeled` = the k-shot images with their labels only",
    "pool": "`pool` = every training image with its label hidden (the semi-supervised setting: "
    "the pool's labels are never used)",
    "checkpoint": "`checkpoint` = a generator trained beforehand, given by its folder",
}


def _sources_bullet(config: dict[str, Any]) -> str:
    """What each generator source of this bench means (only the sources it names)."""
    named = [str(s).split(":", 1)[0] for s in config.get("generator_data") or []]
    parts = [_SOURCES[s] for s in _SOURCES if s in named]
    return f"- Generator data: {'; '.join(parts)}." if parts else "- No generator data."


def format_markdown(summary: dict[str, Any]) -> str:
    """The report as Markdown: settings, one table per shot count, the targets."""
    config = summary["config"]
    seeds = config["seeds"]
    unit = "episodes" if config.get("ways") else "seeds"  # the episodic protocol's seeds
    lines = [f"# genaug bench: {config['data']}, timm {config['model']}", ""]
    lines += verdict_lines(summary)
    if summary.get("command"):
        lines += ["Command:", "", f"    {summary['command']}", ""]
    if not summary["complete"]:
        lines += [
            f"**Partial results: {summary['runs_found']} of {summary['runs_expected']} runs "
            f"finished.** Statistics below use the {unit} each cell has.",
            "",
        ]
    lines += [
        episode_bullet(config)
        if config.get("ways")
        else f"- {len(seeds)} seeds ({', '.join(map(str, seeds))}); each seed draws its own "
        "k-shot subset, classifier initialisation and generator; all conditions of a seed share "
        "the subset, the initial weights and the batch order (paired design).",
        f"- Classifier: timm `{config['model']}` "
        f"({'weights from ' + config['pretrained_file'] if config['pretrained_file'] else 'from scratch'}), "
        f"{config['image_size']} px, {config['steps']} steps of batch {config['batch_size']}, "
        f"AdamW (lr {config['lr']}, weight decay {config['weight_decay']}) with a one-cycle "
        "schedule, the same for every condition.",
        test_bullet(config)
        if config.get("ways")
        else f"- Test set: a fixed real {config['test_fraction']:.0%} of every class "
        f"(test seed {config['test_seed']}), the same for every seed and condition.",
        _sources_bullet(config),
        f"- Accuracy: mean over {unit} [95% t-interval, clipped to 0-100], in %. Δ: paired mean difference in "
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
    lines += references_section(summary)
    lines += pipelines_section(summary)
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
    return "\n".join(lines)
