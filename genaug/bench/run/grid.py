"""``genaug bench``: the downstream benchmark grid, with generator caching and resume.

The grid is shots x seeds x *arms*. An arm is a condition (a recipe of
:mod:`genaug.bench.plan.recipes`) and, for generative conditions, the data its generator was trained
on (``labeled``: the k-shot images with their labels; ``pool``: every training image, labels
hidden - the semi-supervised setting; ``checkpoint:PATH``: a given generator). Non-generative
conditions do not depend on the source and run once.

Fairness: every arm of a (shots, seed) cell trains the same timm model from the same initial
weights (``init_seed = seed``) on the same k-shot subset in the same batch order
(``data_seed = seed``), with the same optimiser, schedule and number of steps. Only the
augmentation differs. ``more-real`` arms see ``factor x k`` shots per class, which contain the k
shots of the cell (the data layer draws shots as a prefix of one permutation per class and seed).

The run folder holds ``bench_config.json``, ``runs.jsonl`` (one line per finished run: an
interrupted bench resumes where it stopped), ``generators/`` (cached generator runs, resumable
too), and the report (``summary.json``, ``summary.md``, PNG plots) from :mod:`genaug.bench.report`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from genaug import distributed, lock
from genaug.bench.learn.base_classifier import ensure_base_classifier, load_base_data
from genaug.bench.learn.classifier import check_model_name, create_classifier
from genaug.bench.plan.arms import Arm, Grid, plan_grid
from genaug.bench.plan.config import CONFIG_NAME, GENERATORS_DIR, RUNS_NAME, BenchConfig
from genaug.bench.plan.splits import check_sources, make_split, more_real_support, prepare_episodes
from genaug.bench.report import write_report
from genaug.bench.run.cache import GeneratorCache
from genaug.bench.run.folder import prepare_out, resume_queries
from genaug.bench.run.ledger import append_run, read_runs
from genaug.bench.run.measure import run_key, run_one
from genaug.bench.run.preview import preview_rows
from genaug.bench.run.torchrun import BenchShare, prepare_out_on_main
from genaug.bench.run.workers import check_workers, run_in_workers
from genaug.data import ImageDataset, few_shot_split, load_dataset
from genaug.errors import GenaugError

__all__ = ["BenchResult", "report_bench", "run_bench"]


# ---------------------------------------------------------------------------- running
@dataclass
class BenchResult:
    """What :func:`run_bench` returns."""

    out: Path
    summary: dict[str, Any]
    files: dict[str, str]
    ran: int  # runs done by this call
    reused: int  # runs found finished in runs.jsonl


def _run_in_order(
    config: BenchConfig,
    dataset: ImageDataset,
    tasks: list[tuple[int, int, Arm]],
    cache: GeneratorCache,
    finished: Callable[[dict[str, Any]], None],
    bar: tqdm,
) -> None:
    """The runs one after the other in this process (one split per cell)."""
    cell, split, more_real = None, None, None
    for shots, seed, arm in tasks:
        if (shots, seed) != cell:
            cell, more_real = (shots, seed), None
            split = make_split(config, dataset, shots, seed)
        if arm.recipe.more_real and more_real is None:
            more_real = more_real_support(config, dataset, shots, seed)
        bar.set_postfix_str(f"{shots}-shot seed {seed} {arm.label}")
        finished(run_one(config, arm, shots, seed, split, more_real, cache))


def _check_shots(config: BenchConfig, dataset: ImageDataset, arms: list[Arm]) -> None:
    """Every shot count (and its more-real multiple) fits every class: else one sentence."""
    if config.ways:  # episodes: checked (and queries resolved) by prepare_episodes
        return
    needs_more = any(arm.recipe.more_real for arm in arms)
    for shots in config.shots:
        few_shot_split(dataset, shots, config.seeds[0], config.test_fraction, config.test_seed)
        if needs_more:
            more = shots * config.more_real_factor
            try:
                few_shot_split(
                    dataset, more, config.seeds[0], config.test_fraction, config.test_seed
                )
            except GenaugError as exc:
                raise GenaugError(
                    f"the more-real reference needs {config.more_real_factor} x {shots} = {more} "
                    f"shots per class, but {str(exc)[0].lower()}{str(exc)[1:]}"
                ) from None


def run_bench(config: BenchConfig, command: str | None = None) -> BenchResult:
    """Run (or resume) a benchmark grid and write its report; returns the summary. The bench
    folder is locked for the call (one writer per folder).

    Example: ``run_bench(BenchConfig(shots=[1, 5], seeds=[0, 1, 2], out="runs/bench"))``.
    Raises :class:`GenaugError` for bad settings before any run starts.
    """
    config = dataclasses.replace(config).validate()
    check_model_name(config.model)
    check_workers(config)
    dataset = load_dataset(config.data, image_size=config.image_size, channels=config.channels)
    if dataset.num_classes < 2:
        raise GenaugError(f"{config.data} has fewer than two classes; a classifier needs two.")
    skipped: list[dict[str, str]] = []
    plan = plan_grid(config, dataset, skipped)  # the arms, and which run at which shot count
    arms = plan.arms
    _check_shots(config, dataset, arms)
    if config.ways:  # episodic: resolve the test images per class, refuse unfit sources
        resume_queries(config)
        prepare_episodes(config, dataset, arms)
        check_sources(config, dataset, arms)
    base = load_base_data(config, dataset) if any(a.base for a in arms) else None
    create_classifier(  # a model that cannot take the images fails here, before any run
        config.model,
        in_chans=dataset.channels,
        num_classes=dataset.num_classes,
        image_size=config.image_size,
        pretrained_file=config.pretrained_file,
    )
    used = {a.recipe.generative.generator for a in arms if a.recipe.generative is not None}
    for name in sorted(used):  # record every generator's resolved settings
        config.generators[name] = dataclasses.asdict(config.generator_settings(name))
    distributed.init(config.device)  # joins a torchrun job: ranks share the grid by seed
    try:
        out = prepare_out_on_main(config, prepare_out)  # rank 0 locks the folder there
        return _run_grid(config, out, plan, dataset, base, command, skipped)
    finally:
        lock.release(config.out)


def _run_grid(
    config: BenchConfig,
    out: Path,
    plan: Grid,
    dataset: ImageDataset,
    base: ImageDataset | None,
    command: str | None,
    skipped: list[dict[str, str]],
) -> BenchResult:
    """Run the grid's missing runs in the prepared folder ``out``, then write the report."""
    share = BenchShare(config, out)
    runs_path = share.runs_path  # runs.jsonl, or runs.rank{r}.jsonl under torchrun
    if base is not None:  # trained once, by rank 0, before any run starts from it
        distributed.run_on_main(
            lambda: ensure_base_classifier(config, base, out, command), "pretraining on base"
        )
    done = share.read_done()
    grid = plan.runs(config.seeds)
    reused = sum(run_key(k, s, arm) in done for k, s, arm in grid)
    cache = GeneratorCache(out / GENERATORS_DIR, config, dataset)
    tasks = [
        (shots, seed, arm)
        for shots in config.shots
        for seed in config.seeds
        if share.owns(seed)  # another rank's seeds (and generators) are not ours
        for arm in plan.cells[shots]
        if run_key(shots, seed, arm) not in done
    ]
    ran = 0
    bar = tqdm(total=len(grid), initial=reused, disable=not config.progress, desc="bench")

    def finished(record: dict[str, Any]) -> None:
        nonlocal ran
        append_run(runs_path, record)
        done[record["key"]] = record
        ran += 1
        bar.update(1)

    with bar, distributed.local_only():  # every rank runs its share alone; bar closes
        if config.workers > 1:
            run_in_workers(config, dataset, tasks, cache, out, finished)
        else:
            _run_in_order(config, dataset, tasks, cache, finished, bar)
    done = share.gather(done)  # rank 0 merges every rank's runs into runs.jsonl
    if not distributed.is_main():
        return BenchResult(out=out, summary={}, files={}, ran=ran, reused=reused)
    summary, files = _write_report(out, config, plan, dataset, done, cache, command, skipped)
    return BenchResult(out=out, summary=summary, files=files, ran=ran, reused=reused)


