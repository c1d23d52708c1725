"""Sharing a bench grid among the ranks of a ``torchrun`` job (no-ops in one process).

Runs are independent, so ranks split the grid by seed: every run of the ``i``-th seed of the
config goes to rank ``i % world_size``. All runs that use the same cached generator
(``generators/NAME-SOURCE-seedS[-shotsK]``) share that seed, so two ranks never train the same
generator folder. Each rank appends its finished runs to its own ``runs.rank{r}.jsonl``; when
every rank is done, rank 0 merges them into ``runs.jsonl`` and writes the report, exactly as a
one-process bench would (every run is seeded by its own (shots, seed, arm), not by the rank).

The bench folder must be on a file system every rank sees. Ranks finish at different times, so the
final wait uses a separate gloo group with a long timeout (``GENAUG_BENCH_WAIT`` seconds, default a
week): a rank that dies still ends the job through torchrun.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist

from genaug import distributed
from genaug.bench.plan.config import RUNS_NAME, BenchConfig
from genaug.bench.run.ledger import read_runs
from genaug.io import atomic_write_text

WAIT_ENV = "GENAUG_BENCH_WAIT"
DEFAULT_WAIT_S = 7 * 24 * 3600.0


class BenchShare:
    """This rank's share of a bench grid in ``out``; create it on every rank at the same point."""

    def __init__(self, config: BenchConfig, out: Path) -> None:
        self.config = config
        self.out = out
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self._group = None
        if self.world > 1:  # created now, while all ranks are together (a collective call)
            wait = float(os.environ.get(WAIT_ENV, DEFAULT_WAIT_S))
            self._group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=wait))

    @property
    def runs_path(self) -> Path:
        """Where this rank appends finished runs: runs.jsonl, or runs.rank{r}.jsonl."""
        if self.world == 1:
            return self.out / RUNS_NAME
        return self.out / f"runs.rank{self.rank}.jsonl"

    def owns(self, seed: int) -> bool:
        """Whether the runs of ``seed`` (and the generators they train) are this rank's."""
        return self.config.seeds.index(seed) % self.world == self.rank

    def read_done(self) -> dict[str, dict[str, Any]]:
        """Every finished run: runs.jsonl plus the per-rank files of an unmerged earlier job."""
        done = read_runs(self.out / RUNS_NAME)
        for path in sorted(self.out.glob("runs.rank*.jsonl")):
            done.update(read_runs(path))
        return done

    def gather(self, done: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Wait for every rank; rank 0 merges the per-rank files into runs.jsonl.

        Returns every finished run (on rank 0; other ranks get their own ``done`` back).
        """
        if self.world == 1:
            return done
        try:
            dist.barrier(group=self._group)
        except RuntimeError as exc:
            raise distributed.RankFailure(
                f"Rank {self.rank} of {self.world}: waiting for the other ranks' bench runs "
                f"failed ({str(exc).strip().splitlines()[0][:200]}); finished runs are kept, "
                "rerun with --resume."
            ) from None
        if not distributed.is_main():
            return done
        merged = self.read_done()
        lines = "".join(json.dumps(record) + "\n" for record in merged.values())
        atomic_write_text(self.out / RUNS_NAME, lines)
        for path in self.out.glob("runs.rank*.jsonl"):  # now in runs.jsonl
            path.unlink()
        return merged


def prepare_out_on_main(config: BenchConfig, prepare: Callable[[BenchConfig], Path]) -> Path:
    """Run ``prepare(config)`` (create, check or clear the bench folder) on rank 0 only.

    ``prepare`` may merge earlier generator settings into ``config.generators``; every rank gets
    the same result. Errors reach every rank as the same one sentence.
    """

    def call() -> tuple[Path, dict[str, Any]]:
        return prepare(config), config.generators

    out, generators = distributed.run_on_main(call, "preparing the bench folder")
    config.generators = generators
    return out
