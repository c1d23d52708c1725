"""genaug.lock: one writer per folder.

First the lock itself against another real process (a holder that takes and gives back locks on
request), then real genaug processes racing on one run folder, a SIGKILLed holder, the bench and
a 2-process torchrun job.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torchrun_helpers import REPO, torchrun_command, torchrun_env, worker_pid

from genaug import lock
from genaug.cli import main
from genaug.errors import GenaugError
from genaug.lock import HOLDER_NAME, LOCK_NAME, FolderBusy

# Another process: "hold PATH" / "release PATH" on stdin, "ok" or "busy MESSAGE" on stdout.
HOLDER_SCRIPT = r"""
import sys
from genaug import lock
print("ready", flush=True)
for line in sys.stdin:
    verb, path = line.rstrip("\n").split(" ", 1)
    try:
        (lock.hold if verb == "hold" else lock.release)(path)
        print("ok", flush=True)
    except lock.FolderBusy as exc:
        print("busy " + str(exc), flush=True)
"""
TRAIN = ["--model", "test_vae", "--data", "digits", "--image-size", "16", "--batch-size", "16"]
TRAIN += ["--device", "cpu", "--no-progress", "--log-every", "10"]
BENCH_YAML = (
    "image_size: 16\nmodel: test_resnet\nsteps: 2\nbatch_size: 8\ndevice: cpu\npreview: 0\n"
    "shots: [1]\nseeds: [0]\nconditions: [none, test_vae]\ngenerator_data: [pool]\n"
)
on_linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}


class OtherProcess:
    """A second Python process that holds folders when asked."""

    def __init__(self) -> None:
        pipe = subprocess.PIPE
        command = [sys.executable, "-c", HOLDER_SCRIPT]
        self.process = subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, env=_env())
        assert self.process.stdout.readline().strip() == "ready"

    @property
    def pid(self) -> int:
        return self.process.pid

    def ask(self, verb: str, folder: Path) -> str:
        self.process.stdin.write(f"{verb} {folder}\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def other():
    process = OtherProcess()
    yield process
    process.close()


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder`` (lock files too) -> (hash of its bytes, its mtime)."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    return {str(p): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files}


def _write_record(folder: Path, **fields) -> dict:
    record = {"host": socket.gethostname(), "pid": 1, "started": time.strftime("%Y-%m-%d %H:%M")}
    record |= {"started_unix": time.time(), "command": "genaug train --out R", **fields}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).touch()
    (folder / HOLDER_NAME).write_text(json.dumps(record))
    return record


def _gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()  # reaped: the pid names nothing now
    return process.pid


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, (process.communicate()[1] or "")[-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


# ---------------------------------------------------------------------------- the lock
def test_hold_records_the_holder_and_release_drops_the_record(tmp_path):
    run = tmp_path / "run"
    assert lock.hold(run) == run and lock.held_here(run)
    record = lock.holder(run)
    assert record["host"] == socket.gethostname() and record["pid"] == os.getpid()
    assert abs(record["started_unix"] - time.time()) < 60 and record["started"][:2] == "20"
    assert record["command"]  # this process's command line
    assert sorted(os.listdir(run)) == [LOCK_NAME, HOLDER_NAME]
    (run / "stats.jsonl").write_text("{}\n")
    lock.release(run)
    assert not lock.held_here(run) and lock.holder(run) is None
    assert sorted(os.listdir(run)) == [LOCK_NAME, "stats.jsonl"]  # the empty lock file stays


def test_a_lock_that_wrote_nothing_leaves_the_folder_as_it_was(tmp_path):
    new = tmp_path / "new" / "run"
    lock.hold(new)
    lock.release(new)
    assert not new.exists()  # made for nothing (e.g. --resume of a typo): removed again
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    lock.hold(foreign)  # then refused as "not a genaug run" by the caller, say
    lock.release(foreign)
    assert os.listdir(foreign) == ["notes.txt"]


def test_an_entry_point_locks_once_and_what_runs_inside_it_takes_no_lock(tmp_path, tiny_config):
    from genaug.train import train

    bench = tmp_path / "bench"
    lock.hold(bench)  # an entry point (run_bench) takes its folder once
    inner = tiny_config(out=str(bench / "generators" / "vae"))
    train(inner, lock_folder=False)  # the bench's generator run: under the bench's lock
    assert lock.held_here(bench) and not lock.held_here(inner.out)
    assert not any(p.name in lock.LOCK_FILES for p in (bench / "generators").rglob("*"))
    with pytest.raises(FolderBusy, match="by this process already"):
        lock.hold(bench)  # a nested writer is a second writer
    lock.release(bench)
    assert not lock.held_here(bench) and lock.holder(bench) is None
    other = tmp_path / "other"
    other.mkdir()
    (other / HOLDER_NAME).write_text(json.dumps({"host": "gpu-node-7", "pid": 1}))
    with pytest.raises(FolderBusy, match="gpu-node-7"):  # an entry point: it takes the lock
        train(tiny_config(out=str(other)))
    assert lock.contents(other) == [] and not lock.held_here(other)
    assert train(tiny_config(out=str(tmp_path / "run"))).steps == 6
    assert not lock.held_here(tmp_path / "run") and lock.holder(tmp_path / "run") is None


def test_a_second_process_is_refused_with_the_holder_named(tmp_path, other):
    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.jsonl").write_text('{"step": 10}\n')
    assert other.ask("hold", run) == "ok"
    before = _snapshot(run)
    with pytest.raises(FolderBusy) as caught:
        lock.hold(run)
    message = str(caught.value)
    assert f"pid {other.pid} on host {socket.gethostname()}" in message
    assert "`python -c" in message  # its command
    assert "wait for it to finish, or stop that process (kill" in message
    assert "\n" not in message and message.endswith("then run this command again.")
    assert _snapshot(run) == before and not lock.held_here(run)
    assert other.ask("release", run) == "ok"

    lock.hold(run)  # free now; and the other process is refused in turn
    reply = other.ask("hold", run)
    assert reply.startswith("busy ") and f"pid {os.getpid()} on host" in reply
    lock.release(run)


def test_a_dead_holder_on_this_host_is_taken_over_with_a_notice(tmp_path, capsys):
    run = tmp_path / "run"
    dead = _gone_pid()
    _write_record(run, pid=dead, command="genaug train --out run")
    lock.hold(run)  # SIGKILL freed the OS lock; the record it left is stale
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and notice.startswith("genaug: notice: took over")
    assert f"pid {dead} on host" in notice and "which is gone" in notice
    assert lock.holder(run)["pid"] == os.getpid()
    lock.release(run)


@on_linux
def test_a_zombie_or_a_reused_pid_is_not_the_holder(tmp_path, capsys):
    run = tmp_path / "run"
    zombie = subprocess.Popen(["true"])
    time.sleep(0.5)  # it has exited; its parent (this test) has not reaped it yet
    _write_record(run, pid=zombie.pid)
    lock.hold(run)
    lock.release(run)
    zombie.wait()
    assert f"took over {run} from pid {zombie.pid}" in capsys.readouterr().err

    later = subprocess.Popen(["sleep", "30"])  # alive, but started after the record
    try:
        _write_record(run, pid=later.pid, started_unix=time.time() - 60)
        lock.hold(run)
        lock.release(run)
        assert f"from pid {later.pid}" in capsys.readouterr().err
        # The same live pid with a record written after it started: it may be the holder.
        record = _write_record(run, pid=later.pid, started_unix=time.time())
        with pytest.raises(FolderBusy, match="which still runs although it holds no lock"):
            lock.hold(run)
        assert lock.holder(run) == record  # nothing changed
    finally:
        later.kill()
        later.wait()


def test_a_holder_on_another_host_is_refused_with_how_to_clear_it(tmp_path):
    run = tmp_path / "run"
    record = _write_record(run, host="gpu-node-7", pid=4242)
    (run / LOCK_NAME).unlink()  # gone too (deleted, or never shared): the refusal adds none
    (run / "stats.jsonl").write_text("{}\n")
    before = _snapshot(run)
    with pytest.raises(FolderBusy) as caught:
        lock.hold(run)
    message = str(caught.value)
    assert "pid 4242 on host gpu-node-7" in message and "cannot tell" in message
    assert f"delete {run / HOLDER_NAME} and run this command again" in message
    assert _snapshot(run) == before and lock.holder(run) == record
    (run / HOLDER_NAME).unlink()  # what the message says, once the process is known gone
    lock.hold(run)
    lock.release(run)


def test_other_torchrun_ranks_neither_take_the_lock_nor_are_refused(tmp_path, other, monkeypatch):
    run = tmp_path / "run"
    assert other.ask("hold", run) == "ok"  # the job's rank 0, say
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert lock.hold(run) == run and not lock.held_here(run)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(FolderBusy):
        lock.hold(run)
    assert other.ask("release", run) == "ok"


def test_contents_and_clear_leave_the_lock_alone(tmp_path):
    run = tmp_path / "run"
    lock.hold(run)
    (run / "samples").mkdir()
    (run / "samples" / "a.png").write_bytes(b"png")
    (run / "stats.jsonl").write_text("{}\n")
    assert [p.name for p in lock.contents(run)] == ["samples", "stats.jsonl"]
    record = lock.holder(run)
    lock.clear(run)  # --overwrite, under the lock
    assert lock.contents(run) == [] and lock.holder(run) == record
    lock.release(run)
    assert lock.contents(tmp_path / "missing") == []
    (tmp_path / "grid.png").write_bytes(b"png")
    with pytest.raises(GenaugError, match="is a file, not a folder"):
        lock.hold(tmp_path / "grid.png")


# ---------------------------------------------------------------------------- real processes
@pytest.mark.slow
def test_two_trainings_race_the_second_is_refused_the_first_finishes_cleanly(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", *TRAIN, "--out", str(run), "--steps", "150", "--checkpoint-every", "50"]
    first = subprocess.Popen(
        [sys.executable, "-m", "genaug", *argv], env=_env(), stderr=subprocess.PIPE, text=True
    )
    _wait_for(run / HOLDER_NAME, first)  # the first holds the folder and starts to train
    assert main([*argv, "--resume"]) == 2  # the second terminal (this process)
    error = capsys.readouterr().err
    assert error.startswith(f"genaug: error: {run} is being written by pid {first.pid}")
    assert "`genaug train --model test_vae" in error and error.count("\n") == 1
    error = first.communicate(timeout=120)[1]
    assert first.returncode == 0, error[-3000:]
    assert _steps(run) == list(range(10, 151, 10))  # every step once
    assert not (run / HOLDER_NAME).exists()  # given back at the end


@pytest.mark.slow
def test_after_sigkill_resume_takes_over_and_continues(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", *TRAIN, "--out", str(run), "--checkpoint-every", "20"]
    first = subprocess.Popen(
        [sys.executable, "-m", "genaug", *argv, "--steps", "100000"],
        env=_env(),
        stderr=subprocess.DEVNULL,
    )
    _wait_for(run / "checkpoints" / "step_0000040", first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert lock.holder(run)["pid"] == first.pid  # its record stays behind
    kept = max(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("step_*"))
    assert main([*argv, "--steps", str(kept + 20), "--resume"]) == 0
    notice = capsys.readouterr().err
    assert f"genaug: notice: took over {run} from pid {first.pid}" in notice
    assert _steps(run) == list(range(10, kept + 21, 10))  # lines after the kept step dropped
    assert lock.holder(run) is None


@pytest.mark.slow
def test_a_refused_writer_changes_nothing_and_readers_need_no_lock(tmp_path, tiny_config, other):
    from genaug.models import load_generator
    from genaug.train import train

    config = tiny_config()
    train(config)
    run = Path(config.out)
    assert other.ask("hold", run) == "ok"  # a live writer
    before = _snapshot(run)
    argv = ["train", *TRAIN, "--out", str(run), "--steps", "12", "--log-every", "2"]
    refused = subprocess.run(
        ["genaug", *argv, "--resume"], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"is being written by pid {other.pid}" in refused.stderr
    assert main([*argv, "--overwrite"]) == 2  # the destructive path too
    assert main(["sample", "--checkpoint", str(run), "--n", "4", "--out", str(run)]) == 2
    assert _snapshot(run) == before

    # Readers: info, evaluate, loading the checkpoint, while the writer holds the folder.
    assert main(["info", "--checkpoint", str(run)]) == 0
    assert load_generator(run).conditional
    metrics = tmp_path / "eval" / "metrics.json"
    evaluate = ["evaluate", "--checkpoint", str(run), "--n", "40", "--out", str(metrics)]
    evaluate += ["--cache", str(tmp_path / "eval" / "reference")]  # else it caches into run/eval
    assert main([*evaluate, "--classifier-steps", "2", "--device", "cpu"]) == 0
    assert metrics.is_file() and _snapshot(run) == before
    assert other.ask("release", run) == "ok"


def test_sample_into_a_folder_takes_its_lock_and_gives_it_back(tmp_path, tiny_config):
    from genaug.train import train

    config = tiny_config()
    train(config)
    out = tmp_path / "samples"
    assert main(["sample", "--checkpoint", config.out, "--n", "20", "--out", str(out)]) == 0
    assert len(list(out.rglob("*.png"))) == 20
    assert not lock.held_here(out) and lock.holder(out) is None  # given back with the command
    assert (out / LOCK_NAME).is_file()  # it was taken; the empty lock file stays


@pytest.mark.slow
def test_a_second_bench_resume_on_a_live_folder_is_refused(tmp_path, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text(BENCH_YAML)
    out = tmp_path / "bench"
    argv = ["bench", "--config", str(config), "--out", str(out), "--no-progress"]
    first = subprocess.Popen(
        [sys.executable, "-m", "genaug", *argv, "--generator-steps", "300"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out / HOLDER_NAME, first)
    status = main([*argv, "--generator-steps", "300", "--resume"])
    error = capsys.readouterr().err
    assert status == 2 and f"{out} is being written by pid {first.pid}" in error
    assert "`genaug bench --config" in error
    _wait_for(out / "bench_config.json", first)
    assert main(["bench", "--report-only", "--out", str(out)]) == 0  # a reader: no lock
    error = first.communicate(timeout=300)[1]
    assert first.returncode == 0, error[-3000:]
    runs = [json.loads(line)["key"] for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == len(set(runs)) == 2  # none, test_vae: each once
    assert lock.holder(out) is None
    assert not any(p.name in lock.LOCK_FILES for p in (out / "generators").rglob("*"))


@pytest.mark.slow
def test_a_torchrun_training_takes_one_lock_held_by_rank_0(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", *TRAIN, "--out", str(run), "--steps", "200", "--checkpoint-every", "100"]
    job = subprocess.Popen(
        torchrun_command(argv),
        env=torchrun_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(run / HOLDER_NAME, job, timeout=180)
    rank0 = worker_pid(job.pid, 0)
    assert lock.holder(run)["pid"] == rank0 and "genaug train" in lock.holder(run)["command"]
    assert main([*argv, "--resume"]) == 2  # another writer is refused by the job's lock
    assert f"is being written by pid {rank0}" in capsys.readouterr().err
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, out[-2000:] + err[-3000:]
    assert _steps(run) == list(range(10, 201, 10))
    locks = [p for p in run.rglob("*") if p.name in lock.LOCK_FILES]
    assert locks == [run / LOCK_NAME]  # one lock, given back: no record left
