"""A bench config's parts: their checks, the grid they plan, one resumable command for a whole
publication, and every committed bench config (its parts the published cells)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genaug.bench import BenchConfig, build_bench_config
from genaug.bench.plan.arms import plan_grid
from genaug.bench.plan.parts import normalise_parts, parts_axes
from genaug.bench.run.ledger import read_runs
from genaug.cli import main
from genaug.data import load_dataset
from genaug.errors import GenaugError
from genaug.models import list_generators

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted([*ROOT.glob("benchmarks/*.yaml"), *ROOT.glob("benchmarks/experiments/*.yaml")])
NAMES = list_generators()


@pytest.fixture(scope="module")
def digits16():
    return load_dataset("digits", image_size=16)


# ------------------------------------------------------------------------- the setting's shape
def test_parts_are_normalised_and_inline_options_stay_together():
    parts = normalise_parts(
        [
            {"name": "a", "conditions": "none,vae@p=1,mode=neighbour", "shots": 2},
            # a YAML flow list [vae@p=1,mode=neighbour] arrives split at its commas
            {"conditions": ["vae@p=1", "mode=neighbour"], "generator_data": "pool,labeled"},
        ]
    )
    assert parts == [
        {"name": "a", "conditions": ["none", "vae@p=1,mode=neighbour"], "shots": [2]},
        {"conditions": ["vae@p=1,mode=neighbour"], "generator_data": ["pool", "labeled"]},
    ]
    assert normalise_parts(None) == [] and normalise_parts([]) == []


@pytest.mark.parametrize(
    "parts, match",
    [
        ({"conditions": ["none"]}, "must be a list of mappings"),
        (["none"], "part 1 must be a mapping"),
        ([{"name": "x", "conditions": ["none"], "seeds": [1]}], "part 'x' has unknown keys seeds"),
        ([{"shots": [1]}], "part 1: conditions must be a non-empty list"),
        ([{"conditions": ["none"], "shots": [0]}], "shots must be a non-empty list of integers"),
        ([{"conditions": ["none", "none"]}], "lists a conditions entry twice"),
    ],
)
def test_malformed_parts_are_one_sentence(parts, match):
    with pytest.raises(GenaugError, match=match):
        normalise_parts(parts)
    with pytest.raises(GenaugError, match=match):
        BenchConfig(parts=parts).validate()


def test_a_files_parts_lie_within_its_axes_and_fill_the_missing_ones():
    values = {
        "parts": [
            {"conditions": ["none", "test_vae@p=1.0"], "shots": [2]},
            {"conditions": ["randaugment+test_vae@p=1.0"], "shots": [5, 2]},
        ]
    }
    filled = parts_axes(values, NAMES)
    assert filled["conditions"] == ["none", "test_vae@p=1.0", "randaugment+test_vae@p=1.0"]
    assert filled["shots"] == [2, 5] and "generator_data" not in filled
    # Spelled differently, the same condition (its canonical name) is within the axes.
    spelled = {"conditions": ["vae@p=1.0,hops=6"], "parts": [{"conditions": ["vae@hops=6,p=1.0"]}]}
    parts_axes(spelled, NAMES)
    outside = {"conditions": ["none"], "parts": [{"name": "b", "conditions": ["randaugment"]}]}
    with pytest.raises(GenaugError, match="part 'b' names condition 'randaugment'.*add it"):
        parts_axes(outside, NAMES, "f.yaml")
    with pytest.raises(GenaugError, match="part 1 names shots 3"):
        parts_axes({"shots": [1], "parts": [{"conditions": ["none"], "shots": [3]}]}, NAMES)


# ----------------------------------------------------------------------------- the grid
def grid_config(**overrides) -> BenchConfig:
    values = dict(
        image_size=16,
        shots=[1, 2],
        seeds=[0],
        conditions=["none", "randaugment+test_vae", "test_gan"],
        generator_data=["pool", "labeled"],
        parts=[
            {"conditions": ["none"]},
            {"conditions": ["randaugment+test_vae"], "shots": [2], "generator_data": ["pool"]},
            {"conditions": ["test_gan", "randaugment+test_vae"], "generator_data": ["labeled"]},
        ],
    )
    values.update(overrides)
    return BenchConfig(**values).validate()


def labels(arms) -> list[str]:
    return [a.label for a in arms]


def test_parts_plan_the_union_of_their_cells_in_the_axes_order(digits16):
    grid = plan_grid(grid_config(), digits16)
    assert labels(grid.arms) == [
        "none",
        "randaugment+test_vae [pool]",
        "randaugment+test_vae [labeled]",
        "test_gan [labeled]",
    ]
    assert {k: labels(v) for k, v in grid.cells.items()} == {
        1: ["none", "randaugment+test_vae [labeled]", "test_gan [labeled]"],
        2: labels(grid.arms),
    }
    assert len(grid.runs([0, 1])) == 2 * (3 + 4)
    # Without parts: every arm at every shot count (test_gan from the pool cannot run).
    skipped: list[dict[str, str]] = []
    whole = plan_grid(grid_config(parts=[]), digits16, skipped)
    assert whole.cells == {1: whole.arms, 2: whole.arms} and len(whole.arms) == 4
    assert [s["arm"] for s in skipped] == ["test_gan [pool]"]


def test_narrowed_axes_select_within_the_parts(digits16):
    grid = plan_grid(grid_config(shots=[1], generator_data=["pool"]), digits16)
    assert {k: labels(v) for k, v in grid.cells.items()} == {1: ["none"]}
    with pytest.raises(GenaugError, match="no cell of the grid's parts"):
        plan_grid(
            grid_config(shots=[1], conditions=["test_gan"], generator_data=["pool"]), digits16
        )
    with pytest.raises(GenaugError, match="cannot run with generator data pool"):
        parts = [{"conditions": ["test_gan"], "generator_data": ["pool"]}]
        plan_grid(grid_config(parts=parts), digits16)


# --------------------------------------------------------------- one command, resumable
BENCH_YAML = """
data: digits
image_size: 16
seeds: [0, 1]
model: test_resnet
steps: 3
batch_size: 8
preview: 0
device: cpu
conditions: [none, flipcrop, affine]
parts:
  - {name: all, conditions: [none, flipcrop]}
  - {name: two, conditions: [affine], shots: [2]}
