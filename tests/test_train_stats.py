"""Reading a training run's stats.jsonl back (train/stats.py)."""

from __future__ import annotations

import json

from genaug.train.stats import STATS, checkpoint_training_facts


def test_resumed_segments_add_up_and_a_torn_line_is_skipped(tmp_path):
    records = [(50, 10.0), (100, 20.0), (150, 5.0), (200, 12.5)]  # resumed after step 100
    lines = [json.dumps({"step": s, "time": t, "loss": 1.0}) for s, t in records]
    (tmp_path / STATS).write_text("\n".join(lines) + '\n{"step": 250, "ti')
    step_folder = tmp_path / "checkpoints" / "step_0000200"
    step_folder.mkdir(parents=True)
    for path in (tmp_path, step_folder):
        assert checkpoint_training_facts(path) == {"train_seconds": 32.5, "steps": 200}


def test_a_folder_without_stats_has_no_facts(tmp_path):
    assert checkpoint_training_facts(tmp_path) == {"train_seconds": None, "steps": None}
