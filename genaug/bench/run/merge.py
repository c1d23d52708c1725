"""Joining bench folders: parts of one grid run as separate processes (other machines, other
times) into one folder, before its report and publication (``genaug bench --report-only
--merge-from A,B``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from genaug import lock
from genaug.bench.plan.config import CONFIG_NAME, GENERATORS_DIR, RUNS_NAME, BenchConfig
from genaug.bench.plan.files import build_bench_config
from genaug.bench.run.ledger import append_run, read_runs
from genaug.errors import GenaugError
from genaug.io import atomic_write_json

__all__ = ["merge_benches"]


def _saved(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        raise GenaugError(
            f"{folder} holds no readable genaug bench ({CONFIG_NAME}); give bench folders to "
            "--merge-from."
        ) from None


def merge_benches(
    out: str | Path, parts: list[str | Path], config_file: str | Path | None = None
) -> int:
    """Add the finished runs and generators of the bench folders ``parts`` to the one in
    ``out``; returns how many runs joined.

    Every part must hold a bench of the same settings (only the grid's axes may differ); the
    axes of ``out`` become the union, shot counts sorted and conditions in the order of the
    full grid's ``config_file`` (None: of ``out``'s own).
    """
    out = Path(out)
    saved = _saved(out)
    mine = BenchConfig.from_dict(saved)
    full = build_bench_config(config_file) if config_file else mine
    lock.hold(out)
    try:
        done = read_runs(out / RUNS_NAME)
        joined = 0
        for part in map(Path, filter(None, parts)):
            other = _saved(part)
            changed = mine.differences(other)
            if changed:
                raise GenaugError(
                    f"{part} holds a bench with other settings ({', '.join(changed)}); merge "
                    "only parts of the same grid."
                )
            for key in ("shots", "conditions", "generator_data"):
                saved[key] = saved[key] + [v for v in other[key] if v not in saved[key]]
            saved["generators"] = {
                **(other.get("generators") or {}),
                **(saved.get("generators") or {}),
            }
            new = [r for k, r in read_runs(part / RUNS_NAME).items() if k not in done]
            for record in new:
                append_run(out / RUNS_NAME, record)
                done[record["key"]] = record
            for folder in (part / GENERATORS_DIR).glob("*"):
                if not (out / GENERATORS_DIR / folder.name).exists():
                    shutil.copytree(folder, out / GENERATORS_DIR / folder.name)
            joined += len(new)
        saved["shots"] = sorted(saved["shots"])
        order = {c: i for i, c in enumerate(full.conditions)}
        saved["conditions"] = sorted(saved["conditions"], key=lambda c: order.get(c, len(order)))
        atomic_write_json(out / CONFIG_NAME, saved)
    finally:
        lock.release(out)
    return joined
