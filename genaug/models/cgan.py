"""C-GAN: a GAN whose generator pairs a decoder G(z, y) -> x with an encoder E(x, y) -> z.

Trained adversarially exactly like :class:`~genaug.models.gan.GAN` (same generator,
discriminator, losses and DiffAugment), plus two terms on the generator side that teach the
encoder to invert the decoder:

- latent cycle: ``cycle_weight * mean((E(G(z, y), y) - z)^2)`` on generated images;
- reconstruction: ``recon_weight * mean(|G(E(x, y), y) - x|)`` on real images.

Both are means over dimensions (latent dimensions, pixels). Encoder and decoder share the
generator's optimizer. Once trained, ``encode`` maps real images to latents that ``decode`` turns
back into similar images, which is what encode -> jitter -> decode augmentation needs.

A conditional C-GAN also trains a class head (:mod:`genaug.models.labels`) on its encoder's
features of label-free images, so it can condition on the class it infers when handed an image
alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.models.base import (
    AutocastFactory,
    Encoding,
    num_resolution_steps,
    stage_widths,
)
from genaug.models.gan import GAN, downsampling_stack
from genaug.models.labels import (
    ClassHead,
    conditioned_features,
    frozen_features,
    head_loss,
    label_free_features,
)
from genaug.models.registry import register


class ImageEncoder(nn.Module):
    """Images (B, C, S, S) in [0, 1] [+ labels (B,)] -> latents (B, latent_dim)."""

    def __init__(
        self, channels: int, num_classes: int, image_size: int, width: int, latent_dim: int
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        widths = stage_widths(width, num_resolution_steps(image_size))
        self.features = downsampling_stack(channels + num_classes, widths)
        self.to_latent = nn.Linear(widths[-1] * 16, latent_dim)

    def forward(self, images: Tensor, labels: Tensor | None) -> Tensor:
        x = images * 2 - 1  # centre the inputs; the label planes join it (B, C + K, S, S)
        features = conditioned_features(self.features, x, labels, self.num_classes)
        return self.to_latent(features.flatten(1))  # (B, latent_dim)


class CGAN(GAN):
    """GAN with an encoder trained by latent cycle consistency and image reconstruction.

    Takes every argument of :class:`~genaug.models.gan.GAN`, plus:

    Args:
        cycle_weight: weight of the latent cycle loss ``mean((E(G(z)) - z)^2)``.
        recon_weight: weight of the reconstruction loss ``mean(|G(E(x)) - x|)`` on real images.
        class_head: with ``num_classes``, train a class head so that ``infer_labels`` works
            (recorded as False for an unconditional C-GAN and for checkpoints written before it).
    """

    family = "cgan"
    has_encoder = True
    # A step costs about 1.5 GAN steps (encoder passes); on digits the C-GAN reaches the GAN's
    # conditional accuracy in fewer steps, so its default budget is smaller.
    default_steps = 1500
    legacy_args = {"class_head": False}

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        latent_dim: int = 64,
        width: int = 32,
        loss: str = "bce",
        spectral_norm: bool = True,
        diff_augment: str | None = "auto",
        discriminator_lr_ratio: float = 1.0,
        cycle_weight: float = 1.0,
        recon_weight: float = 1.0,
        class_head: bool = True,
    ) -> None:
        class_head = bool(class_head) and num_classes > 0
        super().__init__(
            image_size=image_size,
            channels=channels,
            num_classes=num_classes,
            latent_dim=latent_dim,
            width=width,
            loss=loss,
            spectral_norm=spectral_norm,
            diff_augment=diff_augment,
            discriminator_lr_ratio=discriminator_lr_ratio,
        )
        self.config.update(
            cycle_weight=cycle_weight, recon_weight=recon_weight, class_head=class_head
        )
        self.cycle_weight = float(cycle_weight)
        self.recon_weight = float(recon_weight)
        self.encoder = ImageEncoder(channels, num_classes, image_size, width, latent_dim)
        # Class head: encoder features (B, widths[-1] * 16) of a label-free image -> (B, K) logits.
        features = self.encoder.to_latent.in_features
        self.class_head = ClassHead(features, num_classes) if class_head else None

    def encode(self, images: Tensor, labels: Tensor | None = None) -> Encoding:
        labels = labels if self.conditional else None
        mean = self.encoder(images, labels)  # (B, latent_dim)
        return Encoding(mean, torch.ones_like(mean))

    def class_logits(self, images: Tensor) -> Tensor:
        if self.class_head is None:
            return super().class_logits(images)
        # The encoder's features of the image with all-zero label planes, frozen (see labels.py).
        stack = self.encoder.features
        features = frozen_features(
            stack, lambda: label_free_features(stack, images, self.num_classes).flatten(1)
        )
        return self.class_head(features)

    def reconstruction_cost(self, images: Tensor, encoding: Encoding, labels: Tensor) -> Tensor:
        # The reconstruction loss the C-GAN trains on, per image: mean |G(E(x, c), c) - x|.
        recon = self.decode(encoding.mean, labels).float()
        return (recon - images.float()).abs().flatten(1).mean(dim=1)

    def training_step(
        self,
        images: Tensor,
        labels: Tensor | None,
        optimizers: dict[str, torch.optim.Optimizer],
        autocast: AutocastFactory,
    ) -> dict[str, Any]:
        labels = labels if self.conditional else None
        both_labels = None if labels is None else torch.cat([labels, labels])
        z = torch.randn(images.shape[0], self.latent_dim, device=images.device)
        with autocast():
            codes = self.encoder(images, labels)  # (B, latent_dim): E(x)
            # One decoder pass for samples and reconstructions, so BatchNorm sees both together.
            fake, recon = self.decode(torch.cat([z, codes]), both_labels).chunk(2)
        losses = self.discriminator_step(
            images, fake, labels, optimizers["discriminator"], autocast
        )
        self.discriminator.requires_grad_(False)
        try:
            with autocast():
                g_loss = self.adversarial_loss(fake, labels)
                cycle = F.mse_loss(self.encoder(fake, labels).float(), z)
                recon_loss = F.l1_loss(recon.float(), images.float())
                total = g_loss + self.cycle_weight * cycle + self.recon_weight * recon_loss
                head = {}
                if self.class_head is not None and labels is not None:
                    # Detached features: the head's loss moves the head alone (see the VAE).
                    head["head"] = head_loss(self.class_logits(images), labels)
                    total = total + head["head"]
            optimizers["generator"].zero_grad(set_to_none=True)
            total.backward()
            optimizers["generator"].step()
        finally:
            self.discriminator.requires_grad_(True)
        return {
            "g_loss": g_loss.detach(),
            "cycle": cycle.detach(),
            "recon": recon_loss.detach(),
            **{k: v.detach() for k, v in head.items()},
            **losses,
        }


@register
def cgan(**overrides: Any) -> CGAN:
    """C-GAN: the GAN's defaults plus an encoder (cycle weight 1, reconstruction weight 1)."""
    return CGAN(**overrides)


@register
def test_cgan(**overrides: Any) -> CGAN:
    """A tiny C-GAN for fast tests: width 8, latent 8."""
    return CGAN(**{"width": 8, "latent_dim": 8, **overrides})
