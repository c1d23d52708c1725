"""A deterministic training step for the exact gradient-averaging check (importable by spawned
workers, so it lives in its own module rather than in a test file)."""

from __future__ import annotations

import contextlib

import torch

from genaug import distributed
from genaug.models.registry import create_generator


def discriminator_step_weights(rank: int, world: int, steps: int = 2) -> dict[str, torch.Tensor]:
    """The discriminator's weights after ``steps`` Adam steps on this rank's slice of a fixed
    batch of 16 real and 16 "fake" images (no DiffAugment: the step has no randomness)."""
    torch.manual_seed(0)
    model = create_generator(
        "test_gan", image_size=16, channels=1, num_classes=10, diff_augment="off"
    )
    optimizer = model.create_optimizers(1e-3)["discriminator"]
    distributed.average_gradients_before_step([optimizer])
    images = torch.rand(16, 1, 16, 16)  # (B, C, H, W)
    fake = torch.rand(16, 1, 16, 16)
    labels = torch.arange(16) % 10
    part = torch.arange(16).tensor_split(world)[rank]
    for _ in range(steps):
        model.discriminator_step(
            images[part], fake[part], labels[part], optimizer, contextlib.nullcontext
        )
    return {k: v.detach().clone() for k, v in model.discriminator.state_dict().items()}