def report_bench(out: str | os.PathLike, command: str | None = None) -> BenchResult:
    """Write the report of a bench folder from the runs finished so far (no training)."""
    out = Path(out)
    saved = out / CONFIG_NAME
    if not saved.is_file():
        raise GenaugError(f"{out} holds no genaug bench ({CONFIG_NAME} is missing).")
    config = BenchConfig.from_dict(json.loads(saved.read_text())).validate()
    dataset = load_dataset(config.data, image_size=config.image_size, channels=config.channels)
    skipped: list[dict[str, str]] = []
    plan = plan_grid(config, dataset, skipped)
    cache = GeneratorCache(out / GENERATORS_DIR, config, dataset)
    summary, files = _write_report(
        out, config, plan, dataset, read_runs(out / RUNS_NAME), cache, command, skipped
    )
    return BenchResult(out=out, summary=summary, files=files, ran=0, reused=0)


def _write_report(
    out: Path,
    config: BenchConfig,
    plan: Grid,
    dataset: ImageDataset,
    done: dict[str, dict[str, Any]],
    cache: GeneratorCache,
    command: str | None,
    skipped: list[dict[str, str]],
) -> tuple[dict[str, Any], dict[str, str]]:
    arms, grid = plan.arms, plan.runs(config.seeds)
    records = [done[run_key(k, s, a)] for k, s, a in grid if run_key(k, s, a) in done]
    preview = preview_rows(config, arms, dataset, cache) if config.preview else []
    return write_report(
        out,
        config=config.to_dict(),
        arms=[
            {"arm": a.label, "condition": a.condition, "source": a.source_label}
            | ({"start": "base"} if a.base else {})  # old reports stay byte-identical
            for a in arms
        ],
        records=records,
        expected_runs=len(grid),
        preview=preview,
        command=command,
        skipped=skipped,
    )
