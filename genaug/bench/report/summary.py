"""The benchmark's summary: statistics per shot count and arm, paired comparisons against
``none``, the best classic condition and the more-real reference, and the issue's targets.

Everything is computed from the finished runs (the ``runs.jsonl`` records), so a summary can be
built for a partial grid too. Accuracies are fractions here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from genaug.bench.report.pipelines import compare_pipelines
from genaug.bench.report.statistics import error_rate_reduction, paired_comparison, summarize
from genaug.train.stats import checkpoint_training_facts

__all__ = ["SIGNIFICANCE", "TARGET_ERROR_CUT", "build_summary"]

SUMMARY_FORMAT_VERSION = 1
SIGNIFICANCE = 0.05
TARGET_ERROR_CUT = 0.20


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
            if first and first.get("learner"):  # base:proto, base:probe, a gentler fine-tune
                row["learner"] = first["learner"]["name"]
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
                row["generator_seconds"] = _mean([_generator_seconds(g) for g in generators])
                row["_acc"] = acc
            rows.append(row)
        measured = [r for r in rows if r["n"]]
        # The baselines train from scratch; base: rows (a base-pretrained classifier) are
        # compared in their own section (:mod:`~genaug.bench.report.pipelines`).
        scratch = [r for r in measured if r.get("start", "scratch") == "scratch"]
        classic = [r for r in scratch if r["kind"] == "classic"]
        best = max(classic, key=lambda r: r["accuracy"]["mean"]) if classic else None
        none = next((r for r in scratch if r["kind"] == "none"), None)
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
        summary["targets"] += _targets(shots, scratch, best, best_more)
        transfer = config.get("ways") or len(scratch) < len(measured)  # episodic or base:
        pipelines = compare_pipelines(measured, _paired) if transfer else None
        if pipelines:
            summary["shots"][str(shots)]["pipelines"] = pipelines
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


def _generator_seconds(info: dict[str, Any]) -> float | None:
    """A run's generator training time: recorded by the bench when it trained the generator,
    else read from a given checkpoint's run folder (its stats.jsonl), when it is still there."""
    if info.get("train_seconds") is not None or not info.get("checkpoint"):
        return info.get("train_seconds")
    return checkpoint_training_facts(info["checkpoint"])["train_seconds"]
