"""Nothing lost under faults (issue 22): each fault injected with real files; the command meeting
it runs through the CLI, in a real `genaug` process for the cases the issue saw end in a
traceback (a full disk, a read-only folder, a diverging run), else in this process. Each case
checks exit 2, one sentence and no traceback (or the notice, where genaug works around the
fault), that the last good checkpoint still loads, and that `--resume` reaches the final step.

A full disk is a small tmpfs and a read-only folder a read-only bind mount; both need root and
mount(8): elsewhere those cases are skipped with the reason, and a fake ``os.replace`` raising
ENOSPC covers the checkpoint write.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genaug import GenaugError, GenaugNotice, load_generator, save_generator
from genaug.cli import main
from genaug.models.registry import create_generator
from genaug.train import TrainConfig, train
from genaug.train.stats import STATS

pytestmark = pytest.mark.slow  # a few `genaug` processes and short trainings

REPO = Path(__file__).resolve().parents[1]
TRAIN = [
    "train",
    "--model",
    "test_vae",
    "--image-size",
    "16",
    "--batch-size",
    "16",
    "--checkpoint-every",
    "10",
    "--log-every",
    "10",
    "--device",
    "cpu",
    "--no-progress",
]
FINAL = 50  # every recovery trains the 40-step run on to this step


# ------------------------------------------------------------------------------ helpers
def genaug(*argv: str) -> subprocess.CompletedProcess:
    """Run ``python -m genaug ARGV`` in a fresh process."""
    command = [sys.executable, "-m", "genaug", *argv]
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1", PYTHONPATH=str(REPO))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def assert_one_sentence(process: subprocess.CompletedProcess | tuple, *fragments: str) -> str:
    """Exit 2, no traceback, exactly one `genaug: error:` line holding every fragment; the
    process is a CompletedProcess or what :func:`cli` returns."""
    status, err = (process.returncode, process.stderr) if hasattr(process, "stderr") else process
    assert status == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("genaug: error:")]
    assert len(errors) == 1, err[-3000:]
    assert errors[0].endswith("."), errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the CLI in this process: (status, stderr)."""
    capsys.readouterr()
    status = main(list(argv))
    return status, capsys.readouterr().err


def step_dir(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:07d}"


def assert_recovers(capsys, run: Path, good: int, *extra: str) -> str:
    """The checkpoint of ``good`` loads, and `--resume` trains on to step FINAL; the stderr."""
    assert load_generator(step_dir(run, good)).family == "vae"
    status, err = cli(capsys, *TRAIN, "--out", str(run), "--resume", "--steps", str(FINAL), *extra)
    assert status == 0, err
    stats = [json.loads(line) for line in (run / STATS).read_text().splitlines()]
    assert stats[-1]["step"] == FINAL and "alarm" not in stats[-1]
    assert json.loads((step_dir(run, FINAL) / "config.json").read_text())["step"] == FINAL
    assert load_generator(run).family == "vae"
    return err


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """test_vae on digits at 16 px, 40 steps, a checkpoint every 10 (step_30 and step_40 kept)."""
    out = tmp_path_factory.mktemp("base") / "run"
    torch.manual_seed(0)
    config = TrainConfig(
        model="test_vae",
        image_size=16,
        batch_size=16,
        steps=40,
        checkpoint_every=10,
        log_every=10,
        device="cpu",
        progress=False,
        out=str(out),
    )
    train(config)
    return out


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    """A copy of the base run to damage."""
    return Path(shutil.copytree(base_run, tmp_path / "run"))


class Mounts:
    """tmpfs and read-only bind mounts, unmounted at the end of the test."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def _mount(self, *args: str) -> None:
        result = subprocess.run(["mount", *args], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"mount {' '.join(args)} is not permitted here: {result.stderr.strip()}")

    def tmpfs(self, point: Path, size_kib: int) -> Path:
        point.mkdir(parents=True, exist_ok=True)
        self._mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(point))
        self.points.append(point)
        return point

    def read_only(self, folder: Path) -> Path:
        self._mount("--bind", str(folder), str(folder))
        self.points.append(folder)
        self._mount("-o", "remount,ro,bind", str(folder))
        return folder

    def close(self) -> None:
        for point in reversed(self.points):
            subprocess.run(["umount", str(point)], capture_output=True)


@pytest.fixture
def mounts():
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a tmpfs or a read-only bind mount needs root and mount(8)")
    helper = Mounts()
    yield helper
    helper.close()


def fill_disk(folder: Path, leave_kib: int) -> Path:
    """Fill the file system of ``folder`` up to ``leave_kib`` KiB; the filler file."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    filler = folder / "filler.bin"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(free - leave_kib * 1024, 0))
    return filler


