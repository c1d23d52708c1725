"""One writer per folder: an exclusive lock on every folder genaug writes.

``train``, ``bench`` (and so the demo) and ``sample --out DIR/`` call :func:`hold` on their
folder before they write anything in it. The lock is the OS lock (``flock``, through the
``filelock`` library) of the empty file ``FOLDER/.genaug.lock``; the OS releases it when its
process ends, however it ends (SIGKILL too). Beside it, ``FOLDER/.genaug.lock.json`` records the
holder: host, pid, start time and command. A second writer is refused with one sentence naming
the holder (:class:`FolderBusy`; the CLI exits 2) and changes nothing in the folder.

A holder that died leaves its record behind. The next writer gets the OS lock, reads the record
and decides: a pid on this host that is gone (or now belongs to a later process) -> it takes over
with a one-line notice on stderr; a pid on another host -> it is refused with how to clear the
record, since from here nobody can tell whether that process still runs (a shared file system
need not share OS locks between hosts).

How long: until the process ends, or until the :func:`scope` that took it ends: ``train`` and
``run_bench`` are :func:`scoped`, and so is each CLI command, whose call is the whole process (a
notebook or a test process does not keep every folder it wrote locked). Holding is re-entrant
within a process, and a held folder covers the folders inside it (the bench's generator runs). Under
torchrun the lock belongs to the job: rank 0 takes it, other ranks neither take it nor are
refused (:func:`hold` does nothing there).

Readers take no lock: ``info``, ``evaluate``, ``bench --report-only`` and loading a checkpoint
work while a folder is being written.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shlex
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import filelock

from genaug.errors import GenaugError
from genaug.io import atomic_write_json

LOCK_NAME = ".genaug.lock"  # the OS lock (an empty file)
HOLDER_NAME = ".genaug.lock.json"  # who holds it: host, pid, started, command
LOCK_FILES = frozenset({LOCK_NAME, HOLDER_NAME})
# A live pid whose process started this long after a record was written is not its holder
# (the pid was reused); the slack covers the whole-second precision of /proc's boot time.
_CLOCK_SLACK_S = 2.0

F = TypeVar("F", bound=Callable[..., Any])


class FolderBusy(GenaugError):
    """Another process writes the folder, or may still: the message names it and what to do."""


@dataclass
class _Held:
    lock: filelock.BaseFileLock
    record: dict[str, Any]
    created: bool  # hold() made the folder: removed again on release if still empty
    # The folder's entries when hold() made the lock file; if they are the same at release
    # (a run refused before writing, e.g. into a folder of other files), the file goes too.
    before: frozenset[str] | None
    count: int = 1


_held: dict[Path, _Held] = {}  # resolved folder -> this process's hold
_mutex = threading.RLock()
_local = threading.local()  # .scopes: a stack of lists of folders taken inside each scope


# ---------------------------------------------------------------------------- taking, giving back
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
    with _mutex:
        if key in _held:
            _held[key].count += 1
            _in_scope(key)
            return folder
        if any(parent in _held for parent in key.parents):
            folder.mkdir(parents=True, exist_ok=True)
            return folder  # inside a folder this process holds: covered by that lock
        created = not folder.exists()
        before = None if (key / LOCK_NAME).exists() else frozenset(_names(key))
        lock = filelock.FileLock(str(key / LOCK_NAME), timeout=0, thread_local=False)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except filelock.Timeout:
            raise FolderBusy(_busy_message(folder)) from None
        except NotImplementedError:  # an older filelock on a file system without flock
            raise GenaugError(
                f"The file system of {folder} cannot lock files (no flock); upgrade filelock "
                "(newer versions fall back to a marker file), or choose a local folder."
            ) from None
        except OSError as exc:
            raise GenaugError(
                f"Cannot lock {folder} for writing ({exc.strerror or exc}); choose a folder you "
                "can write."
            ) from None
        try:
            _check_left_behind(folder, holder(folder))
            record = _record()
            atomic_write_json(key / HOLDER_NAME, record)
        except BaseException:  # refused: leave the folder as it was
            if before is not None:
                with contextlib.suppress(OSError):
                    (key / LOCK_NAME).unlink()
            lock.release()
            raise
        _held[key] = _Held(lock, record, created, before)
        _in_scope(key)
    return folder


def release(folder: str | os.PathLike) -> None:
    """Give back one :func:`hold` of ``folder``; the last one unlocks it and drops the record."""
    key = Path(folder).resolve()
    with _mutex:
        held = _held.get(key)
        if held is None:
            return
        held.count -= 1
        if held.count <= 0:
            del _held[key]
            _unlock(key, held)


def held_here(folder: str | os.PathLike) -> bool:
    """Whether this process holds ``folder``'s lock (itself, not through a folder around it)."""
    return Path(folder).resolve() in _held


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Holds taken inside the block are given back when it ends (else at the process's end)."""
    stack = _local.__dict__.setdefault("scopes", [])
    taken: list[Path] = []
    stack.append(taken)
    try:
        yield
    finally:
        stack.pop()
        for key in reversed(taken):
            release(key)


def scoped(function: F) -> F:
    """Decorator: run ``function`` in a :func:`scope` (its folder locks end with the call)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with scope():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _in_scope(key: Path) -> None:
    stack = _local.__dict__.get("scopes")
    if stack:
        stack[-1].append(key)


def _unlock(key: Path, held: _Held) -> None:
    if held.record.get("pid") != os.getpid():
        return  # a forked child: the lock is its parent's
    with contextlib.suppress(OSError):
        if holder(key) == held.record:
            (key / HOLDER_NAME).unlink()
        if held.before is not None and frozenset(_names(key)) == held.before:
            (key / LOCK_NAME).unlink()  # nothing was written: leave the folder as it was
    held.lock.release()
    if held.created:
        with contextlib.suppress(OSError):
            key.rmdir()  # only if empty


@atexit.register
def _release_all() -> None:
    with _mutex:
        for key in list(_held):
            _unlock(key, _held.pop(key))


# ---------------------------------------------------------------------------- the folder's files
def holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The holder record of ``folder`` (host, pid, started, command), or None if there is none.

    A record without a live lock is what a holder that died left behind.
    """
    try:
        record = json.loads((Path(folder) / HOLDER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


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


# ---------------------------------------------------------------------------- holders
def _record() -> dict[str, Any]:
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
        "started_unix": round(now, 3),
        "command": _command(),
    }


def _command() -> str:
    """This process's command line, with genaug's own entry points shown as ``genaug``."""
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0])
    if first.parent.name == "genaug" and first.name in ("cli.py", "__main__.py"):
        argv[0] = "genaug"  # python -m genaug(.cli), torchrun -m genaug
    elif first.name == "__main__.py":
        argv = ["python", "-m", first.parent.name, *argv[1:]]  # python -m pytest, ...
    elif argv[0] in ("-c", "-"):
        argv = ["python", *argv]  # python -c CODE, python - (stdin)
    elif not argv[0]:
        argv[0] = "python"  # an interactive interpreter
    else:
        argv[0] = first.name
    return shlex.join(argv)[:300]


