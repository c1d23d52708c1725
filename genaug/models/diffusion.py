"""Diffusion: a DDPM family on ``diffusers``' ``UNet2DModel``, trained by genaug's one loop.

A denoiser ``eps(x_t, t[, class])`` learns to predict the noise of ``x_t = sqrt(a_t) x +
sqrt(1 - a_t) eps`` (Ho et al. 2020) over a DDPM schedule of ``train_timesteps`` steps. It is used
two ways, both by deterministic DDIM steps (:mod:`genaug.models.ddim`):

- ``sample`` / ``decode(z)``: DDIM from pure noise in ``sample_steps`` steps. The latent ``z`` *is*
  that noise, image-shaped: ``latent_dim = channels * image_size ** 2``, so sampling by index,
  ``genaug sample``, ``genaug evaluate`` and the transforms' replayable ``noise`` work unchanged.
- ``vary(images, strength)``: SDEdit (Meng et al. 2022). Each image is noised to the timestep
  ``strength`` sets (0: the image itself, 1: pure noise) with the given noise, then denoised in
  ``ceil(strength * sample_steps)`` steps. Small strengths keep the image's content and redraw its
  detail (strokes), so it varies images of classes the model never saw, and needs no label.

Class-conditional when ``num_classes > 0`` (a class embedding); trained with ``class_dropout``
of the labels replaced by a "no class" embedding, so a conditional model also denoises without a
label (``vary`` of an unlabelled image, or of a class it does not know, uses it).

Needs the optional ``diffusers`` package (``pip install -e ".[diffusion]"``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.errors import GenaugError
from genaug.models import ddim
from genaug.models.base import AutocastFactory, Generator
from genaug.models.diffusers_import import require
from genaug.models.registry import register

__all__ = ["BETA_SCHEDULES", "Diffusion", "schedule_alphas"]

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def schedule_alphas(train_timesteps: int, beta_schedule: str) -> Tensor:
    """The cumulative alpha products (T,) float64 of a DDPM schedule, as diffusers defines it."""
    scheduler = require().DDPMScheduler(
        num_train_timesteps=train_timesteps, beta_schedule=beta_schedule
    )
    return scheduler.alphas_cumprod.to(torch.float64)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GenaugError(f"{name} must be a positive integer, not {value!r}.")
    return value


def build_unet(
    image_size: int,
    channels: int,
    num_classes: int,
    width: int,
    multipliers: list[int],
    layers_per_block: int,
    attention: bool,
) -> nn.Module:
    """A ``diffusers.UNet2DModel``: ``len(multipliers)`` levels of ``width * m`` channels,
    self-attention at the lowest resolution when ``attention``, and a class embedding with one
    extra "no class" entry when ``num_classes > 0``."""
    levels = len(multipliers)
    down = ["DownBlock2D"] * levels
    if attention:
        down[-1] = "AttnDownBlock2D"
    up = ["AttnUpBlock2D" if name.startswith("Attn") else "UpBlock2D" for name in reversed(down)]
    return require().UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=[width * m for m in multipliers],
        layers_per_block=layers_per_block,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=math.gcd(width, 32),
        attention_head_dim=min(8, width),
        num_class_embeds=num_classes + 1 if num_classes else None,
    )


class Diffusion(ddim.SDEditing, Generator):
    """A DDPM denoiser sampled and varied with DDIM (see the module docstring).

    Args:
        image_size: power of two in [16, 128].
        channels: 1 or 3.
        num_classes: 0 (unconditional, ``--unlabeled``) or the number of classes.
        latent_dim: fixed by the image (``channels * image_size ** 2``: the noise is an image);
            given another value, refused.
        width: channels of the first level.
        multipliers: channel multiplier of each level (one 2x downsampling between levels).
        layers_per_block: residual blocks per level.
        attention: self-attention at the lowest resolution.
        train_timesteps: steps of the DDPM noise schedule.
        beta_schedule: ``linear``, ``scaled_linear`` or ``squaredcos_cap_v2`` (cosine).
        sample_steps: DDIM steps of a full sample (an edit of strength s takes
            ``ceil(s * sample_steps)``).
        class_dropout: share of training labels replaced by "no class" (conditional only).
    """

    family = "diffusion"
    varies_images = True
    default_steps = 3000
    default_batch_size = 32
    default_lr = 2e-4

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        latent_dim: int | None = None,
        width: int = 16,
        multipliers: list[int] | tuple[int, ...] = (1, 2, 4),
        layers_per_block: int = 1,
        attention: bool = True,
        train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        sample_steps: int = 10,
        class_dropout: float = 0.1,
    ) -> None:
        pixels = channels * image_size * image_size if isinstance(image_size, int) else 0
        if latent_dim is not None and latent_dim != pixels:
            raise GenaugError(
                f"A diffusion generator's latent is its image-shaped noise ({pixels} values at "
                f"{channels}x{image_size}x{image_size}), so latent_dim cannot be {latent_dim!r}; "
                "leave it out."
            )
        multipliers = [_positive("each multiplier", m) for m in multipliers]
        super().__init__(
            image_size=image_size,
            channels=channels,
            num_classes=num_classes,
            latent_dim=pixels or 1,
            width=_positive("width", width),
            multipliers=multipliers,
            layers_per_block=_positive("layers_per_block", layers_per_block),
            attention=bool(attention),
            train_timesteps=_positive("train_timesteps", train_timesteps),
            beta_schedule=beta_schedule,
            sample_steps=_positive("sample_steps", sample_steps),
            class_dropout=class_dropout,
        )
        if beta_schedule not in BETA_SCHEDULES:
            raise GenaugError(
                f"beta_schedule must be one of {', '.join(BETA_SCHEDULES)}, not {beta_schedule!r}."
            )
        if isinstance(class_dropout, bool) or not 0 <= float(class_dropout) < 1:
            raise GenaugError(f"class_dropout must lie in [0, 1), not {class_dropout!r}.")
        if len(multipliers) < 1 or image_size >> len(multipliers) < 2:
            raise GenaugError(
                f"{len(multipliers)} levels halve a {image_size} px image below 4 px; give "
                "fewer multipliers."
            )
        self.sample_steps, self.class_dropout = sample_steps, float(class_dropout)
        self.unet = build_unet(
            image_size, channels, num_classes, width, multipliers, layers_per_block, attention
        )
        # Not a buffer: float64, never cast with the weights, not in the checkpoint.
        self.alphas_cumprod = schedule_alphas(train_timesteps, beta_schedule)

    # ------------------------------------------------------------------------------ the model
    def _class_input(self, labels: Tensor | None, b: int) -> Tensor | None:
        """Class embedding indices (B,): the labels, or "no class" (index num_classes)."""
        if not self.conditional:
            return None
        if labels is None:
            return torch.full((b,), self.num_classes, dtype=torch.long, device=self.device)
        return labels.to(self.device).long()

    def _denoiser(self, classes: Tensor | None) -> ddim.Predict:
        def predict(x: Tensor, t: Tensor) -> Tensor:
            x = x.to(memory_format=torch.channels_last) if x.is_cuda else x
            return self.unet(x, t, class_labels=classes).sample

        return predict

    def _run(self, start: Tensor | None, noise: Tensor, strength: float, labels: Any) -> Tensor:
        """DDIM edit (or sample, ``start`` None) in pixel space [-1, 1]; images in [0, 1]."""
        b = noise.shape[0]
        noise = noise.to(self.device, torch.float32).view(
            b, self.channels, self.image_size, self.image_size
        )
        classes = self._class_input(labels, b)
        out = ddim.edit(
            self._denoiser(classes),
            self.alphas_cumprod,
            None if start is None else start * 2 - 1,
            noise,
            float(strength),
            self.sample_steps,
        )
        return ((out + 1) / 2).clamp(0.0, 1.0)

    # ------------------------------------------------------------------------------ training
    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.AdamW(self.unet.parameters(), lr=lr, weight_decay=0.0)}

    def training_step(
        self,
        images: Tensor,
        labels: Tensor | None,
        optimizers: dict[str, torch.optim.Optimizer],
        autocast: AutocastFactory,
    ) -> dict[str, Any]:
        """One DDPM step: predict the noise added at a uniform timestep (mean squared error)."""
        clean = images.float() * 2 - 1  # (B, C, S, S) in [-1, 1]
        noisy, t, noise = ddim.training_pair(clean, self.alphas_cumprod)
        noisy = noisy.contiguous(memory_format=torch.channels_last) if noisy.is_cuda else noisy
        classes = self._class_input(labels, images.shape[0]) if labels is not None else None
        if classes is not None and self.class_dropout:
            dropped = torch.rand(classes.shape[0], device=classes.device) < self.class_dropout
            classes = classes.masked_fill(dropped, self.num_classes)
        elif self.conditional and classes is None:
            classes = self._class_input(None, images.shape[0])
        with autocast():
            predicted = self.unet(noisy, t, class_labels=classes).sample
        loss = F.mse_loss(predicted.float(), noise)
        optimizer = optimizers["unet"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}


@register
def diffusion(**overrides: Any) -> Diffusion:
    """DDPM on a UNet of widths 16-32-64 with attention at the lowest level (0.69 M
    parameters), 10 DDIM steps: sized for a CPU at 32 px (about half a second a step of 32
    images on 2 cores; ``--model-arg width=32`` for more capacity)."""
    return Diffusion(**overrides)


@register
def test_diffusion(**overrides: Any) -> Diffusion:
    """A tiny diffusion model for fast tests: widths 8-16, no attention, 2 DDIM steps."""
    defaults = {"width": 8, "multipliers": [1, 2], "attention": False, "sample_steps": 2}
    return Diffusion(**{**defaults, **overrides})
