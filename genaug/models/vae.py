"""Convolutional VAE, class-conditional or not, trained on the beta-weighted ELBO.

Objective per image (minimised): ``recon(x, x_hat) + beta * KL(q(z|x, y) || N(0, I))`` with a
Bernoulli (binary cross-entropy) reconstruction term summed over pixels, the usual choice for
images in [0, 1]. ``beta = 1`` is the plain ELBO; ``beta > 1`` trades detail for a smoother latent
space (beta-VAE). Sampling uses the reparameterisation ``z = mu + sigma * eps``.

A conditional VAE also trains a class head (:mod:`genaug.models.labels`) on its encoder's features
of label-free images, so it can condition on the class it infers when handed an image alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.models.base import (
    AutocastFactory,
    Encoding,
    Generator,
    num_resolution_steps,
    one_hot,
    stage_widths,
)
from genaug.models.folding import run_stack
from genaug.models.labels import (
    ClassHead,
    conditioned_features,
    frozen_features,
    head_loss,
    label_free_features,
)
from genaug.models.registry import register


class VAE(Generator):
    """Conditional convolutional VAE.

    Args:
        image_size: power of two in [16, 128].
        channels: 1 or 3.
        num_classes: 0 for unconditional, else the number of classes it is conditioned on.
        latent_dim: size of the latent code.
        width: channels of the first stage (doubled per stage, capped at 8x).
        beta: weight of the KL term in the ELBO.
        class_head: with ``num_classes``, train a class head so that ``infer_labels`` works
            (recorded as False for an unconditional VAE and for checkpoints written before it).
    """

    family = "vae"
    has_encoder = True
    default_steps = 3000
    default_batch_size = 64
    default_lr = 1e-3
    legacy_args = {"class_head": False}

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        latent_dim: int = 32,
        width: int = 32,
        beta: float = 1.0,
        class_head: bool = True,
    ) -> None:
        class_head = bool(class_head) and num_classes > 0
        super().__init__(
            image_size=image_size,
            channels=channels,
            num_classes=num_classes,
            latent_dim=latent_dim,
            width=width,
            beta=beta,
            class_head=class_head,
        )
        self.beta = float(beta)
        steps = num_resolution_steps(image_size)
        widths = stage_widths(width, steps)
        self._bottom_width = widths[-1]

        # Encoder: (B, C + K, S, S) -> ... -> (B, widths[-1], 4, 4) -> (B, 2 * latent_dim)
        layers: list[nn.Module] = []
        in_ch = channels + num_classes
        for out_ch in widths:
            layers += [
                nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            in_ch = out_ch
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.to_posterior = nn.Linear(widths[-1] * 16, 2 * latent_dim)

        # Decoder: (B, latent_dim + K) -> (B, widths[-1], 4, 4) -> ... -> (B, C, S, S) logits
        self.from_latent = nn.Sequential(
            nn.Linear(latent_dim + num_classes, widths[-1] * 16),
            nn.ReLU(inplace=True),
        )
        # Transposed convs double the size per stage; the last one emits the pixel logits
        # directly (a full-resolution width x width layer would cost more than all others).
        up: list[nn.Module] = []
        decoder_widths = list(reversed(widths))
        for in_ch, out_ch in zip(decoder_widths[:-1], decoder_widths[1:]):
            up += [
                nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
        self.decoder = nn.Sequential(*up, nn.ConvTranspose2d(decoder_widths[-1], channels, 4, 2, 1))
        # Class head: encoder features (B, widths[-1] * 16) of a label-free image -> (B, K) logits.
        self.class_head = ClassHead(widths[-1] * 16, num_classes) if class_head else None

    # ------------------------------------------------------------------------------ the model
    def _posterior(self, images: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        x = images * 2 - 1  # centre the inputs
        features = conditioned_features(self.encoder, x, labels, self.num_classes)
        mean, logvar = self.to_posterior(features).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode_logits(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents (B, latent_dim) -> pixel logits (B, C, H, W)."""
        onehot = one_hot(labels, self.num_classes, z.dtype)
        if onehot is not None:
            z = torch.cat([z, onehot], dim=1)
        h = self.from_latent(z).view(z.shape[0], self._bottom_width, 4, 4)
        return run_stack(self.decoder, h)  # BatchNorms folded in inference

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return torch.sigmoid(self.decode_logits(z, labels))

    def encode(self, images: Tensor, labels: Tensor | None = None) -> Encoding:
        mean, logvar = self._posterior(images, labels)
        return Encoding(mean, torch.exp(0.5 * logvar))

    def class_logits(self, images: Tensor) -> Tensor:
        if self.class_head is None:
            return super().class_logits(images)
        # The encoder's features of the image with all-zero label planes, frozen (see labels.py).
        features = frozen_features(
            self.encoder, lambda: label_free_features(self.encoder, images, self.num_classes)
        )
        return self.class_head(features)

    def reconstruction_cost(self, images: Tensor, encoding: Encoding, labels: Tensor) -> Tensor:
        # The negative ELBO per image at the posterior mean: BCE summed over pixels + beta * KL.
        logits = self.decode_logits(encoding.mean, labels).float()
        recon = F.binary_cross_entropy_with_logits(logits, images.float(), reduction="none")
        mean, scale = encoding.mean.float(), encoding.scale.float()
        kl = 0.5 * (mean.pow(2) + scale.pow(2) - 1 - 2 * scale.log()).sum(dim=1)
        return recon.flatten(1).sum(dim=1) + self.beta * kl

    def elbo_terms(self, images: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        """Batch-mean reconstruction and KL terms (per image, summed over pixels / latents)."""
        mean, logvar = self._posterior(images, labels)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)  # reparameterisation
        logits = self.decode_logits(z, labels)
        recon = (
            F.binary_cross_entropy_with_logits(logits.float(), images.float(), reduction="sum")
            / images.shape[0]
        )
        kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / images.shape[0]
        return {"recon": recon, "kl": kl.float()}

    # ------------------------------------------------------------------------------ training
    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.parameters(), lr=lr)}

    def training_step(
        self,
        images: Tensor,
        labels: Tensor | None,
        optimizers: dict[str, torch.optim.Optimizer],
        autocast: AutocastFactory,
    ) -> dict[str, Any]:
        optimizer = optimizers["vae"]
        with autocast():
            terms = self.elbo_terms(images, labels)
            loss = terms["recon"] + self.beta * terms["kl"]
            total = loss
            if self.class_head is not None and labels is not None:
                # The head learns from detached features: its loss moves the head alone, so the
                # VAE's updates are unchanged (and a weight would only rescale what Adam rescales).
                terms["head"] = head_loss(self.class_logits(images), labels)
                total = loss + terms["head"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}


@register
def vae(**overrides: Any) -> VAE:
    """Conditional conv VAE: width 32, latent 32, beta 1 (the plain ELBO)."""
    return VAE(**overrides)


@register
def test_vae(**overrides: Any) -> VAE:
    """A tiny VAE for fast tests: width 8, latent 8."""
    return VAE(**{"width": 8, "latent_dim": 8, **overrides})
