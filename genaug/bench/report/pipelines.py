"""Pipelines with and without a generator, from scratch and on the base-pretrained classifier.

The question of a transfer benchmark (issue 13): does the generator add something that the base
classes do not already give through a classifier pretrained on them? Per shot count this picks,
after the fact, the best of four pipelines - classic from scratch, classic + generator from
scratch, classic on the base classifier (``base:`` conditions), the same + generator - and
compares the best pipeline *with* a generator against the best one *without*, paired per seed
(episode). It also compares the best generator condition from scratch with every other one
(e.g. the transfer generator against the plain unconditional VAE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["GENERATIVE_KINDS", "PLAIN_KINDS", "compare_pipelines"]

GENERATIVE_KINDS = ("generative", "classic+generative")
PLAIN_KINDS = ("none", "classic")

Paired = Callable[[dict[int, float], dict[int, float]], Any]  # -> a paired comparison or None


def _start(row: dict[str, Any]) -> str:
    return row.get("start") or "scratch"


def _best(rows: list[dict[str, Any]], kinds: tuple[str, ...], start: str | None) -> Any:
    candidates = [r for r in rows if r["kind"] in kinds and (start is None or _start(r) == start)]
    return max(candidates, key=lambda r: r["accuracy"]["mean"]) if candidates else None


def _significant(vs: dict[str, Any] | None, significance: float) -> bool:
    return bool(
        vs
        and vs["p_t"] is not None
        and vs["p_t"] < significance
        and vs["p_wilcoxon"] is not None
        and vs["p_wilcoxon"] < significance
    )


def _learner(row: dict[str, Any]) -> str:
    return row.get("learner") or "finetune"


def _references(
    rows: list[dict[str, Any]], strongest: dict[str, Any] | None, paired: Paired
) -> dict[str, Any] | None:
    """The references without a generator on the base classifier, per learner (fine-tune,
    probe, prototypes): each learner's best condition, paired against the strongest reference
    of all (None when no base: row runs without a generator)."""
    plain = [r for r in rows if r["kind"] in PLAIN_KINDS and _start(r) == "base"]
    if not plain or strongest is None:
        return None
    best: dict[str, Any] = {}
    for learner in ("finetune", "probe", "proto"):
        candidates = [r for r in plain if _learner(r) == learner]
        if not candidates:
            continue
        top = max(candidates, key=lambda r: r["accuracy"]["mean"])
        best[learner] = {
            "arm": top["arm"],
            "accuracy": top["accuracy"],
            "vs_strongest": None if top is strongest else paired(top["_acc"], strongest["_acc"]),
        }
    return {"strongest": strongest["arm"], "learner": _learner(strongest), "best": best}


def compare_pipelines(
    rows: list[dict[str, Any]], paired: Paired, significance: float = 0.05
) -> dict[str, Any] | None:
    """The four pipelines, the more-real reference and the with/without-generator comparison.

    ``rows`` are a shot count's measured summary rows (with per-seed accuracies in ``_acc``);
    ``paired(a, b)`` the paired comparison of two of them. None when no row has a generator
    or starts from the base classifier (nothing to compare).
    """
    if not any(r["kind"] in GENERATIVE_KINDS or _start(r) == "base" for r in rows):
        return None
    best_classic = _best(rows, ("classic",), "scratch")
    picks = {
        "classic_scratch": best_classic,
        "generator_scratch": _best(rows, GENERATIVE_KINDS, "scratch"),
        "classic_base": _best(rows, PLAIN_KINDS, "base"),
        "generator_base": _best(rows, GENERATIVE_KINDS, "base"),
        "more_real": _best(rows, ("more-real",), None),
    }
    out: dict[str, Any] = {"pipelines": {}}
    for name, row in picks.items():
        if row is None:
            out["pipelines"][name] = None
            continue
        vs = paired(row["_acc"], best_classic["_acc"]) if best_classic else None
        out["pipelines"][name] = {
            "arm": row["arm"],
            "accuracy": row["accuracy"],
            "vs_best_classic": None if row is best_classic else vs,
        }
    with_gen = _best(rows, GENERATIVE_KINDS, None)
    without = _best(rows, PLAIN_KINDS, None)
    vs = paired(with_gen["_acc"], without["_acc"]) if with_gen and without else None
    if vs is None:
        verdict = "not measured"
    elif _significant(vs, significance):
        verdict = "with generator" if vs["mean_difference"] > 0 else "without generator"
    else:
        verdict = "no significant difference"
    out["references"] = _references(rows, without, paired)
    out["with_generator"] = with_gen["arm"] if with_gen else None
    out["without_generator"] = without["arm"] if without else None
    out["with_vs_without"] = vs
    out["winner"] = verdict
    top = picks["generator_scratch"]
    out["generator_scratch_vs_others"] = [
        {"arm": r["arm"], "vs": paired(top["_acc"], r["_acc"])}
        for r in rows
        if top is not None
        and r is not top
        and r["kind"] in GENERATIVE_KINDS
        and _start(r) == "scratch"
    ]
    return out