# ------------------------------------------------------------------------------ 1. damaged newest
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(run, capsys):
    weights = step_dir(run, 40) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # Given by hand it is refused, in one sentence naming the file.
    assert_one_sentence(
        cli(capsys, "info", "--checkpoint", str(step_dir(run, 40))), str(weights), "truncated"
    )
    # The run folder: its newest good checkpoint, with a notice of what was skipped.
    with pytest.warns(GenaugNotice, match="skipped step_0000040 .model.safetensors is unreadable"):
        assert load_generator(run).family == "vae"
    # Deleted as an older genaug told: `latest` names a missing folder; the run still works.
    shutil.rmtree(step_dir(run, 40))
    status, err = cli(capsys, "info", "--checkpoint", str(run))
    assert status == 0 and "names 'step_0000040', which is missing" in err, err
    assert_recovers(capsys, run, 30)


def test_no_good_checkpoint_says_what_overwrite_deletes(run, capsys):
    for step in (30, 40):
        (step_dir(run, step) / "model.safetensors").write_bytes(b"\0" * 100)
    process = cli(capsys, *TRAIN, "--out", str(run), "--resume", "--steps", str(FINAL))
    assert_one_sentence(
        process, "no usable checkpoint", "step_0000030 (model.safetensors", "--overwrite, which"
    )


# ------------------------------------------------------------------------------ 2. foreign weights
def test_weights_of_another_family_are_named_not_blamed_on_a_version(run, capsys, tmp_path):
    gan = save_generator(create_generator("test_gan", image_size=16), tmp_path / "gan")
    shutil.copy(gan / "model.safetensors", step_dir(run, 40) / "model.safetensors")
    line = assert_one_sentence(
        cli(capsys, "info", "--checkpoint", str(step_dir(run, 40))),
        "does not match its config.json",
    )
    assert "version" not in line
    err = assert_recovers(capsys, run, 30)
    assert "skipped step_0000040 (model.safetensors does not match" in err, err
    assert "moved step_0000040 aside" in err, err
    assert (run / "checkpoints" / "set_aside" / "step_0000040" / "model.safetensors").is_file()


# ------------------------------------------------------------------------------ 3. divergence
def test_non_finite_weights_are_never_checkpointed(tmp_path, monkeypatch, capsys):
    from genaug.models.vae import VAE

    original, calls = VAE.training_step, []

    def poisoned(self, *args, **kwargs):
        losses = original(self, *args, **kwargs)  # the loss of this step is finite
        calls.append(1)
        if len(calls) == 20:  # then the update leaves the weights NaN
            with torch.no_grad():
                next(self.parameters()).fill_(float("nan"))
        return losses

    monkeypatch.setattr(VAE, "training_step", poisoned)
    run = tmp_path / "run"
    assert_one_sentence(
        cli(capsys, *TRAIN, "--out", str(run), "--steps", "40"),
        "by step 20",
        "weights are not finite",
        "the checkpoint of step 10 is kept",
    )
    assert not step_dir(run, 20).exists()
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_0000010"
    last = json.loads((run / STATS).read_text().splitlines()[-1])
    assert last["step"] == 20 and "not finite" in last["alarm"]
    monkeypatch.undo()
    status, err = cli(capsys, *TRAIN, "--out", str(run), "--resume", "--steps", str(FINAL))
    assert status == 0, err
    assert load_generator(run).family == "vae"


def test_a_huge_learning_rate_stops_although_the_loss_stays_finite(tmp_path):
    run = tmp_path / "run"
    process = genaug(*TRAIN, "--out", str(run), "--steps", "40", "--lr", "1e6")
    assert_one_sentence(process, "Training diverged by step 10", "times its value at the first")
    last = json.loads((run / STATS).read_text().splitlines()[-1])
    assert "times its value" in last["alarm"]
    assert all(abs(v) < float("inf") for k, v in last.items() if k in ("loss", "kl", "recon"))
    assert not (run / "checkpoints").exists() or not list((run / "checkpoints").glob("step_*"))


