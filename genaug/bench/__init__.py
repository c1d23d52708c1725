"""The downstream benchmark (``genaug bench``): timm classifiers trained with and without
generative augmentation over a paired grid of shots x seeds x conditions, and its report.

Modules: :mod:`~genaug.bench.config` (the grid's settings), :mod:`~genaug.bench.recipes`
(conditions -> pipelines), :mod:`~genaug.bench.arms` (conditions x generator data),
:mod:`~genaug.bench.cache` (generators trained once per cell), :mod:`~genaug.bench.classifier`
(the timm classifier and its training), :mod:`~genaug.bench.run` (the grid), :mod:`~genaug.bench.runs`
(the runs ledger), :mod:`~genaug.bench.distributed` (sharding under torchrun),
:mod:`~genaug.bench.stats` and :mod:`~genaug.bench.report` (from
:mod:`~genaug.bench.summary`, :mod:`~genaug.bench.markdown` and :mod:`~genaug.bench.figures`).
"""

from __future__ import annotations

from genaug.bench.config import BenchConfig, GeneratorSettings, build_bench_config
from genaug.bench.run import BenchResult, report_bench, run_bench
from genaug.bench.runs import read_runs

__all__ = [
    "BenchConfig",
    "BenchResult",
    "GeneratorSettings",
    "build_bench_config",
    "read_runs",
    "report_bench",
    "run_bench",
]
