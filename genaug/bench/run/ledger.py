"""The runs ledger: ``runs.jsonl``, one JSON line per finished benchmark run.

Appending a line is the last thing a run does, so the ledger is what a resumed bench trusts; a
line cut short by a crash is ignored and that run is done again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["append_run", "read_runs"]


def read_runs(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The finished runs in a ``runs.jsonl`` by key (a torn last line is ignored)."""
    runs: dict[str, dict[str, Any]] = {}
    path = Path(path)
    if not path.is_file():
        return runs
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash: that run is done again
        if isinstance(record, dict) and "key" in record:
            runs[record["key"]] = record
    return runs


def append_run(path: Path, record: dict[str, Any]) -> None:
    """Append one finished run to a ``runs.jsonl``, durably (fsync), after any torn line."""
    with open(path, "a") as f:
        if f.tell() and not _ends_with_newline(path):
            f.write("\n")  # after a torn line, start a fresh one
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
