"""DDIM sampling and SDEdit, one loop for every diffusion generator genaug drives.

SDEdit (Meng et al. 2022; DA-Fusion's edit): noise an image part way along the forward process,
then denoise it. ``strength`` in [0, 1] is the part: the edit starts at the timestep
``round(strength * (T - 1))`` (0: the image itself, 1: pure noise, that is a fresh sample), and
takes ``ceil(strength * steps)`` deterministic DDIM steps (eta = 0) down to a clean image, so an
edit costs network calls in proportion to how far it goes. The only randomness is the noise of
the forward step: given that noise, an edit replays exactly (what the transforms' ``params``
carry).

The loop reads a noise schedule (``alphas_cumprod``) and a ``predict(x_t, t)`` callable, so it
serves a pixel model trained by genaug and a user's latent text-to-image pipeline alike; it
handles the three prediction types of diffusers' schedulers (``epsilon``, ``v_prediction``,
``sample``). It is written here rather than taken from a diffusers scheduler because SDEdit needs
a start anywhere on the schedule, with the steps spread below it, for any scheduler a pipeline
folder ships.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from genaug.errors import GenaugError
from genaug.models.varying import check_exemplars, exemplar_noise

__all__ = ["PREDICTION_TYPES", "Predict", "SDEditing", "edit", "edit_timesteps", "training_pair"]

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
#: ``predict(x_t, t)``: noisy inputs (B, ...) and timesteps (B,) long -> the model's output.
Predict = Callable[[Tensor, Tensor], Tensor]


def edit_timesteps(strength: float, steps: int, train_timesteps: int) -> list[int]:
    """The timesteps an edit of ``strength`` visits, highest first (empty for strength 0).

    ``ceil(strength * steps)`` timesteps (at least one), evenly spread from
    ``round(strength * (train_timesteps - 1))`` down toward 0.
    """
    if strength <= 0:
        return []
    start = max(1, round(strength * (train_timesteps - 1)))
    count = min(start, max(1, math.ceil(strength * steps)))
    return [round(start * (count - i) / count) for i in range(count)]


def _split(output: Tensor, x: Tensor, alpha: Tensor, prediction_type: str) -> tuple[Tensor, Tensor]:
    """The model's output at ``x`` -> (predicted clean input, predicted noise)."""
    root, rest = alpha.sqrt(), (1 - alpha).sqrt()
    if prediction_type == "epsilon":
        eps = output
        clean = (x - rest * eps) / root
    elif prediction_type == "v_prediction":
        clean = root * x - rest * output
        eps = root * output + rest * x
    else:  # "sample"
        clean = output
        eps = (x - root * clean) / rest
    return clean, eps


def edit(
    predict: Predict,
    alphas_cumprod: Tensor,
    start: Tensor | None,
    noise: Tensor,
    strength: float,
    steps: int,
    prediction_type: str = "epsilon",
    clip: float | None = 1.0,
) -> Tensor:
    """SDEdit ``start`` (B, ...) with the forward ``noise`` (same shape), or sample from noise.

    Args:
        predict: the denoiser (see :data:`Predict`).
        alphas_cumprod: (T,) the training schedule's cumulative alpha products.
        start: clean inputs in the model's space (pixels in [-1, 1], or latents); None samples
            from ``noise`` (a full edit of nothing: ``strength`` is then taken as 1).
        noise: (B, ...) ~ N(0, I), the forward process's noise.
        strength: in [0, 1], how far the edit goes (see the module docstring).
        steps: DDIM steps of a full edit (strength 1).
        prediction_type: what the model predicts: ``epsilon``, ``v_prediction`` or ``sample``.
        clip: clamp each predicted clean input to [-clip, clip] (None: do not; latents).

    Returns:
        The edited inputs (B, ...), float32, in the model's space.
    """
    if prediction_type not in PREDICTION_TYPES:
        raise GenaugError(
            f"prediction type {prediction_type!r} is not one genaug can denoise with; a "
            f"pipeline's scheduler must predict one of {', '.join(PREDICTION_TYPES)}."
        )
    if start is None:
        strength = 1.0
    elif strength <= 0:
        return start.float()
    alphas = alphas_cumprod.to(noise.device, torch.float64)
    times = edit_timesteps(strength, steps, len(alphas))
    alpha = alphas[times[0]].float()
    x = noise.float() if start is None else alpha.sqrt() * start.float()
    if start is not None:
        x = x + (1 - alpha).sqrt() * noise.float()
    clean = x
    for i, t in enumerate(times):
        alpha = alphas[t].float()
        timestep = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        output = predict(x, timestep).float()
        clean, eps = _split(output, x, alpha, prediction_type)
        if clip is not None:
            clean = clean.clamp(-clip, clip)
        if i + 1 < len(times):  # the deterministic DDIM step to the next timestep
            following = alphas[times[i + 1]].float()
            x = following.sqrt() * clean + (1 - following).sqrt() * eps
    return clean


def training_pair(
    clean: Tensor, alphas_cumprod: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """A DDPM training example per input: (noisy inputs, timesteps (B,), the noise added).

    Timesteps are uniform over the schedule; the target of an epsilon model is the noise.
    """
    b = clean.shape[0]
    t = torch.randint(0, len(alphas_cumprod), (b,), device=clean.device, generator=generator)
    noise = torch.randn(clean.shape, device=clean.device, dtype=clean.dtype, generator=generator)
    alpha = alphas_cumprod.to(clean.device, clean.dtype)[t].view(b, *([1] * (clean.ndim - 1)))
    return alpha.sqrt() * clean + (1 - alpha).sqrt() * noise, t, noise


class SDEditing:
    """``decode`` (DDIM from noise) and ``vary`` (SDEdit) of a diffusion generator, over its
    ``_run(images or None, noise (B, latent_dim), strength, labels) -> images in [0, 1]``.

    A mixin beside :class:`~genaug.models.base.Generator`: ``class Diffusion(SDEditing,
    Generator)``.
    """

    def _run(self, images: Tensor | None, noise: Tensor, strength: float, labels: Any) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Noise (B, latent_dim) [+ labels (B,)] -> DDIM samples (B, C, S, S) in [0, 1].

        Scaling ``z`` below 1 (a ``resample`` strength under 1) starts from a lower temperature.
        """
        return self._run(None, z, 1.0, labels)

    @torch.no_grad()
    def vary(
        self,
        images: Tensor,
        strength: float = 1.0,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """SDEdit variations (B, C, S, S) float32 in [0, 1] of images (B, C, S, S) in [0, 1].

        ``strength`` in [0, 1]: the noise level the edit starts from (0: the image itself, 1: a
        fresh sample); 0.2-0.5 keep the content and redraw the detail. ``noise`` (B, latent_dim)
        is the forward process's noise (drawn from ``generator`` when not given); with it the
        edit is deterministic. ``labels`` (B,) condition a conditional model (a class, or a
        pipeline's class prompt); without them it denoises without a class, so images of any
        class (also unseen ones) are varied.
        """
        model: Any = self
        images = check_exemplars(model, images)
        noise = exemplar_noise(model, images.shape[0], generator, noise)
        if labels is not None:
            labels = model.check_labels(labels, images.shape[0])
        return self._run(images, noise, strength, labels)
