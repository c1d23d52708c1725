"""Is a run still healthy? The checks the training loop makes before it trusts a step.

- At every log step, :class:`LossWatch`: a loss many orders of magnitude above its value at the
  first step (``LOSS_GROWTH_LIMIT`` times, scales below 1 counted as 1) means the run diverged
  while staying finite (a learning rate far too high gives losses near 1e25, never NaN).
- At every checkpoint step, :func:`checkpoint_problem`: every weight finite, and the samples of a
  fixed batch of seeds not collapsed to one image. Their spread (the mean over pixels of the
  standard deviation across the batch) must not fall below ``SPREAD_FLOOR`` once an earlier
  checkpoint of the run reached ``SPREAD_VARIED``: a freshly initialised or barely trained
  generator draws near-identical images (spread about 4e-4 at 64 px), so only a fall from
  varied samples to one image is a collapse. An image-conditioned family is asked for
  variations of a fixed set of different real images instead.

A problem stops the run with :class:`TrainingDiverged`; the last checkpoint that passed is kept.
``benchmarks/divergence_false_alarms.py`` measures that healthy runs of every registered family
raise no alarm (``benchmarks/results/divergence_false_alarms.json``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.models.checkpoint import nonfinite_names
from genaug.models.sampling import latents_for_indices, sample_indices

LOSS_GROWTH_LIMIT = 1e4  # times the first step's value (at least 1) before a loss alarm
SPREAD_FLOOR = 1e-3  # sample spread (pixel values in [0, 1]) below which the samples are one image
SPREAD_VARIED = 1e-2  # a spread this run's samples reached before: they were visibly varied
SPREAD_SEEDS = 16  # fixed sample indices (seed 0) whose spread is measured


class TrainingDiverged(GenaugError):
    """A loss became non-finite or exploded, the weights did, or training collapsed; the last
    good checkpoint is kept."""


class HealthWatch:
    """What the checks remember across a run: each loss at the first step, the highest sample
    spread of a checkpoint so far. Kept in the checkpoint (:meth:`state`), so a resumed run
    compares with the same; a checkpoint without it starts afresh at the first step resumed.
    """

    def __init__(self, state: dict | None = None) -> None:
        state = state or {}
        self.reference: dict[str, float] = dict(state.get("loss_reference") or {})
        self.spread_peak: float = float(state.get("spread_peak") or 0.0)

    def state(self) -> dict:
        """The JSON the checkpoint keeps."""
        return {"loss_reference": self.reference, "spread_peak": self.spread_peak}

    def start(self, losses: dict[str, float]) -> None:
        """Take the first step's finite losses as the reference (once)."""
        for name, value in losses.items():
            if math.isfinite(value):
                self.reference.setdefault(name, float(value))

    def problem(self, losses: dict[str, float]) -> str | None:
        """A sentence naming a loss that grew past the limit, or None."""
        for name, value in losses.items():
            start = self.reference.get(name)
            if start is None:
                continue
            growth = abs(value) / max(abs(start), 1.0)
            if growth > LOSS_GROWTH_LIMIT:
                return (
                    f"the loss {name} reached {value:.3g}, {growth:.2g} times its value at the "
                    f"first step ({start:.3g})"
                )
        return None


@torch.no_grad()
def sample_spread(model: Generator, exemplars: Tensor | None = None) -> float:
    """Mean over pixels of the standard deviation across a fixed batch of samples.

    ``SPREAD_SEEDS`` samples by index (seed 0, balanced classes); an image-conditioned family
    varies ``exemplars`` (R, C, H, W) with fixed noise instead. 0 means one image, repeated.
    """
    was_training = model.training
    model.eval()
    try:
        if model.image_conditioned and exemplars is not None:
            index = torch.arange(len(exemplars))
            noise = latents_for_indices(index, 0, model.latent_dim).to(model.device)
            images = model.vary(exemplars.to(model.device), 1.0, noise=noise).float()
        else:
            images, _ = sample_indices(model, torch.arange(SPREAD_SEEDS), 0)
    finally:
        model.train(was_training)
    return float(images.std(0, unbiased=False).mean())


def checkpoint_problem(
    model: Generator, ema_model: Generator, watch: HealthWatch, exemplars: Tensor | None = None
) -> str | None:
    """Why the state about to be checkpointed must not be: non-finite weights, or samples
    collapsed to one image after they were varied; None when it is sound (the watch then
    remembers the spread)."""
    for what, module in (("weights", model), ("averaged (EMA) weights", ema_model)):
        bad = nonfinite_names(dict(module.state_dict()))
        if bad:
            return f"{len(bad)} of the {what} are not finite (first: {bad[0]})"
    if exemplars is None and ema_model.image_conditioned:
        return None
    try:
        spread = sample_spread(ema_model, exemplars)
    except GenaugError:  # a family that makes no images (features): no spread to check
        return None
    if spread < SPREAD_FLOOR and watch.spread_peak >= SPREAD_VARIED:
        return (
            f"the samples of {SPREAD_SEEDS if exemplars is None else len(exemplars)} fixed seeds "
            f"collapsed to one image (spread {spread:.2g}, down from {watch.spread_peak:.2g})"
        )
    watch.spread_peak = max(watch.spread_peak, spread)
    return None
