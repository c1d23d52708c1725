"""Timing helpers shared by the benchmark scripts: candidates measured side by side, in turns.

Every figure of ``benchmarks/`` is a ratio of candidates timed in one run on one machine,
interleaved repetition by repetition, so that load from other jobs slows them alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def cpu_has_fast_bfloat16() -> bool:
    """True when oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    candidates: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each candidate, run in turns so load hits all alike."""
    for fn in candidates.values():  # warm up (and compile)
        fn()
        fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def machine_record(threads: int, device: torch.device) -> dict[str, Any]:
    """What the JSON of a run records about the machine, printed as one header line too."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{threads} threads, load average {load}, torch {torch.__version__}, "
        f"device {device}, native CPU bfloat16: {cpu_has_fast_bfloat16()}"
    )
    return {"cpus": os.cpu_count(), "load_average": load, "torch": torch.__version__}
