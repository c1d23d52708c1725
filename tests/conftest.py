"""Shared fixtures: fixed seeds, small real datasets, tiny training configs."""

from __future__ import annotations

import pytest
import torch

from genaug.data import load_dataset
from genaug.train import TrainConfig

# One thread: on a 2-core CI machine two torch threads contend with pytest and
# DataLoader workers and run 10-100x slower than one.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fixed_seed():
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def digits16():
    """scikit-learn's bundled digits (real, 1,797 images) at 16 px, 1 channel."""
    return load_dataset("digits", image_size=16)


@pytest.fixture
def tiny_config(tmp_path):
    """A training config that runs in about a second on a CPU."""

    def make(model: str = "test_vae", **overrides) -> TrainConfig:
        values = dict(
            model=model,
            data="digits",
            out=str(tmp_path / f"run-{model}"),
            image_size=16,
            steps=6,
            batch_size=16,
            checkpoint_every=3,
            log_every=2,
            device="cpu",
            progress=False,
        )
        values.update(overrides)
        return TrainConfig(**values)

    return make


@pytest.fixture(scope="session")
def seen_dagan(digits16, tmp_path_factory):
    """A test_dagan trained a few steps on digits classes 0-4 only (16 px), and its checkpoint:
    classes 5-9 are ones it never saw. Returns ``(model, checkpoint_dir)``."""
    from genaug.train import train

    seen = digits16.subset(torch.nonzero(digits16.targets < 5).squeeze(1))
    config = TrainConfig(
        model="test_dagan",
        data="digits",
        out=str(tmp_path_factory.mktemp("dagan") / "run"),
        image_size=16,
        steps=6,
        batch_size=16,
        checkpoint_every=6,
        log_every=3,
        device="cpu",
        progress=False,
    )
    torch.manual_seed(0)
    result = train(config, dataset=seen)
    return result.model.eval(), result.checkpoint
