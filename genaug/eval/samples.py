"""The generator under evaluation: loaded from a checkpoint (or taken as given) and sampled
deterministically, with balanced classes, in eval mode."""

from __future__ import annotations

import os

import torch
from torch import Tensor

from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.models.sampling import sample_indices

__all__ = ["draw_samples", "load_model"]

_SAMPLE_BATCH = 256


def load_model(
    checkpoint_or_model: Generator | str | os.PathLike, device: torch.device
) -> tuple[Generator, str | None]:
    """The generator and its checkpoint path (None for a Generator object, used as is)."""
    if isinstance(checkpoint_or_model, Generator):
        return checkpoint_or_model, None
    if isinstance(checkpoint_or_model, (str, os.PathLike)):
        from genaug.models import load_generator

        return load_generator(checkpoint_or_model, device=device), str(checkpoint_or_model)
    raise GenaugError(
        f"Evaluate a Generator or a checkpoint folder, not {type(checkpoint_or_model).__name__}."
    )


@torch.no_grad()
def _draw_samples(model: Generator, n: int, seed: int) -> tuple[Tensor, Tensor | None]:
    """``n`` samples (n, C, H, W) float32 on the CPU, deterministic by index; balanced classes."""
    chunks, labels = [], []
    for start in range(0, n, _SAMPLE_BATCH):
        index = torch.arange(start, min(n, start + _SAMPLE_BATCH))
        images, chunk_labels = sample_indices(model, index, seed)
        chunks.append(images)
        if chunk_labels is not None:
            labels.append(chunk_labels.cpu())
    samples = torch.cat(chunks)
    expected = (model.channels, model.image_size, model.image_size)
    if tuple(samples.shape[1:]) != expected or not torch.isfinite(samples).all():
        raise GenaugError(
            f"The generator made {tuple(samples.shape[1:])} samples with non-finite values or of "
            f"the wrong shape (expected {expected}); the checkpoint is broken, retrain it."
        )
    return samples.clamp(0, 1), (torch.cat(labels) if labels else None)


def draw_samples(model: Generator, n: int, seed: int) -> tuple[Tensor, Tensor | None]:
    """``n`` samples (n, C, H, W) in [0, 1] on the CPU and their classes (n,) (None for an
    unconditional generator), drawn in eval mode; the caller's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return _draw_samples(model, n, seed)
    finally:
        model.train(was_training)