def test_samples_collapsing_to_one_image_stop_the_run(run, monkeypatch, capsys):
    from genaug.train import state

    original = state.EMA.update

    def collapse(self, model, step):  # the averaged generator draws one image from step 45 on
        original(self, model, step)
        if step >= 45:
            with torch.no_grad():
                self.model.decoder[3].weight.zero_()

    monkeypatch.setattr(state.EMA, "update", collapse)
    config = ["--out", str(run), "--resume", "--steps", str(FINAL)]
    assert_one_sentence(cli(capsys, *TRAIN, *config), "collapsed to one image", "step 40 is kept")
    assert not step_dir(run, FINAL).exists()
    monkeypatch.undo()
    assert_recovers(capsys, run, 40)


# ------------------------------------------------------------------------------ 4. OS errors
def test_full_disk_during_a_checkpoint(run, mounts, tmp_path, capsys):
    disk = mounts.tmpfs(tmp_path / "disk", 4096)
    moved = Path(shutil.copytree(run, disk / "run"))
    filler = fill_disk(disk, leave_kib=200)  # the stats lines fit, a checkpoint (800 KiB) not
    process = genaug(*TRAIN, "--out", str(moved), "--resume", "--steps", str(FINAL))
    assert_one_sentence(
        process, "No space left on device", "free space on that disk", "step 40 is kept"
    )
    assert not [p.name for p in (moved / "checkpoints").iterdir() if "tmp" in p.name]
    filler.unlink()
    assert_recovers(capsys, moved, 40)


def test_full_disk_without_mounts_through_a_fake(run, monkeypatch, capsys):
    """Where mounts are not allowed: os.replace raising ENOSPC for the step-50 checkpoint."""
    replace = os.replace

    def full(source, target, *args, **kwargs):
        if "step_0000050" in str(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    process = cli(capsys, *TRAIN, "--out", str(run), "--resume", "--steps", str(FINAL))
    assert_one_sentence(process, "No space left on device", "step 40 is kept")
    monkeypatch.undo()
    assert_recovers(capsys, run, 40)


def test_full_disk_while_sampling_a_folder(run, mounts, tmp_path, capsys):
    disk = mounts.tmpfs(tmp_path / "disk", 64)
    out = disk / "samples"
    sample = ["sample", "--checkpoint", str(run), "--n", "300", "--out", str(out)]
    assert_one_sentence(cli(capsys, *sample), "No space left on device", "run the same command")
    assert (out / "INCOMPLETE.txt").is_file()
    assert not list(out.rglob(".*.tmp"))  # no half-written image
    subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
    status, err = cli(capsys, *sample)  # the same command again finishes the folder
    assert status == 0 and "genaug: notice:" in err and "left incomplete" in err, err
    assert not (out / "INCOMPLETE.txt").exists()
    assert len(list(out.rglob("*.png"))) == 300


def test_sampling_into_a_read_only_folder(run, mounts, tmp_path, capsys):
    folder = mounts.read_only(Path(shutil.copytree(run, tmp_path / "ro")))
    grid = ["sample", "--checkpoint", str(run), "--n", "8", "--out", str(folder / "grid.png")]
    line = assert_one_sentence(cli(capsys, *grid), "Read-only file system", "--out")
    assert "choose a writable folder (or another --out)" in line
    tree = ["sample", "--checkpoint", str(run), "--n", "8", "--out", str(folder / "samples")]
    assert_one_sentence(genaug(*tree), "Read-only file system", "choose a folder you can write")


def test_evaluate_on_a_read_only_run_says_how_to_give_a_writable_place(
    run, mounts, tmp_path, capsys
):
    folder = mounts.read_only(Path(shutil.copytree(run, tmp_path / "ro")))
    process = genaug("evaluate", "--checkpoint", str(folder), "--n", "20")
    assert_one_sentence(process, f"{folder / 'eval'}", "Read-only file system", "--out", "--cache")
    elsewhere = tmp_path / "eval"
    status, err = cli(
        capsys,
        "evaluate",
        "--checkpoint",
        str(folder),
        "--n",
        "20",
        "--classifier-steps",
        "2",
        "--out",
        str(elsewhere / "metrics.json"),
        "--cache",
        str(elsewhere / "reference"),
        "--device",
        "cpu",
    )
    assert status == 0, err
    assert json.loads((elsewhere / "metrics.json").read_text())["family"] == "vae"


# ------------------------------------------------------------------------------ 5. format version
def test_resume_refuses_a_newer_format_and_offers_the_last_one_it_reads(run, capsys):
    config_path = step_dir(run, 40) / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "format_version": 99}))
    process = cli(capsys, *TRAIN, "--out", str(run), "--resume", "--steps", str(FINAL))
    assert_one_sentence(process, "format version 99", "upgrade genaug", "--resume-from 30")
    assert_one_sentence(cli(capsys, "info", "--checkpoint", str(run)), "or use", "step_0000030")
    err = assert_recovers(capsys, run, 30, "--resume-from", "30")
    assert "moved step_0000040 aside" in err, err
    assert (run / "checkpoints" / "set_aside" / "step_0000040" / "config.json").is_file()