shots: [1, 2]
"""


def test_one_command_runs_the_grid_and_reuses_a_part_commands_runs(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "bench"
    # A part command as the publications ran them before: its own conditions and shots.
    status = main(
        ["bench", "--conditions", "none", "--shots", "1", "--seeds", "0,1", "--out", str(out)]
        + ["--data", "digits", "--image-size", "16", "--model", "test_resnet", "--steps", "3"]
        + ["--batch-size", "8", "--preview", "0", "--device", "cpu", "--no-progress"]
    )
    assert status == 0
    first = read_runs(out / "runs.jsonl")
    assert sorted(first) == ["1|0|none|-", "1|1|none|-"]
    config = tmp_path / "grid.yaml"
    config.write_text(BENCH_YAML)
    base = ["bench", "--config", str(config), "--out", str(out), "--resume", "--no-progress"]
    assert main([*base, "--shots", "1"]) == 0  # flags narrow the parts: 1 shot only
    assert "2 runs done now, 2 found finished" in capsys.readouterr().out
    assert main(base) == 0  # the whole grid: only the missing cells run
    assert "6 runs done now, 4 found finished" in capsys.readouterr().out
    runs = read_runs(out / "runs.jsonl")
    assert len(runs) == 2 * (2 + 3) and all(runs[k] == v for k, v in first.items())
    assert {k for k in runs if "affine" in k} == {"2|0|affine|-", "2|1|affine|-"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["runs_expected"] == 10
    assert main([*base[:-1], "--report-only"]) == 0
    wrong = ["--conditions", "randaugment", "--out", str(tmp_path / "x")]
    assert main(["bench", "--config", str(config), *wrong]) == 2
    assert "no cell of the grid's parts" in capsys.readouterr().err


# -------------------------------------------------------------- the committed bench configs
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_bench_config_parses(path):
    config = build_bench_config(path).validate()
    assert config.conditions and config.shots and config.seeds


def test_the_committed_configs_are_found():
    names = {str(p.relative_to(ROOT)) for p in CONFIGS}
    assert {"benchmarks/digits_guided.yaml", "benchmarks/digits.yaml"} <= names
    assert any(name.startswith("benchmarks/experiments/") for name in names)


def test_digits_guided_parts_are_exactly_the_published_runs():
    config = build_bench_config(ROOT / "benchmarks/digits_guided.yaml").validate()
    dataset = load_dataset(config.data, image_size=config.image_size, channels=config.channels)
    skipped: list[dict[str, str]] = []
    grid = plan_grid(config, dataset, skipped)
    keys = {f"{k}|{s}|{arm.key}" for k, s, arm in grid.runs(config.seeds)}
    published = read_runs(ROOT / "benchmarks/results/digits-guided_runs.jsonl")
    assert keys == set(published) and len(keys) == 630 and not skipped
