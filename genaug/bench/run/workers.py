"""Classifier runs in parallel CPU processes (``BenchConfig.workers``, ``--workers N``).

A bench's runs are small: a timm classifier at 32 px hardly uses a second thread, so on an
N-core CPU, N processes of one thread each finish the grid about N times sooner than one
process. The main process first trains (or finds) every generator the runs need, so the
workers only load them from the run folder; each worker is *spawned* (never forked, so it
holds no CUDA state or locks of the parent), loads the dataset once, and sends each run's
record back to the main process, which alone writes ``runs.jsonl``. A run's result depends
only on its seeds, not on which process ran it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

from genaug import distributed
from genaug.bench.plan.arms import Arm
from genaug.bench.plan.config import GENERATORS_DIR, BenchConfig
from genaug.bench.plan.splits import make_split, more_real_support
from genaug.bench.run.cache import GeneratorCache
from genaug.bench.run.measure import run_one
from genaug.data import ImageDataset, load_dataset
from genaug.device import resolve_device, tune_cpu_allocator
from genaug.errors import GenaugError

__all__ = ["check_workers", "run_in_workers"]

Task = tuple[int, int, Arm]  # (shots, seed, arm)
_WORKER: dict[str, Any] = {}  # a worker process's config, dataset and generator cache


def check_workers(config: BenchConfig) -> None:
    """Refuse ``workers > 1`` where it cannot help: on a GPU, or inside a torchrun job."""
    if config.workers == 1:
        return
    if resolve_device(config.device).type != "cpu":
        raise GenaugError(
            f"workers={config.workers} runs classifiers in parallel CPU processes, but the "
            f"bench runs on {config.device}; use workers 1 on a GPU."
        )
    if distributed.launched():
        raise GenaugError(
            "workers > 1 and torchrun both split the grid; use one of them (workers 1 "
            "under torchrun)."
        )


def run_in_workers(
    config: BenchConfig,
    dataset: ImageDataset,
    tasks: list[Task],
    cache: GeneratorCache,
    out: Path,
    on_record: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``tasks`` in ``config.workers`` processes; ``on_record`` gets each finished record."""
    for shots, seed, arm in tasks:  # generators first, here: workers only load them
        generative = arm.recipe.generative
        if generative is not None and not str(arm.source).startswith("checkpoint:"):
            labeled = make_split(config, dataset, shots, seed).labeled
            cache.get(generative.generator, arm.source, seed, shots, labeled, True)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        config.workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(config.to_dict(), str(out), os.getpid()),
    ) as pool:
        futures = [pool.submit(_run_task, task) for task in tasks]
        try:
            for future in as_completed(futures):  # record each run as soon as it is done
                on_record(future.result())
        except BaseException:
            for future in futures:  # a failed run (or Ctrl-C): start no other
                future.cancel()
            raise


def _start_worker(config: dict[str, Any], out: str, parent: int) -> None:
    # A main process killed outright (SIGTERM/SIGKILL: no ``with`` exit, no pool shutdown)
    # would leave its workers training runs nobody records, on cores the next bench needs.
    # ``parent`` is the main process's pid as it sent it, not this process's parent now: a
    # main process killed while its workers still start (importing torch takes seconds) has
    # re-parented them already, and they must end too.
    threading.Thread(target=exit_with_parent, args=(parent,), daemon=True).start()
    torch.set_num_threads(1)
    tune_cpu_allocator()
    bench = BenchConfig.from_dict(config)
    dataset = load_dataset(bench.data, image_size=bench.image_size, channels=bench.channels)
    _WORKER.update(
        config=bench,
        dataset=dataset,
        cache=GeneratorCache(Path(out) / GENERATORS_DIR, bench, dataset),
    )


def exit_with_parent(parent: int, interval: float = 2.0) -> None:
    """End this process once ``parent`` is no longer its parent (the main process died and
    this one was re-parented); polls every ``interval`` seconds, forever while it lives."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _run_task(task: Task) -> dict[str, Any]:
    shots, seed, arm = task
    config, dataset, cache = _WORKER["config"], _WORKER["dataset"], _WORKER["cache"]
    split = make_split(config, dataset, shots, seed)
    more_real = more_real_support(config, dataset, shots, seed) if arm.recipe.more_real else None
    return run_one(config, arm, shots, seed, split, more_real, cache, train=False)
