"""The one training loop, for every generator family.

The family supplies ``create_optimizers`` and ``training_step`` (its losses); this loop owns the
rest: device, AMP, data order, EMA, checkpoints, resume, logging, sample grids, loss curve.
Families that train on pairs (``trains_on_pairs``, e.g. DAGAN) get with each image another image
of its class (:func:`genaug.data.pairs.pair_indices`) as ``training_step(..., partners=...)``.
Read it top to bottom.

Under ``torchrun`` the same loop runs in every process (see :mod:`genaug.distributed`): each rank
takes its slice of the deterministic global batch of ``batch_indices`` (so ``batch_size`` stays
the global batch size), gradients are averaged across ranks before every optimizer step, the
losses logged are averages over ranks, and only rank 0 writes the run folder. Each rank's training
noise at step ``s`` comes from a generator seeded by (seed, s, rank), so a resumed multi-process
run continues exactly without per-rank RNG state in the checkpoint. With ``sync_batchnorm`` (CUDA
only) BatchNorm normalises with the statistics of the global batch.

Nothing diverged is kept: the checks of :mod:`genaug.train.health` (losses at log steps; weights
and samples before a checkpoint) stop the run with :class:`TrainingDiverged`, in ``stats.jsonl``
too, naming the last good checkpoint. An OS error is one sentence; the last checkpoint stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genaug import distributed, lock
from genaug.data import ImageDataset, batch_indices
from genaug.data.pairs import pair_indices, pairable
from genaug.device import autocast_for, memory_format_for
from genaug.errors import GenaugError
from genaug.io import atomic_write_json
from genaug.models.base import Generator, validate_image_size
from genaug.models.checkpoint import folder_step
from genaug.models.diffaugment import diff_augment
from genaug.plots import save_class_grid, save_loss_curve, save_variation_grid
from genaug.train.config import TrainConfig
from genaug.train.health import HealthWatch, TrainingDiverged, checkpoint_problem
from genaug.train.inputs import build_model, training_data
from genaug.train.run_folder import (
    RUN_CONFIG,
    choose_resume_checkpoint,
    latest_step,
    prepare_run_dir,
    run_folder_os_errors,
    truncate_stats,
    wants_resume,
)
from genaug.train.state import (
    EMA,
    find_resumable,
    kept_sentence,
    restore_training_state,
    save_training_checkpoint,
)
from genaug.train.stats import STATS

__all__ = ["RUN_CONFIG", "TrainResult", "TrainingDiverged", "latest_step", "train"]


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    checkpoint: Path  # the final checkpoint folder (loadable by load_generator)
    model: Generator  # the EMA generator, in eval mode, on the training device
    steps: int
    seconds: float  # wall time of this call
    losses: dict[str, float]  # the last logged losses


@dataclass
class _Run:
    """Everything the step loop uses, set up once by :func:`train`."""

    config: TrainConfig
    run_dir: Path
    model: Generator
    ema: EMA
    optimizers: dict[str, torch.optim.Optimizer]
    autocast: Any
    device: torch.device
    memory_format: torch.memory_format
    images_u8: Tensor  # (N, C, H, W) uint8 on the device
    targets: Tensor  # (N,) on the device
    dataset_targets: Tensor  # (N,) on the CPU (pair drawing)
    exemplars: Tensor | None  # (R, C, H, W): rows of variation grids, the spread check's images
    watch: HealthWatch  # first losses, highest sample spread
    started: float
    last_saved: int | None = None  # the step of the newest checkpoint this call wrote


def train(
    config: TrainConfig, dataset: ImageDataset | None = None, *, lock_folder: bool = True
) -> TrainResult:
    """Train a generator as ``config`` says; ``dataset`` replaces ``config.data`` when given.

    ``lock_folder``: hold the lock of ``config.out`` for the call (one writer per folder); False
    when the caller's own lock covers it (a bench's generators, in the bench folder).

    Example: ``train(TrainConfig(model="vae", data="digits", out="runs/digits-vae"))``.
    Raises :class:`GenaugError` for bad settings (and OS errors, in one sentence) and
    :class:`TrainingDiverged` (keeping the last good checkpoint) when a loss becomes non-finite
    or explodes, the weights become non-finite or the samples collapse to one image.
    """
    try:
        return _train(config, dataset, lock_folder)
    finally:
        if lock_folder:
            lock.release(config.out)  # taken by prepare_run_dir


def _train(config: TrainConfig, dataset: ImageDataset | None, lock_folder: bool) -> TrainResult:
    config.validate()
    validate_image_size(config.image_size)
    started = time.perf_counter()
    device = distributed.init(config.device)  # this rank's device; joins a torchrun job
    # Refused now (several CPU processes) rather than at the first BatchNorm of the first step.
    sync_batchnorm = distributed.check_sync_batchnorm(config.sync_batchnorm, device)
    dataset = training_data(config, dataset)

    # Build the model and everything its checkpoint restores, seeded for determinism on CPU.
    torch.manual_seed(config.seed)
    model = build_model(config, dataset)
    if sync_batchnorm:  # before the optimizers and the EMA copy; same state_dict keys
        distributed.convert_sync_batchnorm(model)
    # Blank settings take the family's defaults; the resolved config is what the run folder keeps.
    config = dataclasses.replace(
        config,
        steps=config.steps or model.default_steps,
        batch_size=config.batch_size or model.default_batch_size,
        lr=config.lr or model.default_lr,
    )
    # A batch that cannot be shared among the ranks: the error comes now.
    distributed.shard_batch(torch.zeros(config.batch_size))
    run_dir = distributed.run_on_main(
        lambda: prepare_run_dir(config, lock_folder), "preparing the run folder"
    )
    memory_format = memory_format_for(device)
    model.to(device=device, memory_format=memory_format).train()
    optimizers = model.create_optimizers(config.lr)
    distributed.average_gradients_before_step(optimizers.values())
    ema = EMA(model, config.ema_decay)

    if distributed.is_main():
        with run_folder_os_errors(run_dir, f"write in {run_dir}", "choose a writable --out"):
            atomic_write_json(run_dir / RUN_CONFIG, config.to_dict())
            (run_dir / "samples").mkdir(exist_ok=True)
    start_step, watch = 0, HealthWatch()
    if wants_resume(config):  # every rank reads it: --out must be on a shared file system
        folder = distributed.run_on_main(
            lambda: choose_resume_checkpoint(run_dir, config, model, optimizers),
            "choosing the checkpoint to resume from",
        )
        point, _ = find_resumable(run_dir, model, optimizers, folder_step(folder))
        assert point is not None
        start_step = restore_training_state(point, model, ema, optimizers)
        watch = HealthWatch(point.meta.get("health"))
        if distributed.is_main():
            truncate_stats(run_dir / STATS, start_step)
    distributed.broadcast_module(model)  # rank 0's weights everywhere, as DDP does at start
    if start_step >= config.steps:
        raise GenaugError(
            f"{run_dir} already finished {start_step} steps; ask for more with --steps to go on."
        )

    pairs = model.trains_on_pairs  # then each image comes with another image of its class
    run = _Run(
        config=config,
        run_dir=run_dir,
        model=model,
        ema=ema,
        optimizers=optimizers,
        autocast=autocast_for(device, config.amp),
        device=device,
        memory_format=memory_format,
        # The whole dataset lives on the device as uint8; a batch is an index gather, no workers.
        images_u8=dataset.images.to(device),
        targets=dataset.targets.to(device),
        dataset_targets=dataset.targets,
        exemplars=_exemplars(dataset).to(device) if pairs else None,
        watch=watch,
        started=started,
    )
    last_logged = _run_steps(run, start_step)
    if distributed.is_main():
        with run_folder_os_errors(run_dir, "draw the loss curve", None):
            save_loss_curve(run_dir / STATS, run_dir / "loss_curve.png")
    distributed.barrier("finishing")  # every rank returns once the last checkpoint is written
    return TrainResult(
        run_dir=run_dir,
        checkpoint=run_dir / "checkpoints" / f"step_{run.last_saved:07d}",
        model=ema.model,
        steps=config.steps,
        seconds=time.perf_counter() - started,
        losses=last_logged,
    )


def _run_steps(run: _Run, start_step: int) -> dict[str, float]:
    """Train from ``start_step`` to the last step; return the last logged losses."""
    config, model = run.config, run.model
    steps, batch_size, n = config.steps, config.batch_size, len(run.images_u8)
    main, many = distributed.is_main(), distributed.world_size() > 1
    pairs = model.trains_on_pairs
    # A pair family sees labels only when a loss of its own asks for them (a critic's).
    wants_labels = model.conditional or (pairs and model.wants_pair_labels)
    bad = torch.zeros((), dtype=torch.bool, device=run.device)  # any non-finite loss since check
    last_logged: dict[str, float] = {}
    bar = tqdm(
        total=steps, initial=start_step, disable=not (config.progress and main), desc=config.model
    )
    log_from = (time.perf_counter(), start_step)
    step = start_step
    try:
        with (
            run_folder_os_errors(run.run_dir, f"write in {run.run_dir}", None, resume=True),
            open(run.run_dir / STATS, "a") if main else contextlib.nullcontext() as stats,
        ):
            for step in range(start_step + 1, steps + 1):
                if many:
                    torch.manual_seed(distributed.step_seed(config.seed, step))
                extra = {}
                if pairs:
                    index, partner = pair_indices(
                        step - 1, batch_size, run.dataset_targets, config.seed
                    )
                    extra["partners"] = _real_images(run, distributed.shard_batch(partner))
                else:
                    index = batch_indices(step - 1, batch_size, n, config.seed)
                index = distributed.shard_batch(index).to(run.device)  # this rank's slice
                images = _real_images(run, index)
                labels = run.targets[index] if wants_labels else None
                losses = model.training_step(images, labels, run.optimizers, run.autocast, **extra)
                values = torch.stack([torch.as_tensor(v) for v in losses.values()])
                bad |= ~torch.isfinite(values).all()
                run.ema.update(model, step)
                bar.update(1)
                if step == start_step + 1 and not run.watch.reference:
                    # The losses every later one is compared with (a fresh run's first step).
                    run.watch.start(_host_losses(losses, bad, run.device)[0])

                checkpoint_now = step % config.checkpoint_every == 0 or step == steps
                if step % config.log_every == 0 or checkpoint_now:
                    last_logged = _log_step(run, step, losses, bad, stats, log_from)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in last_logged.items()})
                    log_from = (time.perf_counter(), step)
                if checkpoint_now:
                    _checkpoint(run, step)
    except KeyboardInterrupt:
        # Keep the progress made since the last checkpoint, if it is sound, then stop. Under
        # torchrun the ranks cannot agree on a step any more: the last periodic one is kept.
        if not many and step > start_step and not bool(bad) and run.last_saved != step:
            # A diverged or unwritable state is not kept; the last checkpoint stays.
            with (
                contextlib.suppress(GenaugError),
                run_folder_os_errors(run.run_dir, "save at the interruption", None),
            ):
                if _health_problem(run, step) is None:
                    _checkpoint(run, step)
        raise
    finally:
        bar.close()
    return last_logged


def _host_losses(
    losses: dict[str, Tensor | float], bad: Tensor, device: torch.device
) -> tuple[dict[str, float], bool]:
    """The losses averaged over ranks on the host, and whether any was non-finite since the
    last check (averaged too, so every rank stops together); the one host sync per log step."""
    values = torch.stack(
        [torch.as_tensor(v, device=device).double() for v in losses.values()] + [bad.double()]
    )
    values = distributed.all_reduce_mean(values, "averaging losses").tolist()
    return dict(zip(losses, values[:-1])), values[-1] > 0


def _log_step(
    run: _Run,
    step: int,
    losses: dict[str, Tensor | float],
    bad: Tensor,
    stats: IO[str] | None,
    log_from: tuple[float, int],
) -> dict[str, float]:
    """Check the losses (and at a checkpoint step the state about to be written), append the
    stats line (with the alarm, if any) and stop on an alarm."""
    logged, non_finite = _host_losses(losses, bad, run.device)
    if non_finite:
        values = ", ".join(f"{k}={float(v):.4g}" for k, v in logged.items())
        alarm = f"Training diverged by step {step} (non-finite loss: {values})"
    else:
        alarm = run.watch.problem(logged)
        alarm = alarm and f"Training diverged by step {step}: {alarm}"
    checkpoint_now = step % run.config.checkpoint_every == 0 or step == run.config.steps
    if alarm is None and checkpoint_now:
        problem = _health_problem(run, step)
        alarm = problem and f"Training degenerated by step {step}: {problem}"
    if alarm is None:
        collapse = run.model.check_training(logged, step)
        alarm = collapse and f"{collapse} Training stopped at step {step}"
    now = time.perf_counter()
    record = {
        "step": step,
        "time": round(now - run.started, 3),
        "images_per_second": round(
            (step - log_from[1]) * run.config.batch_size / max(now - log_from[0], 1e-9), 1
        ),
        **{k: round(v, 6) for k, v in logged.items()},
        **({"alarm": alarm} if alarm else {}),
    }
    if stats is not None:
        stats.write(json.dumps(record) + "\n")
        stats.flush()
    if alarm:
        raise TrainingDiverged(
            f"{alarm}; {kept_sentence(run.run_dir)}. Lower --lr or change the model, then start "
            "again in another --out."
        )
    return logged


def _health_problem(run: _Run, step: int) -> str | None:
    """Average BatchNorm statistics across ranks, check the weights are in sync, then check the
    state about to be checkpointed (every rank: they agree, so they stop together)."""
    distributed.average_buffers(run.model, run.ema.model)
    distributed.check_in_sync(run.model, f"step {step}")
    return checkpoint_problem(run.model, run.ema.model, run.watch, run.exemplars)


def _checkpoint(run: _Run, step: int) -> None:
    """Rank 0 writes the checkpoint of ``step`` (with the loss reference) and its sample grid."""
    if distributed.is_main():
        extra = {"health": run.watch.state()}
        save_training_checkpoint(
            run.run_dir,
            step,
            run.model,
            run.ema,
            run.optimizers,
            run.config.keep_checkpoints,
            extra,
        )
        grid = run.run_dir / "samples" / f"step_{step:07d}.png"
        if run.ema.model.feature_space:
            pass  # a hallucinator makes features, not images: no grid
        elif run.exemplars is not None:  # image-conditioned: rows of variations of real images
            save_variation_grid(run.ema.model, run.exemplars, grid, title=f"step {step}")
        else:
            save_class_grid(run.ema.model, grid, title=f"step {step}")
    run.last_saved = step


def _real_images(run: _Run, index: Tensor) -> Tensor:
    """The training images at ``index`` as float (B, C, H, W) in [0, 1], augmented as asked."""
    images = run.images_u8[index.to(run.device)].float() / 255.0
    images = images.contiguous(memory_format=run.memory_format)
    if run.config.augment:  # the training data's own augmentation (every family)
        images = diff_augment(images, run.config.augment)
    return images


def _exemplars(dataset: ImageDataset, rows: int = 8) -> Tensor:
    """The first image of each of the first ``rows`` pairable classes, float (R, C, H, W)."""
    targets = dataset.targets
    classes = targets[pairable(targets)].unique()[:rows]
    index = torch.stack([(targets == c).nonzero()[0, 0] for c in classes])
    return dataset.images[index].float() / 255.0
