"""Reading back a training run's ``stats.jsonl`` (written by :mod:`genaug.train.loop`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["STATS", "checkpoint_training_facts"]

STATS = "stats.jsonl"


def checkpoint_training_facts(path: str | Path) -> dict[str, Any]:
    """``train_seconds`` and ``steps`` of a generator trained by ``genaug train``, read from the
    ``stats.jsonl`` of its run folder (``path`` or the run above a ``checkpoints/step_*``
    folder); None for each when there is none. A resumed run restarts its clock, so the
    segments are added up (the time between a segment's last log and its interruption is lost).
    """
    path = Path(path)
    for folder in (path, path.parent.parent):
        stats = folder / STATS
        if stats.is_file():
            break
    else:
        return {"train_seconds": None, "steps": None}
    total, last_time, steps = 0.0, 0.0, None
    for line in stats.read_text().splitlines():
        try:
            record = json.loads(line)
            time_s, step = float(record["time"]), int(record["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line of an interrupted run
        if time_s < last_time:  # a resumed segment: its clock restarted
            total += last_time
        last_time, steps = time_s, step
    return {"train_seconds": round(total + last_time, 3), "steps": steps}
