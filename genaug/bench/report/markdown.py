"""The benchmark's ``summary.md``: the verdict, the command, the settings, one table per shot
count, the references and pipelines without and with a generator, and the targets.

Accuracies are percentages and differences percentage points ("pp"), from the summary of
:func:`~genaug.bench.report.summary.build_summary`.
"""

from __future__ import annotations

from typing import Any

from genaug.bench.report.pipeline_tables import (
    pipelines_section,
    references_section,
    verdict_lines,
)
from genaug.bench.report.protocol import protocol_bullets
from genaug.bench.report.tables import shot_tables, targets_section

__all__ = ["format_markdown"]


def format_markdown(summary: dict[str, Any]) -> str:
    """The report as Markdown: settings, one table per shot count, the targets."""
    config = summary["config"]
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
    lines += protocol_bullets(config)
    for item in summary.get("skipped") or []:
        lines += [f"- Not run: {item['arm']} ({item['reason']})"]
    if summary.get("skipped"):
        lines.append("")
    lines += shot_tables(summary)
    lines += references_section(summary)
    lines += pipelines_section(summary)
    lines += targets_section(summary)
    return "\n".join(lines)
