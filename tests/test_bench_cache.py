"""The bench's generator cache: per-seed generators by default, one shared pool generator on
request (``pool_per_seed=False``, what ``genaug demo`` uses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import genaug.train
from genaug import distributed
from genaug.bench import BenchConfig, build_bench_config, read_runs, run_bench
from genaug.bench.run.cache import SHARED_POOL_SEED, GeneratorCache
from genaug.data import load_dataset
from genaug.errors import GenaugError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(out: Path, **overrides) -> BenchConfig:
    values = dict(
        image_size=16,
        shots=[1],
        seeds=[0, 1, 2],
        model="test_resnet",
        steps=2,
        batch_size=8,
        conditions=["none", "test_vae"],
        generator_data=["pool"],
        generators={"test_vae": {"steps": 3, "batch_size": 16}},
        device="cpu",
        out=str(out),
        progress=False,
        preview=0,
        resume=True,
    )
    values.update(overrides)
    return BenchConfig(**values)


@pytest.fixture
def trainings(monkeypatch):
    """Every generator training the bench starts, as (output folder, seed)."""
    calls: list[tuple[str, int]] = []
    real = genaug.train.train

    def counted(config, **kwargs):
        calls.append((Path(config.out).name, config.seed))
        return real(config, **kwargs)

    monkeypatch.setattr(genaug.train, "train", counted)
    return calls


def test_a_shared_pool_trains_one_generator_for_every_seed(tmp_path, trainings):
    out = tmp_path / "run"
    config = tiny_config(out, generator_data=["labeled", "pool"], pool_per_seed=False)
    result = run_bench(config)
    assert result.ran == 3 * 3  # none + test_vae [labeled] + test_vae [pool], 3 seeds
    # One pool generator (trained with seed 0) for the three seeds; labelled ones stay per seed.
    pool = [c for c in trainings if "pool" in c[0]]
    assert pool == [("test_vae-pool-shared", SHARED_POOL_SEED)]
    assert sorted(c[0] for c in trainings if "labeled" in c[0]) == [
        f"test_vae-labeled-seed{s}-shots1" for s in (0, 1, 2)
    ]
    records = [r for r in read_runs(out / "runs.jsonl").values() if r["source"] == "pool"]
    assert sorted(r["seed"] for r in records) == [0, 1, 2]
    assert {r["generator"]["folder"] for r in records} == {"generators/test_vae-pool-shared"}
    assert {r["key"] for r in records} == {f"1|{s}|test_vae|pool" for s in (0, 1, 2)}
    # Resumable: run again, nothing is trained; a fourth seed reuses the shared generator.
    trainings.clear()
    assert run_bench(config).ran == 0
    config.seeds = [0, 1, 2, 3]
    assert run_bench(config).ran == 3
    assert [c for c in trainings if "pool" in c[0]] == []
    # A bench with per-seed pool generators measured something else: never mixed.
    with pytest.raises(GenaugError, match=r"different settings \(pool_per_seed\)"):
        run_bench(tiny_config(out, generator_data=["labeled", "pool"]))


def test_per_seed_pool_generators_stay_the_default(tmp_path, trainings):
    run_bench(tiny_config(tmp_path / "run", seeds=[0, 1]))
    assert trainings == [("test_vae-pool-seed0", 0), ("test_vae-pool-seed1", 1)]


def test_the_published_benchmark_keeps_its_per_seed_generators():
    config = build_bench_config(ROOT / "benchmarks" / "digits_guided.yaml").validate()
    assert config.pool_per_seed is True
    cache = GeneratorCache(Path("generators"), config, load_dataset("digits", image_size=16))
    lines = (ROOT / "benchmarks" / "results" / "digits-guided_runs.jsonl").read_text()
    checked = 0
    for line in lines.splitlines():
        record = json.loads(line)
        facts = record["generator"]
        if record["source"] != "pool" or not facts:
            continue
        name = Path(facts["folder"]).name.split("-pool-")[0]
        folder = cache.folder(name, "pool", record["seed"], record["shots"])
        assert folder.as_posix() == facts["folder"] and facts["seed"] == record["seed"]
        checked += 1
    assert checked > 0


def test_a_shared_pool_is_refused_under_torchrun(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    dataset = load_dataset("digits", image_size=16)
    config = tiny_config(tmp_path, pool_per_seed=False)
    with pytest.raises(GenaugError, match="run it in one process, or set pool_per_seed true"):
        GeneratorCache(tmp_path / "generators", config, dataset)
    GeneratorCache(tmp_path / "generators", tiny_config(tmp_path), dataset)  # per seed: fine


def test_pool_per_seed_must_be_a_bool(tmp_path):
    with pytest.raises(GenaugError, match="pool_per_seed must be true or false"):
        tiny_config(tmp_path, pool_per_seed="no").validate()
