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
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genaug import distributed, lock
from genaug.data import ImageDataset, batch_indices, load_dataset
from genaug.data.pairs import check_pairable, pair_indices, pairable
from genaug.device import autocast_for, memory_format_for
from genaug.errors import GenaugError
from genaug.io import atomic_write_json
from genaug.models.base import Generator, validate_image_size
from genaug.models.diffaugment import diff_augment
from genaug.models.registry import create_generator
from genaug.plots import save_class_grid, save_loss_curve, save_variation_grid
from genaug.train.config import TrainConfig
from genaug.train.state import (
    EMA,
    latest_checkpoint,
    load_training_checkpoint,
    save_training_checkpoint,
)
from genaug.train.stats import STATS

RUN_CONFIG = "run_config.json"


class TrainingDiverged(GenaugError):
    """A loss became non-finite or training collapsed; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    checkpoint: Path  # the final checkpoint folder (loadable by load_generator)
    model: Generator  # the EMA generator, in eval mode, on the training device
    steps: int
    seconds: float  # wall time of this call
    losses: dict[str, float]  # the last logged losses


def _prepare_run_dir(config: TrainConfig) -> tuple[Path, Path | None]:
    """Create or reopen the run folder; return it and the checkpoint to resume from (if any)."""
    run_dir = Path(config.out)
    lock.hold(run_dir)  # one writer per folder: a second is refused here, before any write
    saved_config = run_dir / RUN_CONFIG
    if config.resume:
        if not saved_config.is_file():
            raise GenaugError(
                f"--resume was given but {run_dir} holds no run to resume; drop --resume to start."
            )
        previous = TrainConfig.from_dict(json.loads(saved_config.read_text()))
        changed = config.differences(previous)
        if changed:
            raise GenaugError(
                f"{run_dir} holds a run with different settings ({', '.join(changed)}); resume "
                "with the same settings, or pass --overwrite to start a new run there."
            )
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise GenaugError(
                f"--resume was given but {run_dir} has no checkpoint yet; start again without "
                "--resume (add --overwrite to replace the folder)."
            )
        return run_dir, checkpoint
    if lock.contents(run_dir):  # files other than the lock's
        if not config.overwrite:
            raise GenaugError(
                f"{run_dir} already holds files; pass --resume to continue that run, "
                "--overwrite to replace it, or choose another --out."
            )
        if not saved_config.is_file():
            raise GenaugError(
                f"{run_dir} holds files that are not a genaug run, so --overwrite will not "
                "delete them; choose another --out."
            )
        lock.clear(run_dir)  # all but the lock, which stays held
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, None


def _build_model(config: TrainConfig, dataset: ImageDataset) -> Generator:
    conditional = dataset.has_labels and not config.unlabeled
    model = create_generator(
        config.model,
        image_size=config.image_size,
        channels=dataset.channels,
        num_classes=dataset.num_classes if conditional else 0,
        **config.model_args,
    )
    if conditional:  # a pair family is not conditioned on them, but records what it learnt from
        model.class_names = list(dataset.class_names)
    model.data_description = dict(dataset.description)
    # The classes the images came from, also when their labels are hidden: a user of the
    # checkpoint can then refuse to evaluate it on classes it has seen (transfer benchmarks).
    seen = sorted(set(dataset.targets.tolist()) - {-1}) or range(len(dataset.class_names))
    model.data_description.setdefault("class_names", [dataset.class_names[c] for c in seen])
    if model.trains_on_pairs:  # labels pair the images: refuse data that cannot be paired
        check_pairable(dataset.targets, conditional, f"A {model.family} generator")
    return model


@lock.scoped  # the run folder's lock is given back when train returns
def train(config: TrainConfig, dataset: ImageDataset | None = None) -> TrainResult:
    """Train a generator as ``config`` says; ``dataset`` replaces ``config.data`` when given.

    Example: ``train(TrainConfig(model="vae", data="digits", out="runs/digits-vae"))``.
    Raises :class:`GenaugError` for bad settings and :class:`TrainingDiverged` (keeping the last
    good checkpoint) when a loss becomes non-finite.
    """
    config.validate()
    validate_image_size(config.image_size)
    started = time.perf_counter()
    device = distributed.init(config.device)  # this rank's device; joins a torchrun job
    main = distributed.is_main()
    # Refused now (several CPU processes) rather than at the first BatchNorm of the first step.
    sync_batchnorm = distributed.check_sync_batchnorm(config.sync_batchnorm, device)
    if dataset is None:
        dataset = load_dataset(config.data, image_size=config.image_size, channels=config.channels)
    elif dataset.image_size != config.image_size or (
        config.channels is not None and dataset.channels != config.channels
    ):
        raise GenaugError(
            f"The dataset holds {dataset.channels}x{dataset.image_size}px images but the run asks "
            f"for {config.channels or dataset.channels}x{config.image_size}px; load it at that size."
        )
    if len(dataset) == 0:
        raise GenaugError("The training dataset is empty; give it at least one image.")

    # Build the model and everything its checkpoint restores, seeded for determinism on CPU.
    torch.manual_seed(config.seed)
    model = _build_model(config, dataset)
    if sync_batchnorm:  # before the optimizers and the EMA copy; same state_dict keys
        distributed.convert_sync_batchnorm(model)
    # Blank settings take the family's defaults; the resolved config is what the run folder keeps.
    config = dataclasses.replace(
        config,
        steps=config.steps or model.default_steps,
        batch_size=config.batch_size or model.default_batch_size,
        lr=config.lr or model.default_lr,
    )
    steps, batch_size = config.steps, config.batch_size
    distributed.shard_batch(torch.zeros(batch_size))  # a batch that cannot be shared: error now
    run_dir, resume_from = distributed.run_on_main(
        lambda: _prepare_run_dir(config), "preparing the run folder"
    )
    memory_format = memory_format_for(device)
    model.to(device=device, memory_format=memory_format).train()
    optimizers = model.create_optimizers(config.lr)
    distributed.average_gradients_before_step(optimizers.values())
    ema = EMA(model, config.ema_decay)
    autocast = autocast_for(device, config.amp)

    stats_path = run_dir / STATS
    if main:
        atomic_write_json(run_dir / RUN_CONFIG, config.to_dict())
        (run_dir / "samples").mkdir(exist_ok=True)
    start_step = 0
    if resume_from is not None:  # every rank reads it: --out must be on a shared file system
        start_step = load_training_checkpoint(resume_from, model, ema, optimizers)
        if main:
            _truncate_stats(stats_path, start_step)
    distributed.broadcast_module(model)  # rank 0's weights everywhere, as DDP does at start
    if start_step >= steps:
        raise GenaugError(
            f"{run_dir} already finished {start_step} steps; ask for more with --steps to go on."
        )

    # The whole dataset lives on the device as uint8; a batch is an index gather, no workers.
    images_u8 = dataset.images.to(device)  # (N, C, H, W) uint8
    targets = dataset.targets.to(device)  # (N,)
    conditional = model.conditional
    n = len(dataset)
    pairs = model.trains_on_pairs  # then each image comes with another image of its class
    # A pair family sees labels only when a loss of its own asks for them (a critic's).
    wants_labels = pairs and model.wants_pair_labels
    exemplars = _exemplars(dataset).to(device) if pairs else None  # rows of the sample grids

    bad = torch.zeros((), dtype=torch.bool, device=device)  # any non-finite loss since last check
    losses: dict[str, Tensor] = {}
    last_logged: dict[str, float] = {}
    bar = tqdm(
        total=steps, initial=start_step, disable=not (config.progress and main), desc=config.model
    )
    log_started, log_step = time.perf_counter(), start_step
    step = start_step
    many = distributed.world_size() > 1
    try:
        with open(stats_path, "a") if main else contextlib.nullcontext() as stats_file:
            for step in range(start_step + 1, steps + 1):
                if many:
                    torch.manual_seed(distributed.step_seed(config.seed, step))
                extra = {}
                if pairs:
                    index, partner = pair_indices(
                        step - 1, batch_size, dataset.targets, config.seed
                    )
                    partner = distributed.shard_batch(partner).to(device)
                    extra["partners"] = _real_images(images_u8, partner, memory_format, config)
                else:
                    index = batch_indices(step - 1, batch_size, n, config.seed)
                index = distributed.shard_batch(index).to(device)  # this rank's slice
                images = _real_images(images_u8, index, memory_format, config)
                labels = targets[index] if conditional or wants_labels else None
                losses = model.training_step(images, labels, optimizers, autocast, **extra)
                bad |= ~torch.isfinite(
                    torch.stack([torch.as_tensor(v) for v in losses.values()])
                ).all()
                ema.update(model, step)
                bar.update(1)

                checkpoint_now = step % config.checkpoint_every == 0 or step == steps
                if step % config.log_every == 0 or checkpoint_now:
                    # Losses averaged over ranks (and the non-finite flag, so every rank stops
                    # together); the one host sync per log step.
                    values = torch.stack(
                        [torch.as_tensor(v, device=device).double() for v in losses.values()]
                        + [bad.double()]
                    )
                    values = distributed.all_reduce_mean(values, "averaging losses").tolist()
                    if values[-1] > 0:
                        logged = dict(zip(losses, values))
                        raise TrainingDiverged(_diverged_message(logged, step, run_dir))
                    last_logged = dict(zip(losses, values[:-1]))
                    collapse = model.check_training(last_logged, step)
                    if collapse:
                        raise TrainingDiverged(
                            f"{collapse} Training stopped at step {step}; "
                            f"{_kept(run_dir)}. Lower --lr or change the model, then start again."
                        )
                    now = time.perf_counter()
                    record = {
                        "step": step,
                        "time": round(now - started, 3),
                        "images_per_second": round(
                            (step - log_step) * batch_size / max(now - log_started, 1e-9), 1
                        ),
                        **{k: round(v, 6) for k, v in last_logged.items()},
                    }
                    if main:
                        stats_file.write(json.dumps(record) + "\n")
                        stats_file.flush()
                    bar.set_postfix({k: f"{v:.4g}" for k, v in last_logged.items()})
                    log_started, log_step = now, step
                if checkpoint_now:
                    _checkpoint(run_dir, step, model, ema, optimizers, config, exemplars)
    except KeyboardInterrupt:
        # Keep the progress made since the last checkpoint, if it is sound, then stop. Under
        # torchrun the ranks cannot agree on a step any more: the last periodic one is kept.
        if not many and step > start_step and not bool(bad) and latest_step(run_dir) != step:
            _checkpoint(run_dir, step, model, ema, optimizers, config, exemplars)
        raise
    finally:
        bar.close()

    if main:
        save_loss_curve(stats_path, run_dir / "loss_curve.png")
    distributed.barrier("finishing")  # every rank returns once the last checkpoint is written
    return TrainResult(
        run_dir=run_dir,
        checkpoint=latest_checkpoint(run_dir),
        model=ema.model,
        steps=steps,
        seconds=time.perf_counter() - started,
        losses=last_logged,
    )


def latest_step(run_dir: Path) -> int | None:
    folder = latest_checkpoint(run_dir)
    return int(folder.name.split("_")[1]) if folder else None


def _real_images(images_u8: Tensor, index: Tensor, memory_format, config: TrainConfig) -> Tensor:
    """The training images at ``index`` as float (B, C, H, W) in [0, 1], augmented as asked."""
    images = (images_u8[index].float() / 255.0).contiguous(memory_format=memory_format)
    if config.augment:  # the training data's own augmentation (every family)
        images = diff_augment(images, config.augment)
    return images


def _exemplars(dataset: ImageDataset, rows: int = 8) -> Tensor:
    """The first image of each of the first ``rows`` pairable classes, float (R, C, H, W)."""
    targets = dataset.targets
    classes = targets[pairable(targets)].unique()[:rows]
    index = torch.stack([(targets == c).nonzero()[0, 0] for c in classes])
    return dataset.images[index].float() / 255.0


def _checkpoint(run_dir, step, model, ema, optimizers, config, exemplars) -> None:
    # Every rank: agree on BatchNorm statistics and check the weights are in sync; rank 0 writes.
    distributed.average_buffers(model, ema.model)
    distributed.check_in_sync(model, f"step {step}")
    if not distributed.is_main():
        return
    save_training_checkpoint(run_dir, step, model, ema, optimizers, config.keep_checkpoints)
    grid = run_dir / "samples" / f"step_{step:07d}.png"
    if exemplars is not None:  # an image-conditioned family: rows of variations of real images
        save_variation_grid(ema.model, exemplars, grid, title=f"step {step}")
    else:
        save_class_grid(ema.model, grid, title=f"step {step}")


def _diverged_message(losses: dict[str, float], step: int, run_dir: Path) -> str:
    values = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
    return (
        f"Training diverged by step {step} (non-finite loss: {values}); {_kept(run_dir)}. "
        "Lower the learning rate (--lr) and resume or start again."
    )


def _kept(run_dir: Path) -> str:
    kept = latest_step(run_dir)
    return f"the checkpoint of step {kept} is kept" if kept else "no checkpoint was written yet"


def _truncate_stats(stats_path: Path, step: int) -> None:
    """Drop stats lines logged after ``step`` (written before a crash, then redone on resume)."""
    if not stats_path.is_file():
        return
    keep = [
        line
        for line in stats_path.read_text().splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    stats_path.write_text("".join(line + "\n" for line in keep))