# ------------------------------------------------------------------------------ 6. torn stats line
def test_resume_drops_a_torn_stats_line_with_a_notice(run, capsys):
    with open(run / STATS, "a") as f:
        f.write('{"step": 45, "time": 1.2, "lo')  # what a full disk leaves
    err = assert_recovers(capsys, run, 40)
    assert "genaug: notice: dropped 1 unreadable line(s)" in err, err


# ------------------------------------------------------------------------------ 7. info
def test_info_checks_what_it_reports(run, capsys):
    (step_dir(run, 40) / "config.json").unlink()
    assert_one_sentence(
        cli(capsys, "info", "--checkpoint", str(step_dir(run, 40))), "config.json is missing"
    )
    status, err = cli(capsys, "info", "--checkpoint", str(run))
    assert status == 0 and "skipped step_0000040 (config.json is missing" in err, err
    weights = step_dir(run, 30) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    assert_one_sentence(
        cli(capsys, "info", "--checkpoint", str(step_dir(run, 30))), "unreadable or truncated"
    )


def test_save_generator_refuses_non_finite_weights(tmp_path):
    model = create_generator("test_vae", image_size=16)
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(GenaugError, match="non-finite tensors .* not saved"):
        save_generator(model, tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_resume_from_a_step_that_is_not_there(run, capsys):
    assert_one_sentence(
        cli(capsys, *TRAIN, "--out", str(run), "--resume-from", "20", "--steps", str(FINAL)),
        "no checkpoint of step 20",
        "steps it has: 30, 40",
    )


def test_a_diverged_run_is_refused_with_its_training_state(run, capsys):
    """A checkpoint whose training state holds NaN (an older genaug wrote it) is skipped."""
    from safetensors.torch import load_file, save_file

    path = step_dir(run, 40) / "training_state.safetensors"
    tensors = load_file(str(path))
    name = next(k for k in tensors if k.startswith("model.") and tensors[k].is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(path), metadata={"format": "pt"})
    err = assert_recovers(capsys, run, 30)
    assert "skipped step_0000040 (training_state.safetensors" in err, err


def test_a_run_begun_by_an_older_genaug_names_the_setting_that_differs(run, capsys):
    """Both checkpoints as an older genaug wrote them (no class head): sound, but not the model
    this genaug builds for the run; the error says which setting differs and who wrote them."""
    from safetensors.torch import load_file, save_file

    for step in (30, 40):
        folder = step_dir(run, step)
        config = json.loads((folder / "config.json").read_text())
        del config["model_args"]["class_head"]
        (folder / "config.json").write_text(json.dumps(config))
        tensors = load_file(str(folder / "model.safetensors"))
        kept = {k: v for k, v in tensors.items() if not k.startswith("class_head.")}
        save_file(kept, str(folder / "model.safetensors"), metadata={"format": "pt"})
    assert load_generator(step_dir(run, 40)).config["class_head"] is False  # loads as it was
    process = cli(capsys, *TRAIN, "--out", str(run), "--resume", "--steps", str(FINAL))
    assert_one_sentence(process, "class_head=False", "class_head=True", "resume with that version")
