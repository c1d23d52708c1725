"""DiffAugment: differentiable augmentation of the discriminator's inputs, for small datasets.

Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training" (NeurIPS 2020): apply
the same kind of random colour, translation and cutout changes to real *and* generated images
before the discriminator sees them. The discriminator then cannot memorise the few real images,
and because every operation is differentiable the generator still gets gradients through it.

Images are float BCHW in [0, 1] (the library's contract); the result is clamped back to [0, 1].
Every random draw comes from ``generator`` when given (it must live on the images' device).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from genaug.errors import GenaugError

__all__ = ["DEFAULT_POLICY", "OFF", "diff_augment", "parse_policy"]

DEFAULT_POLICY = "color,translation,cutout"
TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the image side
CUTOUT_RATIO = 0.5  # erase a square of half the image side


def _rand(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """One uniform draw per image, shaped (B, 1, 1, 1) to broadcast over the image."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def _brightness(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return x + (_rand(x, generator) - 0.5) * 0.5  # shift by up to +-0.25 (range 1, not 2)


def _saturation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W); a no-op on gray images
    return (x - mean) * (_rand(x, generator) * 2) + mean


def _contrast(x: Tensor, generator: torch.Generator | None) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (x - mean) * (_rand(x, generator) + 0.5) + mean


def _random_offsets(
    x: Tensor, low: int, high: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Per-image integer offsets along H and W in [low, high), shaped (B, 1, 1)."""
    shape = (x.shape[0], 1, 1)
    dy = torch.randint(low, high, shape, generator=generator, device=x.device)
    dx = torch.randint(low, high, shape, generator=generator, device=x.device)
    return dy, dx


def _translation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    b, _, h, w = x.shape
    shift = max(int(min(h, w) * TRANSLATION_RATIO + 0.5), 1)
    dy, dx = _random_offsets(x, -shift, shift + 1, generator)
    batch, rows, cols = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )  # each (B, H, W)
    # Read from a zero-padded copy: pixels shifted in from outside the image are black.
    rows = torch.clamp(rows + dy + 1, 0, h + 1)
    cols = torch.clamp(cols + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H + 2, W + 2, C)
    return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def _cutout(x: Tensor, generator: torch.Generator | None) -> Tensor:
    b, _, h, w = x.shape
    size = max(int(min(h, w) * CUTOUT_RATIO + 0.5), 1)
    centre_y, centre_x = _random_offsets(x, 0, min(h, w) + 1 - size % 2, generator)
    batch, rows, cols = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(size, device=x.device),
        torch.arange(size, device=x.device),
        indexing="ij",
    )  # each (B, size, size)
    rows = torch.clamp(rows + centre_y - size // 2, 0, h - 1)
    cols = torch.clamp(cols + centre_x - size // 2, 0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[batch, rows, cols] = 0
    return x * mask.unsqueeze(1)


_OPERATIONS: dict[str, list[Callable[[Tensor, torch.Generator | None], Tensor]]] = {
    "color": [_brightness, _saturation, _contrast],
    "translation": [_translation],
    "cutout": [_cutout],
}


#: Policies that mean "no DiffAugment" (None too).
OFF = ("", "off", "none")


def parse_policy(policy: str | None) -> list[str]:
    """``"color,translation"`` -> ``["color", "translation"]``; None, "", "off" -> []."""
    if policy is None or str(policy).strip().lower() in OFF:
        return []
    names = [name.strip() for name in str(policy).split(",") if name.strip()]
    unknown = [name for name in names if name not in _OPERATIONS]
    if unknown:
        raise GenaugError(
            f"Unknown DiffAugment operation {unknown[0]!r}; use a comma-separated list of "
            f"{', '.join(_OPERATIONS)} (e.g. {DEFAULT_POLICY!r}), or 'off'."
        )
    return names


def diff_augment(
    x: Tensor, policy: str | None = DEFAULT_POLICY, generator: torch.Generator | None = None
) -> Tensor:
    """Randomly augment images (B, C, H, W) in [0, 1], differentiably; returns the same shape.

    Args:
        x: images in [0, 1].
        policy: comma-separated operations among ``color`` (brightness, saturation, contrast),
            ``translation`` (shift by up to 1/8 of the side, black fill) and ``cutout`` (erase a
            square of half the side); None, "" or "off" returns ``x`` unchanged.
        generator: the ``torch.Generator`` the random parameters come from (default: global RNG).

    Example: ``logits = discriminator(diff_augment(images, "color,translation"))``.
    """
    names = parse_policy(policy)
    if not names:
        return x
    for name in names:
        for operation in _OPERATIONS[name]:
            x = operation(x, generator)
    return x.clamp(0.0, 1.0)