def _describe(record: dict[str, Any]) -> str:
    command = str(record.get("command", "?"))
    command = command if len(command) <= 120 else command[:117] + "..."
    return (
        f"pid {record.get('pid', '?')} on host {record.get('host', '?')}, started "
        f"{record.get('started', '?')}: `{command}`"
    )


def _busy_message(folder: Path) -> str:
    record = holder(folder)
    for _ in range(20):  # the holder writes its record just after locking; wait for it briefly
        if record is not None and (_elsewhere(record) or _running(record)):
            break
        time.sleep(0.05)
        record = holder(folder)
    if record is None:
        who = "another process (it has not recorded itself yet)"
        stop = "stop that process"
    else:
        who = _describe(record)
        stop = "stop that process" + ("" if _elsewhere(record) else f" (kill {record.get('pid')})")
    return (
        f"{folder} is being written by {who}; wait for it to finish, or {stop}, then run this "
        "command again."
    )


def _check_left_behind(folder: Path, record: dict[str, Any] | None) -> None:
    """With the OS lock in hand: a record still there names a holder that died, or may have."""
    if record is None:
        return
    who = _describe(record)
    path = folder / HOLDER_NAME
    if _elsewhere(record):
        raise FolderBusy(
            f"{folder} was locked by {who}, and from host {socket.gethostname()} genaug cannot "
            f"tell whether that process still runs; once it has stopped, delete {path} and run "
            "this command again."
        )
    if _running(record):
        raise FolderBusy(
            f"{folder} is recorded as written by {who}, which still runs although it holds no "
            f"lock (was {LOCK_NAME} deleted?); wait for it or stop it, or if it does not write "
            f"there, delete {path}, then run this command again."
        )
    sys.stderr.write(f"genaug: notice: took over {folder} from {who}, which is gone.\n")
    sys.stderr.flush()


def _elsewhere(record: dict[str, Any]) -> bool:
    return record.get("host") != socket.gethostname()


def _running(record: dict[str, Any]) -> bool:
    """Whether the record's pid on this host still runs and may be the process that wrote it."""
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False  # our own pid: a record from an earlier life of this pid (a container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    facts = _process_facts(pid)
    if facts is None:
        return True  # no /proc to ask: assume it does
    state, started = facts
    if state in ("Z", "X"):
        return False  # a zombie: dead, not yet reaped by its parent
    # A process that started after the record was written reused the pid: not the holder.
    recorded = record.get("started_unix")
    return not (isinstance(recorded, (int, float)) and started > recorded + _CLOCK_SLACK_S)


def _process_facts(pid: int) -> tuple[str, float] | None:
    """(state, start time in Unix seconds) of ``pid`` from Linux's /proc, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
        ticks = float(fields[19])  # field 22: start time, clock ticks after boot
        return fields[0], boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _other_rank() -> bool:
    """True on a torchrun rank other than 0: the job's lock is rank 0's."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) != 0
    except ValueError:
        return False
