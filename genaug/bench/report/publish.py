"""Publishing a bench: its report copied out of the bench folder as ``NAME.md``, ``NAME.json``,
``NAME_runs.jsonl`` (every run, so the publication can be re-analysed without rerunning it) and
``NAME_*.png``, with a paragraph naming the part of the full grid it covers
(``genaug bench ... --publish NAME``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from genaug.bench.plan.config import CONFIG_NAME, RUNS_NAME
from genaug.bench.plan.files import build_bench_config
from genaug.errors import GenaugError
from genaug.io import atomic_write_text

__all__ = ["check_name", "publish_report", "scope_paragraph"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name: str) -> str:
    """``name`` if it can name a publication's files (a plain stem), else one sentence."""
    if not _NAME.fullmatch(name):
        raise GenaugError(
            f"--publish {name!r} is no plain name; use letters, digits, '.', '_' or '-' (e.g. "
            "digits-guided)."
        )
    return name


def publish_report(
    out: str | Path,
    name: str,
    results: str | Path,
    config_file: str | Path | None = None,
    note: str | None = None,
) -> list[Path]:
    """Copy the report of bench folder ``out`` into ``results`` as ``NAME.*``; returns the files.

    Args:
        out: a bench folder whose report is written (``summary.json``, ``summary.md``...).
        name: the publication's name, a plain file name stem (``digits-guided``).
        results: the folder of publications (created if missing).
        config_file: the full grid's config file, which the scope paragraph compares with the
            part that ran (None: the bench folder's own settings).
        note: a sentence on how it ran (machine, load), printed after the scope.

    Example: ``publish_report("runs/digits", "digits", "benchmarks/results", "benchmarks/digits.yaml")``.
    """
    out, results = Path(out), Path(results)
    check_name(name)
    try:
        summary = json.loads((out / "summary.json").read_text())
        markdown = (out / "summary.md").read_text()
    except (OSError, ValueError):
        raise GenaugError(
            f"{out} holds no readable report (summary.json, summary.md); write it first with "
            f"genaug bench --report-only --out {out}."
        ) from None
    if config_file is None:
        full, config_name = summary["config"], str(out / CONFIG_NAME)
    else:
        full, config_name = build_bench_config(config_file).to_dict(), str(config_file)
    counts = {k: summary.get(k, 0) for k in ("runs_found", "runs_expected")}
    scope = scope_paragraph(full, {**summary["config"], **counts}, config_name)
    if note:
        scope += f"\n**How it ran.** {note}\n"
    results.mkdir(parents=True, exist_ok=True)
    # The report's opening verdict (with vs without a generator) stays first; the scope follows.
    head, marker, rest = markdown.partition("\nCommand:")
    written = [results / f"{name}.md", results / f"{name}.json", results / f"{name}_runs.jsonl"]
    atomic_write_text(written[0], f"{head.rstrip()}\n\n{scope}{marker}{rest}")
    shutil.copyfile(out / "summary.json", written[1])
    shutil.copyfile(out / RUNS_NAME, written[2])
    files = summary.get("files") or {}
    for key in ("accuracy_png", "gain_png", "augmented_png"):
        if key in files:  # the plots this report wrote
            written.append(results / f"{name}_{key.removesuffix('_png')}.png")
            shutil.copyfile(out / files[key], written[-1])
    return written


def scope_paragraph(full: dict[str, Any], ran: dict[str, Any], config_name: str) -> str:
    """A paragraph naming the part of the full grid this publication covers."""
    unit = "episodes" if full.get("ways") else "seeds"
    lines = [
        f"**Scope.** The full published grid is `{config_name}`: "
        f"shots {full['shots']}, {len(full['seeds'])} {unit}, generator data "
        f"{full['generator_data']}, {len(full['conditions'])} conditions.",
    ]
    missing = {
        "shot counts": [s for s in full["shots"] if s not in ran["shots"]],
        unit: [s for s in full["seeds"] if s not in ran["seeds"]],
        "generator data": [g for g in full["generator_data"] if g not in ran["generator_data"]],
        "conditions": [c for c in full["conditions"] if c not in ran["conditions"]],
    }
    if any(missing.values()):
        lines.append(
            f"This publication ran only a part of it: shots {ran['shots']}, {unit} "
            f"{ran['seeds']}, generator data {ran['generator_data']}, conditions "
            f"{', '.join(ran['conditions'])}."
        )
        for what, items in missing.items():
            if items:
                lines.append(f"Not run: {what} {', '.join(map(str, items))}.")
    elif ran.get("runs_found", 0) < ran.get("runs_expected", 0):
        lines.append(
            "This publication covers every axis of it but not every cell: the lines 'Not run at "
            "this shot count' below name the cells left out."
        )
    else:
        lines.append("This publication ran all of it.")
    return " ".join(lines) + "\n"
