"""A bench's run folder: created, resumed (same settings) or replaced (``--overwrite``), under
the folder's lock; it holds ``bench_config.json``, ``runs.jsonl`` (:mod:`~.ledger`),
``generators/`` (:mod:`~.cache`), ``pretrained/`` (the base classifier) and the report."""

from __future__ import annotations

import json
from pathlib import Path

from genaug import lock
from genaug.bench.plan.config import CONFIG_NAME, RUNS_NAME, BenchConfig
from genaug.bench.run.ledger import read_runs
from genaug.errors import GenaugError
from genaug.io import atomic_write_json

__all__ = ["prepare_out", "resume_queries"]


def prepare_out(config: BenchConfig) -> Path:
    """Lock ``config.out`` and create it, or check it for a resume (same settings), or clear it
    (``overwrite``); save the settings there. Earlier generators' settings join
    ``config.generators``."""
    out = Path(config.out)
    saved = out / CONFIG_NAME
    if out.exists() and not out.is_dir():
        raise GenaugError(f"{out} is a file, not a folder; choose another --out.")
    lock.hold(out)  # one writer per folder: a second is refused here, before any write
    if lock.contents(out):  # files other than the lock's
        if not saved.is_file():
            raise GenaugError(
                f"{out} holds files that are not a genaug bench, so the bench will not write "
                "there; choose another --out."
            )
        try:
            previous = json.loads(saved.read_text())
        except (OSError, json.JSONDecodeError):
            previous = None
        if config.overwrite:
            lock.clear(out)  # all but the lock, which stays held
        elif not config.resume:
            raise GenaugError(
                f"{out} already holds a bench; pass --resume to continue it (same settings), "
                f"or choose another --out ({_overwrite_deletes(out)})."
            )
        elif not isinstance(previous, dict):
            raise GenaugError(
                f"{saved} is unreadable, so the bench there cannot be resumed; choose another "
                f"--out ({_overwrite_deletes(out)})."
            )
        else:
            changed = config.differences(previous)
            if changed:
                raise GenaugError(
                    f"{out} holds a bench with different settings ({', '.join(changed)}); resume "
                    f"with the same settings, or choose another --out ({_overwrite_deletes(out)})."
                )
            # Keep the settings of generators trained before that this config does not name.
            merged = dict(previous.get("generators") or {})
            merged.update(config.generators)
            config.generators = merged
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(saved, config.to_dict())
    return out


def resume_queries(config: BenchConfig) -> None:
    """Resuming an episodic bench keeps its test images: unset ``queries`` takes the saved value
    (resolved from the shots it started with), not one resolved from narrowed ``--shots``."""
    saved = Path(config.out) / CONFIG_NAME
    if config.queries is not None or not config.resume or not saved.is_file():
        return
    try:
        queries = json.loads(saved.read_text()).get("queries")
    except (OSError, json.JSONDecodeError, AttributeError):
        return  # prepare_out says what is wrong with the folder
    if isinstance(queries, int) and not isinstance(queries, bool):
        config.queries = queries


def _overwrite_deletes(out: Path) -> str:
    """What ``--overwrite`` would delete in a bench folder, for the messages that name it."""
    try:
        finished = len(read_runs(out / RUNS_NAME))  # the ledger's own count: torn lines left out
    except OSError:
        finished = 0
    return f"--overwrite deletes everything there: {finished} finished runs, its generators"
