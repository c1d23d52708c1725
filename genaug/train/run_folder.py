"""The run folder of a training run: created, reopened or replaced as the settings say; the
checkpoint a resumed run goes on from; ``stats.jsonl`` cut back to it.

No error suggests ``--overwrite`` while a good checkpoint exists without saying what it deletes.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from genaug import lock
from genaug.errors import GenaugError, notice
from genaug.io import atomic_write_text, os_errors_as_sentences
from genaug.models.base import Generator
from genaug.models.checkpoint import NewerCheckpoint, folder_step, step_folders
from genaug.train.config import TrainConfig
from genaug.train.state import find_resumable, kept_sentence, latest_checkpoint, set_aside_newer

RUN_CONFIG = "run_config.json"


def prepare_run_dir(config: TrainConfig, lock_folder: bool = True) -> Path:
    """Lock (``lock_folder``), then create, reopen (``resume``) or replace (``overwrite``) the run
    folder."""
    run_dir = Path(config.out)
    if lock_folder:  # one writer per folder: a second is refused here, before any write
        lock.hold(run_dir)
    saved_config = run_dir / RUN_CONFIG
    if wants_resume(config):
        if not saved_config.is_file():
            raise GenaugError(
                f"--resume was given but {run_dir} holds no run to resume; drop --resume to start."
            )
        try:
            previous = TrainConfig.from_dict(json.loads(saved_config.read_text()))
        except (ValueError, TypeError) as exc:
            raise GenaugError(
                f"{saved_config} is damaged ({exc.__class__.__name__}); restore it to resume, or "
                f"start a new run in another --out ({_overwrite_deletes(run_dir)})."
            ) from None
        changed = config.differences(previous)
        if changed:
            raise GenaugError(
                f"{run_dir} holds a run with different settings ({', '.join(changed)}); resume "
                f"with the same settings, or start a new run in another --out "
                f"({_overwrite_deletes(run_dir)})."
            )
        return run_dir
    if lock.contents(run_dir):  # files other than the lock's
        if not config.overwrite:
            raise GenaugError(
                f"{run_dir} already holds files; pass --resume to continue that run, or choose "
                f"another --out ({_overwrite_deletes(run_dir)})."
            )
        if not saved_config.is_file():
            raise GenaugError(
                f"{run_dir} holds files that are not a genaug run, so --overwrite will not "
                "delete them; choose another --out."
            )
        lock.clear(run_dir)  # all but the lock, which stays held
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def wants_resume(config: TrainConfig) -> bool:
    """``--resume``, or ``--resume-from STEP`` (which implies it)."""
    return config.resume or config.resume_from is not None


def _overwrite_deletes(run_dir: Path) -> str:
    folders = step_folders(run_dir)
    if not folders:
        return "--overwrite replaces this one"
    newest = folder_step(folders[-1])
    return f"--overwrite would delete this one with its checkpoints up to step {newest}"


def choose_resume_checkpoint(
    run_dir: Path,
    config: TrainConfig,
    model: Generator,
    optimizers: dict[str, torch.optim.Optimizer],
) -> Path:
    """The checkpoint a resumed run goes on from (``resume_from``'s, or the newest that passes
    the checks); newer step folders are set aside and ``latest`` points at it."""
    try:
        point, skipped = find_resumable(run_dir, model, optimizers, config.resume_from)
    except NewerCheckpoint as exc:
        other = f", or pass --resume-from {folder_step(exc.older)}" if exc.older else ""
        raise GenaugError(
            f"{exc.config_path} has format version {exc.version}, newer than this genaug reads; "
            f"upgrade genaug to resume{other}."
        ) from None
    if point is None:
        if skipped:
            raise GenaugError(
                f"--resume found no usable checkpoint in {run_dir} ({'; '.join(skipped)}); "
                "restore one, or start over with --overwrite, which deletes them."
            )
        raise GenaugError(
            f"--resume was given but {run_dir} has no checkpoint yet; start again without "
            "--resume (add --overwrite to replace the folder)."
        )
    moved = set_aside_newer(run_dir, point)
    if moved:
        notice(
            f"moved {', '.join(m.name for m in moved)} aside to {moved[0].parent} (newer than "
            f"step {folder_step(point.folder)}, which the run goes on from); delete them when "
            "you no longer need them."
        )
    return point.folder


def truncate_stats(stats_path: Path, step: int) -> None:
    """Drop stats lines logged after ``step`` (written before a crash, then redone on resume)
    and lines cut short (a crash or a full disk), with a notice for those."""
    if not stats_path.is_file():
        return
    keep, torn = [], 0
    for line in stats_path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            logged = int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            torn += 1
            continue
        if logged <= step:
            keep.append(line)
    if torn:
        notice(f"dropped {torn} unreadable line(s) of {stats_path} (cut short by a crash).")
    atomic_write_text(stats_path, "".join(line + "\n" for line in keep))


def latest_step(run_dir: Path) -> int | None:
    """The step of the run's newest checkpoint that passes the checks, or None."""
    folder = latest_checkpoint(run_dir)
    return folder_step(folder) if folder else None


def run_folder_os_errors(
    run_dir: Path, action: str, fix: str | None, resume: bool = False
) -> contextlib.AbstractContextManager[None]:
    """An OS error (a full disk) in the block becomes one sentence; with ``resume`` it says that
    the last checkpoint is intact and how to go on from it."""
    then = (lambda: f", then go on with --resume ({kept_sentence(run_dir)})") if resume else ""
    return os_errors_as_sentences(action, fix, then)
