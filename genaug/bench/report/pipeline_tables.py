"""The Markdown that compares pipelines with and without a generator
(:mod:`genaug.bench.report.pipelines`): the report's opening verdict, the references without a
generator on the base-pretrained classifier, and the pipelines table."""

from __future__ import annotations

from typing import Any

from genaug.bench.report import cells

__all__ = ["pipelines_section", "references_section", "verdict_lines"]

_NAMES = {
    "classic_scratch": "best classic, from scratch",
    "generator_scratch": "best classic + generator, from scratch",
    "classic_base": "best without a generator on the base-pretrained classifier",
    "generator_base": "the same + generator (base-pretrained)",
    "more_real": "more real shots",
}


def verdict_lines(summary: dict[str, Any]) -> list[str]:
    """The report's opening: per shot count, is the best pipeline *with* a generator ahead of
    the best one *without* (any start, more-real excluded)? Empty when nothing compares them.

    This is the difference the report exists for, so it comes first, before any table.
    """
    lines = []
    for shots, outer in summary["shots"].items():
        entry = outer.get("pipelines") or {}  # compare_pipelines' output
        vs = entry.get("with_vs_without")
        if not vs:
            continue
        with_gen, without = entry["with_generator"], entry["without_generator"]
        plural = "s" if shots != "1" else ""
        if entry["winner"] == "with generator":
            verb = "is ahead of"
        elif entry["winner"] == "without generator":
            verb = "is behind"
        else:
            ahead = vs["mean_difference"] > 0
            verb = "is not significantly ahead of" if ahead else "is not ahead of"
        lines.append(
            f"- **{shots} shot{plural}:** the best pipeline with a generator ({with_gen}) {verb} "
            f"the best without one ({without}): {cells.signed(vs)} pp (paired t-test p "
            f"{cells.p_value(vs.get('p_t'))}, Wilcoxon p {cells.p_value(vs.get('p_wilcoxon'))})."
        )
    if not lines:
        return []
    return ["**With a generator against without one** (paired; details below):", "", *lines, ""]


_LEARNERS = {"finetune": "fine-tune", "probe": "linear probe", "proto": "prototypes"}


def references_section(summary: dict[str, Any]) -> list[str]:
    """``## References without a generator``: per shot count, the best fine-tune, linear probe
    and prototype condition on the base-pretrained classifier, against the strongest reference
    (empty when no shot count has one)."""
    entries = [
        (k, e["pipelines"]["references"])
        for k, e in summary["shots"].items()
        if e.get("pipelines") and e["pipelines"].get("references")
    ]
    if not entries:
        return []
    lines = [
        "## References without a generator",
        "",
        "The bar for a generator: per shot count, the best condition of each learner on the "
        "base-pretrained classifier (fine-tune; linear probe and prototypes on its frozen "
        "features), picked after the fact, with its paired Δ against the strongest pipeline "
        "without a generator (from scratch included; pp, t-test p).",
        "",
        "| shots | strongest reference | " + " | ".join(_LEARNERS.values()) + " |",
        "|" + " --- |" * (len(_LEARNERS) + 2),
    ]
    for shots, refs in entries:
        row = [shots, f"{refs['strongest']} ({_LEARNERS.get(refs['learner'], refs['learner'])})"]
        for learner in _LEARNERS:
            pick = refs["best"].get(learner)
            if pick is None:
                row.append("-")
                continue
            acc = cells.interval(pick["accuracy"], bounded=True)
            vs = pick.get("vs_strongest")
            row.append(f"{pick['arm']}: {acc}" + (f" ({cells.versus(vs)})" if vs else ""))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def pipelines_section(summary: dict[str, Any]) -> list[str]:
    """``## With and without the generator``: one table row per shot count (empty list when
    no shot count has generator or base-pretrained rows)."""
    entries = [(k, e["pipelines"]) for k, e in summary["shots"].items() if e.get("pipelines")]
    if not entries:
        return []
    lines = [
        "## With and without the generator",
        "",
        "Per shot count, the best condition of each pipeline (picked after the fact), with its "
        "paired Δ vs the best classic condition from scratch (pp, t-test p); then the best "
        "pipeline *with* a generator against the best *without* one (any start, more-real "
        "excluded), paired. *Winner*: the side ahead with both paired tests p < 0.05.",
        "",
        "| shots | " + " | ".join(_NAMES.values()) + " | with vs without | p (t / W) | winner |",
        "|" + " --- |" * (len(_NAMES) + 4),
    ]
    for shots, entry in entries:
        row = []
        for key in _NAMES:
            pick = entry["pipelines"].get(key)
            if pick is None:
                row.append("-")
                continue
            acc = cells.interval(pick["accuracy"], bounded=True)
            vs = pick.get("vs_best_classic")
            row.append(f"{pick['arm']}: {acc}" + (f" ({cells.versus(vs)})" if vs else ""))
        vs = entry.get("with_vs_without") or {}
        versus = (
            f"{entry['with_generator']} vs {entry['without_generator']}: {cells.signed(vs)}"
            if vs
            else "-"
        )
        p = f"{cells.p_value(vs.get('p_t'))} / {cells.p_value(vs.get('p_wilcoxon'))}" if vs else "-"
        lines.append(f"| {shots} | {' | '.join(row)} | {versus} | {p} | {entry['winner']} |")
    lines.append("")
    others = [(k, e) for k, e in entries if e.get("generator_scratch_vs_others")]
    if others:
        lines += [
            "The best generator condition from scratch against each other one (paired, pp):",
            "",
        ]
        for shots, entry in others:
            top = entry["pipelines"]["generator_scratch"]["arm"]
            for item in entry["generator_scratch_vs_others"]:
                lines.append(
                    f"- {shots} shot(s): {top} vs {item['arm']}: {cells.versus(item['vs'])}"
                )
        lines.append("")
    return lines
