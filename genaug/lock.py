"""One writer per folder: an exclusive lock on every folder genaug writes.

An entry point (``train``, ``run_bench``, ``sample --out DIR/``) takes its folder's lock once,
before it writes there, and gives it back when it returns; a bench's generator runs live in its
folder, under its lock. The lock is the OS lock (``flock``, through ``filelock``) of the empty
file ``FOLDER/.genaug.lock``, released by the OS however its process ends; beside it
``FOLDER/.genaug.lock.json`` records the holder (host, pid, start time, command). A second writer
is refused with one sentence naming the holder (:class:`FolderBusy`; the CLI exits 2). A record
left by a holder that died on this host is taken over with a notice; one from another host is
refused (docs/benchmark.md says why). Under torchrun rank 0 holds the job's lock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from genaug.errors import GenaugError
from genaug.io import atomic_write_json
from genaug.lock_holder import HOLDER_NAME, FolderBusy, busy_message, check_left_behind, new_record
from genaug.lock_holder import read_holder as holder

__all__ = [
    "HOLDER_NAME",
    "LOCK_FILES",
    "LOCK_NAME",
    "FolderBusy",
    "clear",
    "contents",
    "held_here",
    "hold",
    "holder",
    "release",
]

LOCK_NAME = ".genaug.lock"  # the OS lock (an empty file)
LOCK_FILES = frozenset({LOCK_NAME, HOLDER_NAME})


@dataclass
class _Held:
    lock: filelock.BaseFileLock
    record: dict[str, Any]
    created: bool  # hold() made the folder: removed again on release if still empty
    before: frozenset[str] | None  # its entries when hold() made the lock file


_held: dict[Path, _Held] = {}  # resolved folder -> this process's hold


def hold(folder: str | os.PathLike) -> Path:
    """Lock ``folder`` (created if missing) for this process before writing in it; returns it.

    Raises :class:`FolderBusy` (one sentence, naming the holder) when another process holds it
    or a dead holder on another host left its record. Example: ``hold("runs/digits-vae")``.
    """
    folder = Path(folder)
    if _other_rank():
        return folder
    if folder.exists() and not folder.is_dir():
        raise GenaugError(f"{folder} is a file, not a folder; choose another --out.")
    key = folder.resolve()
    if key in _held:  # taken once per entry point: a call inside one is a second writer
        raise FolderBusy(f"{folder} is being written by this process already; write it once.")
    created = not folder.exists()
    before = None if (key / LOCK_NAME).exists() else frozenset(_names(key))
    lock = filelock.FileLock(str(key / LOCK_NAME), timeout=0, thread_local=False)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except filelock.Timeout:
        raise FolderBusy(busy_message(folder)) from None
    except (OSError, NotImplementedError) as exc:  # NotImplementedError: no flock (old filelock)
        raise GenaugError(
            f"Cannot lock {folder} for writing ({getattr(exc, 'strerror', None) or exc}); choose "
            "a folder you can write."
        ) from None
    held = _Held(lock, new_record(), created, before)
    try:
        check_left_behind(folder, LOCK_NAME)
        atomic_write_json(key / HOLDER_NAME, held.record)
    except BaseException:  # refused: leave the folder as it was
        _unlock(key, held)
        raise
    _held[key] = held
    return folder


def release(folder: str | os.PathLike) -> None:
    """Give back this process's lock of ``folder`` (nothing if it holds none) and drop its
    record; an entry point calls it when it returns, however it returns."""
    key = Path(folder).resolve()
    held = _held.pop(key, None)
    if held is not None:
        _unlock(key, held)


def held_here(folder: str | os.PathLike) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return Path(folder).resolve() in _held


def _unlock(key: Path, held: _Held) -> None:
    with contextlib.suppress(OSError):
        if holder(key) == held.record:
            (key / HOLDER_NAME).unlink()
        if held.before is not None and frozenset(_names(key)) == held.before:
            (key / LOCK_NAME).unlink()  # nothing was written: leave the folder as it was
    held.lock.release()
    if held.created:
        with contextlib.suppress(OSError):
            key.rmdir()  # only if empty


# ---------------------------------------------------------------------------- the folder's files
def contents(folder: str | os.PathLike) -> list[Path]:
    """The entries of ``folder`` other than the lock's files ([] when it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name not in LOCK_FILES)


def _names(folder: Path) -> list[str]:
    return [p.name for p in contents(folder)]


def clear(folder: str | os.PathLike) -> None:
    """Delete everything in ``folder`` but the lock's files (``--overwrite``, under the lock)."""
    for path in contents(folder):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _other_rank() -> bool:
    """True on a torchrun rank other than 0: the job's lock is rank 0's."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) != 0
    except ValueError:
        return False
