"""``genaug demo``: its settings are the issue's, and the whole path runs (tiny models here)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import genaug.demo as demo_module
from genaug.bench.plan.arms import plan_arms
from genaug.cli import main
from genaug.data import load_dataset


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_demo_measures_what_the_readme_promises():
    config = demo_module.demo_config("unused").validate()
    assert (config.data, config.shots, config.seeds) == ("digits", [1, 5], [0, 1, 2])
    assert config.conditions == ["none", "randaugment", "vae", "randaugment+vae"]
    assert config.generator_data == ["pool"]  # the VAE never sees a pool label
    # The pool does not depend on the seed: one VAE for the three seeds (issue 15).
    assert config.pool_per_seed is False
    assert config.model == "resnet10t" and config.steps == 300
    arms = plan_arms(config, load_dataset("digits", image_size=16))
    walks = {
        (g.mode, g.hops, g.guide, g.walk, g.detail, g.jitter)
        for g in (a.recipe.generative for a in arms)
        if g
    }
    # The VAE's variation of the pool image the guided walk reaches (digits-guided.md).
    assert walks == {("neighbour", 6, True, "whole", 1.0, 0.5)}


def test_the_demo_runs_end_to_end_and_prints_its_table(tmp_path, monkeypatch, capsys):
    real = demo_module.demo_config

    def tiny(out, steps=None, device="auto"):
        config = real(out, steps, device)
        return dataclasses.replace(
            config,
            model="test_resnet",
            steps=3,
            batch_size=8,
            image_size=16,
            seeds=[0, 1],
            generators={"vae": {**config.generators["vae"], "steps": 3, "batch_size": 16}},
            progress=False,
        )

    monkeypatch.setattr(demo_module, "demo_config", tiny)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "randaugment+vae" in printed and "summary.md" in printed
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert set(summary["shots"]) == {"1", "5"}
    runs = (tmp_path / "demo" / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 2 * 2 * 4  # shots x seeds x conditions
    # One VAE trained, shared by both seeds and shot counts.
    assert [p.name for p in (tmp_path / "demo" / "generators").iterdir()] == ["vae-pool-shared"]
    # Run again: everything is reused, nothing retrained.
    assert main(["demo", "--out", str(tmp_path / "demo"), "--device", "cpu"]) == 0
    assert len((tmp_path / "demo" / "runs.jsonl").read_text().splitlines()) == len(runs)
