"""Who holds a folder's lock (:mod:`genaug.lock`): the record beside the lock file (host, pid,
start time, command), whether the process it names may still run, and the sentences that name it
to a writer who is refused or takes over.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

from genaug.errors import GenaugError

__all__ = [
    "HOLDER_NAME",
    "FolderBusy",
    "busy_message",
    "check_left_behind",
    "new_record",
    "read_holder",
]

HOLDER_NAME = ".genaug.lock.json"  # who holds the lock: host, pid, started, command
# A live pid whose process started this long after a record was written is not its holder
# (the pid was reused); the slack covers the whole-second precision of /proc's boot time.
_CLOCK_SLACK_S = 2.0


class FolderBusy(GenaugError):
    """Another process writes the folder, or may still: the message names it and what to do."""


def read_holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The holder record of ``folder`` (host, pid, started, command), or None if there is none.

    A record without a live lock is what a holder that died left behind.
    """
    try:
        record = json.loads((Path(folder) / HOLDER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def new_record() -> dict[str, Any]:
    """This process's record, as the holder of a lock it takes now."""
    now, argv = time.time(), list(sys.argv) or [""]
    first = Path(argv[0])
    if first.name == "__main__.py":  # python -m genaug (torchrun -m genaug), python -m pytest
        package = first.parent.name
        argv[:1] = ["genaug"] if package == "genaug" else ["python", "-m", package]
    else:  # python -c CODE, python - (stdin), a script or console command
        argv[:1] = ["python", argv[0]] if argv[0] in ("-c", "-") else [first.name or "python"]
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
        "started_unix": round(now, 3),
        "command": shlex.join(argv)[:300],
    }


def _describe(record: dict[str, Any]) -> str:
    command = str(record.get("command", "?"))
    command = command if len(command) <= 120 else command[:117] + "..."
    where = f"pid {record.get('pid', '?')} on host {record.get('host', '?')}"
    return f"{where}, started {record.get('started', '?')}: `{command}`"


def busy_message(folder: Path) -> str:
    """The refusal of a writer who found ``folder``'s lock taken."""
    record = read_holder(folder)
    for _ in range(20):  # the holder writes its record just after locking; wait for it briefly
        if record is not None and (_elsewhere(record) or _running(record)):
            break
        time.sleep(0.05)
        record = read_holder(folder)
    who = (
        "another process (it has not recorded itself yet)" if record is None else _describe(record)
    )
    kill = "" if record is None or _elsewhere(record) else f" (kill {record.get('pid')})"
    return (
        f"{folder} is being written by {who}; wait for it to finish, or stop that process{kill}, "
        "then run this command again."
    )


def check_left_behind(folder: Path, lock_name: str) -> None:
    """With the OS lock of ``folder`` in hand: a record still there names a holder that died
    (taken over, with a notice), or may have (:class:`FolderBusy`)."""
    record = read_holder(folder)
    if record is None:
        return
    who, path = _describe(record), folder / HOLDER_NAME
    if _elsewhere(record):
        raise FolderBusy(
            f"{folder} was locked by {who}, and from host {socket.gethostname()} genaug cannot "
            f"tell whether that process still runs; once it has stopped, delete {path} and run "
            "this command again."
        )
    if _running(record):
        raise FolderBusy(
            f"{folder} is recorded as written by {who}, which still runs although it holds no "
            f"lock (was {lock_name} deleted?); wait for it or stop it, or if it does not write "
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
    try:  # Linux: its state and start time (field 22, clock ticks after boot) from /proc
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return True  # no /proc to ask: assume it does
    if fields[0] in ("Z", "X"):
        return False  # a zombie: dead, not yet reaped by its parent
    started = boot + float(fields[19]) / os.sysconf("SC_CLK_TCK")
    # A process that started after the record was written reused the pid: not the holder.
    recorded = record.get("started_unix")
    return not (isinstance(recorded, (int, float)) and started > recorded + _CLOCK_SLACK_S)
