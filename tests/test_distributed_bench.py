"""torchrun bench: 2 ranks share a tiny grid by seed and give the same runs as 1 process."""

from __future__ import annotations

import json

import pytest
import torch
from torchrun_helpers import torchrun

from genaug.bench import BenchConfig, read_runs, run_bench

# What depends on where and when a run ran, not on what it computed.
TIMING = {"train_seconds", "augment_seconds", "augment_ms_per_step", "finished", "generator"}


def _settings(out) -> dict:
    return dict(
        image_size=16,
        shots=[1],
        seeds=[0, 1, 2],
        model="test_resnet",
        steps=3,
        batch_size=8,
        conditions=["none", "flipcrop", "test_vae"],
        generator_data=["pool"],
        generators={"test_vae": {"steps": 4, "batch_size": 16}},
        device="cpu",
        out=str(out),
        progress=False,
        preview=0,
    )


@pytest.mark.slow
def test_two_rank_bench_equals_one_process_bench(tmp_path):
    config_file = tmp_path / "bench.json"
    config_file.write_text(json.dumps({k: v for k, v in _settings("x").items() if k != "out"}))
    two = tmp_path / "two"
    process = torchrun(["bench", "--config", str(config_file), "--out", str(two)])
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.count("runs done now") == 1  # rank 0 reports for the job
    assert not list(two.glob("runs.rank*.jsonl"))  # merged into runs.jsonl
    assert (two / "summary.md").is_file()
    # Each seed's generator was trained once, by the rank that owns the seed.
    assert sorted(p.name for p in (two / "generators").iterdir()) == [
        f"test_vae-pool-seed{s}" for s in (0, 1, 2)
    ]

    torch.set_num_threads(1)
    run_bench(BenchConfig(**_settings(tmp_path / "one")))
    one_runs, two_runs = read_runs(tmp_path / "one" / "runs.jsonl"), read_runs(two / "runs.jsonl")
    assert sorted(two_runs) == sorted(one_runs) and len(one_runs) == 9
    for key, record in one_runs.items():
        same = {k: v for k, v in record.items() if k not in TIMING}
        assert {k: v for k, v in two_runs[key].items() if k not in TIMING} == same, key
    one_summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    two_summary = json.loads((two / "summary.json").read_text())
    assert one_summary.keys() == two_summary.keys()
