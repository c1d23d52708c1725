"""The bench's offline route (``offline=V``): variations of every shot made once before the
classifier trains, then drawn with the same share p, without running the generator again."""

from __future__ import annotations

import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401

from genaug import GenaugError
from genaug.bench.learn.pipeline import build_pipeline
from genaug.bench.plan.recipes import parse_condition
from genaug.data import ImageDataset


@pytest.fixture
def shots(digits16):
    """Two shots of each of five digits, uint8 at 16 px."""
    rows = torch.cat([torch.nonzero(digits16.targets == c).squeeze(1)[:2] for c in range(5)])
    return ImageDataset(digits16.images[rows], digits16.targets[rows], digits16.class_names)


def test_offline_variations_are_made_once_and_drawn_per_shot(shots, monkeypatch):
    model = make_generator("test_diffusion", num_classes=0)
    recipe = parse_condition(
        "randaugment+test_diffusion@p=1,strength=0.3,offline=3", ["test_diffusion"]
    )
    assert recipe.generative.offline == 3
    recipe = parse_condition("test_diffusion@p=1,strength=0.3,offline=3", ["test_diffusion"])
    pipeline = build_pipeline(recipe, 16, False, model, seed=0, shots=shots)
    stage = pipeline.stages[0]
    assert stage.offline.cache.shape == (10, 3, 1, 16, 16) and pipeline.offline_seconds >= 0
    cache = stage.offline.cache

    def no_generator(*args, **kwargs):
        raise AssertionError("the offline route ran the generator during training")

    monkeypatch.setattr(model, "vary", no_generator)
    images, labels = pipeline(shots.images, shots.targets)
    assert bool(pipeline.last_generated.all())
    for row in range(len(shots)):  # each shot became one of its own variations
        assert any(torch.equal(images[row], cache[row, v]) for v in range(3))
    # An image that is no shot as it stands takes a variation of a shot of its class.
    shifted = shots.images.roll(1, dims=-1)
    images, _ = pipeline(shifted, shots.targets)
    for row in range(len(shots)):
        same = (shots.targets == shots.targets[row]).nonzero().squeeze(1).tolist()
        assert any(torch.equal(images[row], cache[r, v]) for r in same for v in range(3))


def test_offline_needs_a_count_and_the_shots(shots):
    with pytest.raises(GenaugError, match="offline='0' must be a whole number >= 1"):
        parse_condition("test_diffusion@offline=0", ["test_diffusion"])
    recipe = parse_condition("test_diffusion@offline=2", ["test_diffusion"])
    with pytest.raises(GenaugError, match="offline=2 needs the labelled shots"):
        build_pipeline(recipe, 16, False, make_generator("test_diffusion", num_classes=0))


def test_a_diffusion_checkpoint_runs_online_and_offline_as_bench_arms(tmp_path):
    import json

    from genaug.bench import BenchConfig, run_bench
    from genaug.train import TrainConfig, train

    checkpoint = train(
        TrainConfig(
            model="test_diffusion",
            data="digits",
            out=str(tmp_path / "ddpm"),
            image_size=16,
            unlabeled=True,
            steps=2,
            batch_size=8,
            device="cpu",
            progress=False,
        )
    ).checkpoint
    online, offline = "test_diffusion@strength=0.3", "test_diffusion@offline=2,strength=0.3"
    config = BenchConfig(
        image_size=16,
        shots=[1],
        seeds=[0],
        model="test_resnet",
        steps=3,
        batch_size=8,
        conditions=["none", online, offline],
        generator_data=[f"checkpoint:{checkpoint}"],
        device="cpu",
        out=str(tmp_path / "bench"),
        progress=False,
        preview=0,
    )
    cells = run_bench(config).summary["shots"]["1"]["conditions"]
    assert {cell["arm"] for cell in cells} == {
        "none",
        f"{online} [checkpoint]",
        f"{offline} [checkpoint]",
    }
    lines = (tmp_path / "bench" / "runs.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    costs = {r["condition"]: r.get("offline_seconds") for r in records}
    assert costs[online] is None and costs[offline] > 0
