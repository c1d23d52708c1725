"""DCGAN-style GAN, class-conditional or not, with DiffAugment for small datasets.

Generator: latent ``z`` (+ one-hot label) -> linear to 4x4 -> transposed convolutions (4x4,
stride 2) with class-conditional BatchNorm (per-class gain and bias) and ReLU -> a last
transposed convolution to the image channels -> sigmoid, so images lie in [0, 1].
Discriminator: strided 4x4 convolutions with LeakyReLU(0.2), spectral norm by default, and a
projection head for labels: ``D(x, y) = w . h + embed(y) . h`` (Miyato & Koyama, 2018). One
model covers every class; ``num_classes = 0`` is unconditional.

Training (``training_step``): one discriminator step on real and generated images, then one
generator step on the same generated images, both seeing DiffAugmented images
(:mod:`genaug.models.diffaugment`) when ``diff_augment`` is on.

Losses (``loss=``): ``"bce"`` is the original minimax objective in its usual non-saturating
form: D minimises ``softplus(-D(x)) + softplus(D(G(z)))`` and G minimises ``softplus(-D(G(z)))``.
``"hinge"``: D minimises ``relu(1 - D(x)) + relu(1 + D(G(z)))``, G minimises ``-D(G(z))``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from genaug.errors import GenaugError
from genaug.models.base import (
    AutocastFactory,
    Generator,
    num_resolution_steps,
    one_hot,
    stage_widths,
)
from genaug.models.diffaugment import diff_augment, parse_policy
from genaug.models.registry import register

LOSSES = ("bce", "hinge")
#: ``diff_augment="auto"`` turns DiffAugment on below this many training images ...
AUTO_DIFF_AUGMENT_BELOW = 10_000
#: ... with this policy. Colour jitter is left out: on 50 digits it raised the Frechet distance
#: to held-out images from 2.8 to 4.0, while translation + cutout alone stopped the generator
#: copying its training images just as well (benchmarks/gan_quality.py).
AUTO_POLICY = "translation,cutout"
#: Discriminator wins counted by ``check_training`` before it stops a run (log steps in a row).
COLLAPSE_PATIENCE = 10


def discriminator_loss(loss: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Batch-mean discriminator loss for logits (B,) on real and generated images."""
    if loss == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(loss: str, fake_logits: Tensor) -> Tensor:
    """Batch-mean generator loss for the discriminator's logits (B,) on generated images."""
    if loss == "hinge":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """``module`` with spectral normalisation of its weight when ``enabled``."""
    return apply_spectral_norm(module) if enabled else module


