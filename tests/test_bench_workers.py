"""Parallel classifier runs (BenchConfig.workers): the same records as one process, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genaug.bench import BenchConfig, read_runs, run_bench
from genaug.errors import GenaugError

# Run-specific fields that may differ between processes (timings, wall-clock stamps).
VOLATILE = {"train_seconds", "augment_seconds", "augment_ms_per_step", "finished", "generator"}


def tiny(out: Path, **overrides) -> BenchConfig:
    values = dict(
        image_size=16,
        shots=[1],
        seeds=[0, 1],
        model="test_resnet",
        steps=3,
        batch_size=8,
        conditions=["none", "randaugment", "test_vae", "randaugment+test_vae"],
        generator_data=["pool"],
        generators={"test_vae": {"steps": 4, "batch_size": 16}},
        pool_per_seed=False,
        device="cpu",
        out=str(out),
        progress=False,
        preview=0,
    )
    values.update(overrides)
    return BenchConfig(**values)


def stable(records: dict) -> dict:
    return {key: {k: v for k, v in r.items() if k not in VOLATILE} for key, r in records.items()}


@pytest.mark.slow
def test_two_workers_give_the_records_of_one_process(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers run one thread each: compare like with like
    try:
        one = run_bench(tiny(tmp_path / "one"))
        two = run_bench(tiny(tmp_path / "two", workers=2))
    finally:
        torch.set_num_threads(threads)
    assert one.ran == two.ran == 8
    a, b = read_runs(tmp_path / "one" / "runs.jsonl"), read_runs(tmp_path / "two" / "runs.jsonl")
    assert stable(a) == stable(b)  # accuracies, fingerprints, keys: identical
    # one shared pool generator, trained by the main process before the workers start
    assert sorted(p.name for p in (tmp_path / "two" / "generators").iterdir()) == [
        "test_vae-pool-shared"
    ]
    again = run_bench(tiny(tmp_path / "two", workers=2, resume=True))
    assert again.ran == 0 and again.reused == 8


def test_workers_must_be_a_positive_integer(tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(GenaugError, match="workers must be an integer >= 1"):
            tiny(tmp_path, workers=bad).validate()


def test_workers_are_refused_on_a_gpu(tmp_path, monkeypatch):
    from genaug.bench.run import workers

    monkeypatch.setattr(workers, "resolve_device", lambda spec: torch.device("cuda"))
    with pytest.raises(GenaugError, match="use workers 1 on a GPU"):
        workers.check_workers(tiny(tmp_path, workers=2, device="cuda"))


def test_a_worker_ends_when_its_main_process_is_gone(monkeypatch):
    # a worker whose main process was killed outright is re-parented: getppid changes
    from genaug.bench.run import workers

    parents = iter([41, 41, 7])
    monkeypatch.setattr(workers.os, "getppid", lambda: next(parents))
    ended = []

    def fake_exit(code):
        ended.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(workers.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        workers.exit_with_parent(41, interval=0.0)
    assert ended == [1]


def test_a_worker_watches_the_main_process_that_started_it(tmp_path, monkeypatch):
    # The main process's pid travels with the worker's start: a main process killed while its
    # workers still import torch has re-parented them already, and they must end too (their
    # parent then is no longer the pid they were given).
    from genaug.bench.run import workers

    watched = []

    class Thread:
        def __init__(self, target, args, daemon):
            watched.append((target, args, daemon))

        def start(self):
            pass

    monkeypatch.setattr(workers.threading, "Thread", Thread)
    threads = torch.get_num_threads()
    try:
        workers._start_worker(tiny(tmp_path).to_dict(), str(tmp_path), 4242)
    finally:
        torch.set_num_threads(threads)
        workers._WORKER.clear()
    assert watched == [(workers.exit_with_parent, (4242,), True)]
    ended = []

    def fake_exit(code):
        ended.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(workers.os, "getppid", lambda: 1)  # already re-parented
    monkeypatch.setattr(workers.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        workers.exit_with_parent(4242, interval=0.0)
    assert ended == [1]
