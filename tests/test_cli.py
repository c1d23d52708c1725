"""The command line: the documented commands work; bad input is one sentence and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from genaug import load_generator
from genaug.cli import main

TRAIN = ["train", "--model", "test_vae", "--image-size", "16", "--device", "cpu", "--no-progress"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def expect_bad_input(capsys, *argv: str, match: str) -> str:
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert "Traceback" not in err
    assert match in err, err
    return err


@pytest.fixture
def trained_run(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run_cli(
        capsys, *TRAIN, "--steps", "4", "--checkpoint-every", "2", "--out", str(out)
    )
    assert status == 0, err
    return out


def make_rgb_tree(root: Path, classes=("red", "green", "blue"), per_class: int = 4) -> Path:
    """A small ImageFolder tree of generated RGB photos of mixed sizes (one gray image too)."""
    sizes = [(40, 30), (70, 90), (64, 64), (33, 81)]
    colours = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (20, 40, 210)}
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            image = Image.new("RGB", (w, h), colours.get(name, (120, 120, 120)))
            for x in range(0, w, 7):  # some structure, not a flat colour
                for y in range(0, h, 5):
                    image.putpixel((x, y), (255, 255, 255))
            image.save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    Image.new("L", (50, 50), 90).save(root / classes[0] / "gray.png")
    return root


# ----------------------------------------------------------------------------- what works
def test_train_sample_info_end_to_end(trained_run, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    status, out, _ = run_cli(
        capsys, "sample", "--checkpoint", str(trained_run), "--n", "12", "--out", str(grid)
    )
    assert status == 0 and grid.stat().st_size > 0 and "12 samples" in out

    tree = tmp_path / "tree"
    status, _, _ = run_cli(
        capsys, "sample", "--checkpoint", str(trained_run), "--n", "20", "--out", str(tree)
    )
    assert status == 0
    classes = sorted(p.name for p in tree.iterdir() if p.name != ".genaug.lock")  # genaug.lock
    assert classes == [str(i) for i in range(10)]
    assert sum(1 for _ in tree.rglob("*.png")) == 20

    status, out, _ = run_cli(capsys, "info", "--checkpoint", str(trained_run))
    assert status == 0 and json.loads(out)["family"] == "vae"


def test_list(capsys):
    status, out, _ = run_cli(capsys, "list")
    assert status == 0 and "test_vae" in out and "imagefolder:PATH" in out


def test_imagefolder_rgb_mixed_sizes_at_64px(tmp_path, capsys):
    tree = make_rgb_tree(tmp_path / "photos")
    out = tmp_path / "run"
    status, _, err = run_cli(
        capsys,
        *TRAIN[:4],
        "64",
        *TRAIN[5:],
        "--data",
        f"imagefolder:{tree}",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--out",
        str(out),
    )
    assert status == 0, err
    model = load_generator(out)
    assert (model.image_size, model.channels, model.num_classes) == (64, 3, 3)
    assert model.class_names == ["blue", "green", "red"]
    assert model.sample(2).shape == (2, 3, 64, 64)


def test_python_dash_m_runs_without_traceback_on_bad_input(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genaug",
            "train",
            "--data",
            "nosuchdata",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().lower().startswith("genaug: error: unknown dataset")


# ----------------------------------------------------------------------------- bad input
def test_unknown_dataset(tmp_path, capsys):
    expect_bad_input(
        capsys, *TRAIN, "--data", "imagenet", "--out", str(tmp_path / "r"), match="digits"
    )


def test_unknown_model(tmp_path, capsys):
    err = expect_bad_input(
        capsys, "train", "--model", "vea", "--out", str(tmp_path / "r"), match="Unknown generator"
    )
    assert "vae" in err


def test_imagefolder_missing_empty_one_class(tmp_path, capsys):
    expect_bad_input(
        capsys,
        *TRAIN,
        "--data",
        f"imagefolder:{tmp_path / 'nope'}",
        "--out",
        str(tmp_path / "r"),
        match="does not exist",
    )
    (tmp_path / "empty").mkdir()
    expect_bad_input(
        capsys,
        *TRAIN,
        "--data",
        f"imagefolder:{tmp_path / 'empty'}",
        "--out",
        str(tmp_path / "r"),
        match="empty",
    )
    make_rgb_tree(tmp_path / "one", classes=("only",))
    expect_bad_input(
        capsys,
        *TRAIN,
        "--data",
        f"imagefolder:{tmp_path / 'one'}",
        "--out",
        str(tmp_path / "r"),
        match="one class",
    )


def test_unreadable_file_is_named(tmp_path, capsys):
    tree = make_rgb_tree(tmp_path / "photos")
    (tree / "red" / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="broken.png"):
        status, _, err = run_cli(
            capsys,
            *TRAIN,
            "--data",
            f"imagefolder:{tree}",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "r"),
        )
    assert status == 0, err


@pytest.mark.parametrize("size", ["48", "8", "256"])
def test_image_size_not_power_of_two(tmp_path, capsys, size):
    expect_bad_input(
        capsys, *TRAIN[:4], size, *TRAIN[5:], "--out", str(tmp_path / "r"), match="power of two"
    )


@pytest.mark.parametrize("steps", ["0", "-5", "ten"])
def test_steps_must_be_positive(tmp_path, capsys, steps):
    expect_bad_input(
        capsys, *TRAIN, "--steps", steps, "--out", str(tmp_path / "r"), match="--steps"
    )


def test_missing_and_truncated_weights(trained_run, tmp_path, capsys):
    """A damaged checkpoint given by hand is refused; a run folder falls back to its newest
    good checkpoint with a notice; a run with no good checkpoint is refused."""
    newest = trained_run / "checkpoints" / "step_0000004"
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    grid = ["--out", str(tmp_path / "g.png")]
    expect_bad_input(capsys, "sample", "--checkpoint", str(newest), *grid, match="truncated")
    status, _, err = run_cli(capsys, "sample", "--checkpoint", str(trained_run), *grid)
    assert status == 0, err
    assert err.startswith("genaug: notice: using ") and err.count("\n") == 1, err
    assert "step_0000002" in err and "skipped step_0000004 (model.safetensors is unreadable" in err
    weights.unlink()
    expect_bad_input(capsys, "sample", "--checkpoint", str(newest), *grid, match="missing")
    (trained_run / "checkpoints" / "step_0000002" / "model.safetensors").unlink()
    expect_bad_input(
        capsys, "sample", "--checkpoint", str(trained_run), *grid, match="no usable checkpoint"
    )


def load_generator_dir(run):
    from genaug.models.checkpoint import resolve_checkpoint_dir

    return resolve_checkpoint_dir(run)


def test_unknown_family_and_newer_format(trained_run, capsys):
    config_path = load_generator_dir(trained_run) / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "family": "flow"}))
    expect_bad_input(
        capsys, "info", "--checkpoint", str(trained_run), match="Unknown generator family 'flow'"
    )
    config_path.write_text(json.dumps({**config, "format_version": 99}))
    expect_bad_input(capsys, "info", "--checkpoint", str(trained_run), match="upgrade genaug")


def test_resume_without_checkpoint(tmp_path, capsys):
    expect_bad_input(
        capsys, *TRAIN, "--resume", "--out", str(tmp_path / "r"), match="no run to resume"
    )


def test_out_holding_a_different_run(trained_run, capsys):
    expect_bad_input(
        capsys,
        *TRAIN,
        "--steps",
        "4",
        "--seed",
        "3",
        "--out",
        str(trained_run),
        match="--overwrite",
    )
    expect_bad_input(
        capsys,
        *TRAIN,
        "--steps",
        "8",
        "--seed",
        "3",
        "--resume",
        "--out",
        str(trained_run),
        match="different settings (seed)",
    )
    status, _, _ = run_cli(
        capsys, *TRAIN, "--steps", "4", "--seed", "3", "--overwrite", "--out", str(trained_run)
    )
    assert status == 0


def test_sample_out_with_other_suffix(trained_run, tmp_path, capsys):
    expect_bad_input(
        capsys,
        "sample",
        "--checkpoint",
        str(trained_run),
        "--out",
        str(tmp_path / "x.jpg"),
        match=".png",
    )


def test_cuda_without_gpu(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    expect_bad_input(
        capsys, *TRAIN[:-3], "--device", "cuda", "--out", str(tmp_path / "r"), match="no CUDA GPU"
    )


# ----------------------------------------------------------------------------- kill -9 and resume
@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    out = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "genaug",
        *TRAIN,
        "--steps",
        "800",
        "--checkpoint-every",
        "25",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    latest = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        latest.is_file() and latest.read_text().strip() >= "step_0000050"
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = int(latest.read_text().strip().split("_")[1])
    assert 50 <= killed_at < 800
    load_generator(out)  # what the crash left is a loadable checkpoint

    resumed = subprocess.run(
        [*argv[:-2], "--resume", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert latest.read_text().strip() == "step_0000800"
    steps = [json.loads(line)["step"] for line in (out / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 800  # no step logged twice
    assert load_generator(out).sample(2).shape == (2, 1, 16, 16)


def test_model_args_reach_the_family_and_bad_ones_are_refused(tmp_path, capsys):
    out = tmp_path / "beta"
    argv = ["train", "--model", "test_pairvae", "--data", "digits", "--image-size", "16"]
    argv += ["--steps", "2", "--batch-size", "8", "--device", "cpu", "--no-progress"]
    status, _, err = run_cli(capsys, *argv, "--model-arg", "beta=2.5", "--out", str(out))
    assert status == 0, err
    assert load_generator(out).config["beta"] == 2.5
    expect_bad_input(
        capsys,
        *argv,
        "--model-arg",
        "nosuch=1",
        "--out",
        str(tmp_path / "a"),
        match="generator 'test_pairvae' takes no argument 'nosuch'",
    )
    expect_bad_input(
        capsys, *argv, "--model-arg", "beta", "--out", str(tmp_path / "b"), match="KEY=VALUE"
    )
