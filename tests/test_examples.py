"""Every script in examples/ runs, in tiny settings, as a user would run it."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from helpers import make_generator, single_thread  # noqa: F401

from genaug import save_generator

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
# These train their own generator (and model); the rest reuse one checkpoint.
TRAINS_ITSELF = ("synthetic_dataset.py", "fewshot_heads.py")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_generator(make_generator(num_classes=10), tmp_path_factory.mktemp("ckpt") / "vae")


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {
        "torchvision_imagefolder.py",
        "albumentations_yaml.py",
        "timm_training.py",
        "synthetic_dataset.py",
        "fewshot_heads.py",
    }


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path, checkpoint, monkeypatch, capsys):
    argv = [str(script), "--tiny", "--out", str(tmp_path)]
    if script.name not in TRAINS_ITSELF:
        argv += ["--checkpoint", str(checkpoint)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()
