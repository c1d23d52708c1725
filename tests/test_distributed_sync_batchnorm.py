"""sync_batchnorm: the CPU-side rules (no-op alone, refused on several CPU processes) and the
conversion's checkpoint compatibility. The CUDA path (NCCL, real synchronisation) needs GPUs."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import pytest
import torch
from torch import nn
from torchrun_helpers import torchrun

from genaug import GenaugError, create_generator, distributed, load_generator, save_generator
from genaug.cli import main
from genaug.train import train
from genaug.train.state import EMA, save_training_checkpoint

REFUSED = "--sync-batchnorm needs CUDA"


def _count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(type(m) is kind for m in model.modules())


# ------------------------------------------------------------------------------ the rules
def test_check_decides_by_request_world_and_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert not distributed.check_sync_batchnorm(False, cpu, world=2)
    assert not distributed.check_sync_batchnorm(False, cuda, world=2)
    assert not distributed.check_sync_batchnorm(True, cpu, world=1)
    assert not distributed.check_sync_batchnorm(True, cuda, world=1)
    assert distributed.check_sync_batchnorm(True, cuda, world=4)
    with pytest.raises(GenaugError, match=f"{REFUSED} .* runs 2 processes on cpu; drop it on CPU"):
        distributed.check_sync_batchnorm(True, cpu, world=2)


def test_single_process_is_a_noop_with_one_info_line(tiny_config, digits16, caplog):
    with caplog.at_level(logging.INFO, logger="genaug"):
        result = train(tiny_config("test_gan", sync_batchnorm=True), dataset=digits16)
    notes = [r for r in caplog.records if "sync_batchnorm" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert _count(result.model, nn.SyncBatchNorm) == 0
    saved = json.loads((result.run_dir / "run_config.json").read_text())
    assert saved["sync_batchnorm"] is True


def test_several_cpu_processes_are_refused_before_training(tiny_config, monkeypatch):
    config = tiny_config(sync_batchnorm=True)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)  # as under a 2-process gloo job
    with pytest.raises(GenaugError, match=REFUSED):
        train(config)
    assert not Path(config.out).exists()  # refused before the run folder was made


def test_cli_exits_2_with_one_sentence(tiny_config, monkeypatch, capsys):
    out = tiny_config().out
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    args = ["train", "--model", "test_vae", "--out", out, "--image-size", "16"]
    status = main([*args, "--device", "cpu", "--no-progress", "--sync-batchnorm"])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("genaug: error (rank 0): --sync-batchnorm needs CUDA"), error
    assert error.count("\n") == 0 and "drop it on CPU" in error


@pytest.mark.slow
def test_two_gloo_processes_are_refused(tmp_path):
    """A real 2-process CPU job (about 7 s): every rank says why, and the job fails.

    What genaug controls is checked: each rank's sentence and a non-zero exit. How many workers
    torchrun reports with exit code 2 is not: once one worker has failed, torchrun may stop the
    other first (seen on a loaded 2-core machine), so that count is a race."""
    out = tmp_path / "run"
    args = ["train", "--model", "test_vae", "--out", str(out), "--image-size", "16"]
    process = torchrun([*args, "--device", "cpu", "--no-progress", "--sync-batchnorm"])
    assert process.returncode != 0
    # Both ranks share stderr: look for each rank's sentence, not for whole lines.
    for rank in (0, 1):
        assert f"genaug: error (rank {rank}): --sync-batchnorm needs CUDA" in process.stderr, (
            process.stderr[-3000:]
        )
    assert process.stderr.count("runs 2 processes on cpu") >= 2
    assert not out.exists()


def test_resume_may_switch_it(tiny_config, digits16):
    train(tiny_config(steps=3), dataset=digits16)
    result = train(tiny_config(resume=True, sync_batchnorm=True), dataset=digits16)
    assert result.steps == 6


# ------------------------------------------------------------------------------ conversion
@pytest.mark.parametrize("family", ["test_vae", "test_gan"])
def test_converted_model_keeps_state_dict_and_checkpoints(family, tmp_path):
    plain = create_generator(family, image_size=16, channels=1, num_classes=10)
    batchnorms = _count(plain, nn.BatchNorm2d)
    assert batchnorms > 0
    converted = create_generator(family, image_size=16, channels=1, num_classes=10)
    converted.load_state_dict(plain.state_dict())
    assert distributed.convert_sync_batchnorm(converted) is converted
    assert _count(converted, nn.SyncBatchNorm) == batchnorms
    assert _count(converted, nn.BatchNorm2d) == 0
    assert list(converted.state_dict()) == list(plain.state_dict())

    # Optimizers, a step on the CPU (one process: SyncBatchNorm falls back to plain BatchNorm).
    optimizers = converted.create_optimizers(1e-3)
    images = torch.rand(8, 1, 16, 16)
    labels = torch.arange(8) % 10
    converted.training_step(images, labels, optimizers, contextlib.nullcontext)
    ema = EMA(converted, 0.9)
    ema.update(converted, 1)
    assert _count(ema.model, nn.SyncBatchNorm) == batchnorms

    # Both checkpoint helpers write plain-model checkpoints: load_generator builds BatchNorm2d.
    save_generator(converted, tmp_path / "generator")
    save_training_checkpoint(tmp_path / "run", 1, converted, ema, optimizers, keep=1)
    for folder, source in ((tmp_path / "generator", converted), (tmp_path / "run", ema.model)):
        loaded = load_generator(folder)
        assert _count(loaded, nn.SyncBatchNorm) == 0
        assert _count(loaded, nn.BatchNorm2d) == batchnorms
        expected = source.state_dict()
        assert loaded.state_dict().keys() == expected.keys()
        assert all(torch.equal(v, expected[k].cpu()) for k, v in loaded.state_dict().items())

        # Eval mode: running statistics, no process group needed, the same samples.
        labels = torch.arange(10)
        one = source.eval().sample(10, labels, generator=torch.Generator().manual_seed(1))
        two = loaded.sample(10, labels, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(one, two)