def downsampling_stack(
    in_channels: int, widths: list[int], spectral_norm: bool = False
) -> nn.Sequential:
    """Strided 4x4 convolutions + LeakyReLU(0.2): (B, C, S, S) -> (B, widths[-1], 4, 4).

    Shared by the discriminator (with spectral norm) and the C-GAN encoder (without).
    """
    layers: list[nn.Module] = []
    for out_channels in widths:
        conv = nn.Conv2d(in_channels, out_channels, 4, 2, 1)
        layers += [maybe_spectral_norm(conv, spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
        in_channels = out_channels
    return nn.Sequential(*layers)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are looked up per class (plain BatchNorm when unconditional)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=num_classes == 0)
        self.gain = self.bias = None
        if num_classes:
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        h = self.norm(x)  # (B, F, H, W)
        if self.gain is None:
            return h
        return h * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class UpsamplingBlock(nn.Module):
    """Transposed 4x4 stride-2 convolution, conditional BatchNorm, ReLU: doubles the size."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False)
        self.norm = ConditionalBatchNorm2d(out_channels, num_classes)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return F.relu(self.norm(self.conv(x), labels))


class GeneratorNetwork(nn.Module):
    """DCGAN generator: latents (B, latent_dim) [+ labels (B,)] -> pixel logits (B, C, S, S)."""

    def __init__(
        self, latent_dim: int, num_classes: int, channels: int, image_size: int, width: int
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        widths = stage_widths(width, num_resolution_steps(image_size))
        self.bottom_width = widths[-1]
        self.from_latent = nn.Linear(latent_dim + num_classes, widths[-1] * 16, bias=False)
        self.input_norm = ConditionalBatchNorm2d(widths[-1], num_classes)
        path = list(reversed(widths))  # 4x4 stage first
        self.blocks = nn.ModuleList(
            UpsamplingBlock(i, o, num_classes) for i, o in zip(path[:-1], path[1:])
        )
        # The last upsampling writes the image directly, as in DCGAN: a full-width stage at the
        # image resolution would cost more than the rest of the network on a CPU.
        self.to_image = nn.ConvTranspose2d(widths[0], channels, 4, 2, 1)

    def forward(self, z: Tensor, labels: Tensor | None) -> Tensor:
        onehot = one_hot(labels, self.num_classes, z.dtype)
        if onehot is not None:
            z = torch.cat([z, onehot], dim=1)  # (B, latent_dim + K)
        h = self.from_latent(z).view(z.shape[0], self.bottom_width, 4, 4)  # (B, F, 4, 4)
        h = F.relu(self.input_norm(h, labels))
        for block in self.blocks:
            h = block(h, labels)  # (B, F', 2H, 2W)
        return self.to_image(h)  # (B, C, S, S) logits


class Discriminator(nn.Module):
    """Images (B, C, S, S) in [0, 1] [+ labels (B,)] -> real/fake logits (B,), projection head."""

    def __init__(
        self, channels: int, num_classes: int, image_size: int, width: int, spectral_norm: bool
    ) -> None:
        super().__init__()
        widths = stage_widths(width, num_resolution_steps(image_size))
        self.features = downsampling_stack(channels, widths, spectral_norm=spectral_norm)
        size = widths[-1] * 16
        self.head = maybe_spectral_norm(nn.Linear(size, 1), spectral_norm)
        self.class_embedding = None
        if num_classes:
            embedding = nn.Embedding(num_classes, size)
            nn.init.normal_(embedding.weight, std=0.02)
            self.class_embedding = maybe_spectral_norm(embedding, spectral_norm)

    def forward(self, images: Tensor, labels: Tensor | None) -> Tensor:
        h = self.features(images * 2 - 1).flatten(1)  # (B, F * 16)
        out = self.head(h).squeeze(1)  # (B,)
        if self.class_embedding is not None:
            out = out + (self.class_embedding(labels) * h).sum(dim=1)  # projection
        return out


class GAN(Generator):
    """Class-conditional DCGAN with a projection discriminator.

    Args:
        image_size: power of two in [16, 128].
        channels: 1 or 3.
        num_classes: 0 for unconditional, else the number of classes it is conditioned on.
        latent_dim: size of the latent code z ~ N(0, I).
        width: channels of the highest-resolution stage (doubled per stage, capped at 8x).
        loss: "bce" (non-saturating minimax) or "hinge".
        spectral_norm: spectral normalisation of the discriminator's weights.
        diff_augment: DiffAugment policy for the discriminator's inputs: a comma-separated
            subset of "color,translation,cutout", or "off" (None and "" also mean off, but
            ``create_generator`` drops None overrides, so pass "off" there). "auto" (default)
            means "translation,cutout" unless the training data is known to hold 10,000 images
            or more (``data_description["count"]``, which ``genaug train`` sets before the
            first step; a model that does not know its data size augments).
        discriminator_lr_ratio: the discriminator's learning rate as a multiple of ``lr``.
    """

    family = "gan"
    training_only_prefixes = ("discriminator.",)
    # Tuned on digits at 32 px (benchmarks/gan_quality.py): spectral norm keeps lr 1e-3 stable,
    # and 2,000 steps reach >= 90% conditional accuracy in minutes on a CPU.
    default_steps = 2000
    default_batch_size = 64
    default_lr = 1e-3

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
    ) -> None:
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
        if loss not in LOSSES:
            raise GenaugError(f"Unknown GAN loss {loss!r}; choose one of {', '.join(LOSSES)}.")
        if diff_augment != "auto":
            parse_policy(diff_augment)  # unknown operation -> clear error now, not mid-training
        if not discriminator_lr_ratio > 0:
            raise GenaugError(
                f"discriminator_lr_ratio must be positive, got {discriminator_lr_ratio!r}."
            )
        self.loss = loss
        self.diff_augment = diff_augment
        self.discriminator_lr_ratio = float(discriminator_lr_ratio)
        self.generator = GeneratorNetwork(latent_dim, num_classes, channels, image_size, width)
        self.discriminator = Discriminator(channels, num_classes, image_size, width, spectral_norm)
        self._collapsed_checks = 0  # consecutive log steps the discriminator won outright

    # ------------------------------------------------------------------------------ the model
    def decode_logits(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents (B, latent_dim) [+ labels (B,)] -> pixel logits (B, C, H, W)."""
        if self.conditional and labels is None:
            raise GenaugError(
                f"This {self.family} generator is class-conditional; pass one label per latent."
            )
        return self.generator(z, labels if self.conditional else None)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return torch.sigmoid(self.decode_logits(z, labels))

    @property
    def diff_augment_policy(self) -> str:
        """The DiffAugment policy training uses now ("" = off), with "auto" resolved."""
        if self.diff_augment != "auto":
            return ",".join(parse_policy(self.diff_augment))
        count = self.data_description.get("count")
        small = not isinstance(count, int) or count < AUTO_DIFF_AUGMENT_BELOW
        return AUTO_POLICY if small else ""

    def discriminate(self, images: Tensor, labels: Tensor | None, policy: str) -> Tensor:
        """Discriminator logits (B,) for images (B, C, H, W) in [0, 1], DiffAugmented first."""
        return self.discriminator(diff_augment(images, policy), labels).float()

    # ------------------------------------------------------------------------------ training
    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        generator_params = [
            p for name, p in self.named_parameters() if not name.startswith("discriminator.")
        ]
        return {
            "generator": torch.optim.Adam(generator_params, lr=lr, betas=betas),
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), lr=lr * self.discriminator_lr_ratio, betas=betas
            ),
        }

    def discriminator_step(
        self,
        images: Tensor,
        fake: Tensor,
        labels: Tensor | None,
        optimizer: torch.optim.Optimizer,
        autocast: AutocastFactory,
    ) -> dict[str, Tensor]:
        """One discriminator update on real images and (detached) generated ones."""
        policy = self.diff_augment_policy
        with autocast():
            # Real and fake in one batch: one forward (the discriminator has no BatchNorm).
            both = torch.cat([images, fake.detach()])  # (2B, C, H, W)
            both_labels = None if labels is None else torch.cat([labels, labels])
            real_logits, fake_logits = self.discriminate(both, both_labels, policy).chunk(2)
            d_loss = discriminator_loss(self.loss, real_logits, fake_logits)
        optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        optimizer.step()
        return {
            "d_loss": d_loss.detach(),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
        }

    def adversarial_loss(self, fake: Tensor, labels: Tensor | None) -> Tensor:
        """The generator's loss for generated images (B, C, H, W) (discriminator frozen)."""
        return generator_loss(self.loss, self.discriminate(fake, labels, self.diff_augment_policy))

    def training_step(
        self,
        images: Tensor,
        labels: Tensor | None,
        optimizers: dict[str, torch.optim.Optimizer],
        autocast: AutocastFactory,
    ) -> dict[str, Any]:
        labels = labels if self.conditional else None
        z = torch.randn(images.shape[0], self.latent_dim, device=images.device)
        with autocast():
            fake = self.decode(z, labels)  # (B, C, H, W); fake classes follow the real batch
        losses = self.discriminator_step(
            images, fake, labels, optimizers["discriminator"], autocast
        )
        # Generator step on the same fakes; freezing D skips its unused weight gradients.
        self.discriminator.requires_grad_(False)
        try:
            with autocast():
                g_loss = self.adversarial_loss(fake, labels)
            optimizers["generator"].zero_grad(set_to_none=True)
            g_loss.backward()
            optimizers["generator"].step()
        finally:
            self.discriminator.requires_grad_(True)
        return {"g_loss": g_loss.detach(), **losses}

    def check_training(self, losses: dict[str, float], step: int) -> str | None:
        """Stop when the discriminator has won outright for ``COLLAPSE_PATIENCE`` log steps."""
        won = losses.get("d_loss", 1.0) < 1e-3 and losses.get("g_loss", 0.0) > 10.0
        self._collapsed_checks = self._collapsed_checks + 1 if won else 0
        if self._collapsed_checks >= COLLAPSE_PATIENCE:
            return (
                f"The discriminator won outright for {self._collapsed_checks} log steps in a row "
                f"(d_loss {losses['d_loss']:.2g}, g_loss {losses['g_loss']:.3g}): the generator "
                "gets no useful gradient any more (mode collapse)."
            )
        return None


@register
def gan(**overrides: Any) -> GAN:
    """Conditional DCGAN: width 32, latent 64, BCE loss, spectral norm, DiffAugment "auto"."""
    return GAN(**overrides)


@register
def test_gan(**overrides: Any) -> GAN:
    """A tiny GAN for fast tests: width 8, latent 8."""
    return GAN(**{"width": 8, "latent_dim": 8, **overrides})
