"""The downstream benchmark (``genaug bench``): timm classifiers trained with and without
generative augmentation over a paired grid of shots x seeds x conditions, and its report.

Four rooms, each importing only the ones below it: :mod:`~genaug.bench.plan` (the grid's
settings, conditions, arms and cells; nothing trained), :mod:`~genaug.bench.learn` (how one run
learns: the classifier, the batch pipeline and loss, the base classifier and heads on its
features), :mod:`~genaug.bench.report` (statistics, tables, figures and publications, from the
finished runs alone) and on top :mod:`~genaug.bench.run` (the grid: its folder, ledger,
generator cache, workers and torchrun ranks). :mod:`~genaug.bench.command_line` is the
command line of ``genaug bench``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use, so that a room's module (the command line's flags) comes without the rest.
_FACE = {
    "BenchConfig": "genaug.bench.plan.config",
    "BenchResult": "genaug.bench.run.grid",
    "GeneratorSettings": "genaug.bench.plan.generators",
    "build_bench_config": "genaug.bench.plan.files",
    "merge_benches": "genaug.bench.run.merge",
    "publish_report": "genaug.bench.report.publish",
    "read_runs": "genaug.bench.run.ledger",
    "report_bench": "genaug.bench.run.grid",
    "run_bench": "genaug.bench.run.grid",
}
__all__ = sorted(_FACE)


def __getattr__(name: str) -> Any:
    if name in _FACE:
        value = getattr(importlib.import_module(_FACE[name]), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module 'genaug.bench' has no attribute {name!r}")
