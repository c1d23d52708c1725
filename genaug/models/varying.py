"""What the families that vary given images (``dagan``, ``pairvae``, ``diffusion``) share.

The image-conditioned ones supply ``generate(images, z)``; these helpers check the exemplars, draw
or check the noise, and say in one sentence why such a generator cannot draw from noise alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genaug.errors import GenaugError

__all__ = ["NO_EXEMPLAR", "check_exemplars", "exemplar_noise", "vary_exemplars"]

NO_EXEMPLAR = (
    "A {family} generator makes variations of given images, so it cannot draw images from "
    "noise alone; call model.vary(images) (the transforms' vary mode)."
)


def check_exemplars(model: Any, images: Tensor) -> Tensor:
    """Images (B, C, S, S) as float32 on the model's device, or a clear error for the shape."""
    want = (model.channels, model.image_size, model.image_size)
    if not isinstance(images, Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != want:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise GenaugError(
            f"This {model.family} generator varies images shaped (B, {want[0]}, {want[1]}, "
            f"{want[2]}), got {got}; resize and convert the images to that first."
        )
    return images.to(model.device, torch.float32)


def vary_exemplars(
    model: Any,
    images: Tensor,
    strength: float,
    generator: torch.Generator | None,
    noise: Tensor | None,
) -> Tensor:
    """``model.generate(images, strength * z)`` as float32, z ~ N(0, I) drawn with ``generator``
    (on the model's device) or given as ``noise`` (B, latent_dim)."""
    images = check_exemplars(model, images)
    z = exemplar_noise(model, images.shape[0], generator, noise)
    return model.generate(images, z * float(strength)).float()


def exemplar_noise(
    model: Any, b: int, generator: torch.Generator | None, noise: Tensor | None
) -> Tensor:
    """The noise (b, latent_dim) float32 of ``b`` variations on the model's device: ``noise``
    checked, or drawn ~ N(0, I) from ``generator`` (on the model's device) when not given."""
    if noise is None:
        return torch.randn(b, model.latent_dim, generator=generator, device=model.device)
    if tuple(noise.shape) != (b, model.latent_dim):
        raise GenaugError(
            f"noise must be shaped ({b}, {model.latent_dim}) for {b} images, got "
            f"{tuple(noise.shape)}."
        )
    return noise.to(model.device, torch.float32)
