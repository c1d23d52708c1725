"""Launching ``python -m torch.distributed.run -m genaug ...`` with 2 gloo processes in tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now (bind to port 0 and let the OS choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(args: list[str], nproc: int = 2) -> list[str]:
    """The command line of a one-machine torchrun job running ``genaug ARGS``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "--monitor-interval",
        "0.2",
        "--shutdown-timeout",
        "3",
        "-m",
        "genaug",
        *args,
    ]


def torchrun_env(**extra: str) -> dict[str, str]:
    """One torch thread per process (2 cores), the repo importable, no colour or tqdm noise."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), TQDM_DISABLE="1", **extra)
    return env


def torchrun(args: list[str], nproc: int = 2, timeout: float = 120, **env: str):
    """Run ``genaug ARGS`` under torchrun and return the CompletedProcess (text output)."""
    return subprocess.run(
        torchrun_command(args, nproc),
        env=torchrun_env(**env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def worker_pid(launcher_pid: int, rank: int) -> int | None:
    """The pid of the worker with global ``rank`` among the launcher's child processes."""
    children: list[int] = []
    for task in Path(f"/proc/{launcher_pid}/task").iterdir():
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    for pid in children:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return pid
    return None
