"""DAGAN: an image-conditioned GAN, ``G(x, z)`` -> another plausible member of ``x``'s class.

Antoniou et al., "Data Augmentation Generative Adversarial Networks" (2017). The generator is
trained on pairs of images of the same class and learns what *another drawing of the same thing*
looks like, so it carries over to classes it never saw and needs no class label at augment time.

Generator (U-Net): a DCGAN encoder (strided 4x4 convolutions, BatchNorm, LeakyReLU(0.2)) takes
``x`` from S px down to 4x4; the noise ``z`` is projected to a few 4x4 planes and concatenated at
the bottleneck and, upsampled (bilinear), at every decoder level; the decoder (nearest 2x resize
+ 3x3 convolution, BatchNorm, ReLU) concatenates the encoder's features of the same size (skip
connections) except at the highest resolution (``skip_drop=1``), and ends in a sigmoid, so
outputs lie in [0, 1].

Discriminator on *pairs* (channels concatenated, strided convolutions with spectral norm, as in
:class:`~genaug.models.gan.GAN`): real pairs ``(x_i, x_j)`` are two different images of one class,
fake pairs ``(x_i, G(x_i, z))``. Copying ``x_i`` is therefore caught (no real pair is two copies).
With ``mismatched_pairs`` the discriminator also learns that two images of *different* classes
are no pair (matching-aware discrimination, Reed et al. 2016): ``(x_i, x_k)`` with ``x_k`` the
partner of another row joins the fakes. Without it the discriminator learnt class consistency
slowly on digits and variations drifted to other digits. The model sees no labels, so a rolled
partner may share the class by chance (about 1 in K for K balanced classes): a little label noise.
DiffAugment applies the *same* random transform to both images of a pair, so it never makes a
pair look mismatched. Losses are the GAN family's (``"bce"`` non-saturating minimax or
``"hinge"``).

Optional diversity term (``diversity_weight``, mode seeking, Mao et al. 2019): the generator also
maximises ``mean|G(x, z1) - G(x, z2)| / mean|z1 - z2|``, so different noise gives different
variations of one exemplar rather than one fixed "partner" per image. A best-of-two match term
(``match_weight``) pulls the nearer of the two draws towards the real partner ``x_j`` (L1), a
direct signal that ties the variation to the exemplar's class while the other draw stays free.

Why these defaults (``skip_drop=1``, ``upsample="resize"``, ``match_weight=10``, 1500 steps):
measured with ``benchmarks/experiments/variation_quality.py`` on the 106 new Omniglot classes
(Japanese_(katakana), Sanskrit, Tagalog; 212 exemplars x 6 variations), models trained on the
136 base classes at 32 px, one CPU thread. "preservation": share of variations whose nearest
new-class image (the exemplar excluded; pixel L2 / cosine) is of the exemplar's class; "pair":
mean |pixel| difference of two variations of one exemplar. References: RandAugment 0.219 / 0.299
with pair 0.102; the unchanged exemplar 0.368 / 0.373; another real drawing 0.255 / 0.297.

- old defaults (full skips, transposed convolutions, nearest noise), 500 steps (144 s):
  0.072 / 0.126, pair 0.017: the exemplar's rough outline with a grid texture, the same for
  every noise draw.
- ``skip_drop=1, upsample="resize"``, 500 steps (264 s): 0.087 / 0.072, pair 0.062: smooth
  strokes that change with the noise, but mostly generic characters, not the exemplar's.
- the same + ``match_weight=10``, 500 steps (292 s): 0.089 / 0.086, pair 0.056: smoother, a little more
  of the exemplar's shape.
- the defaults, 1500 steps (``genaug train --model dagan ... --out runs/omniglot-base/dagan``,
  799 s): 0.084 / 0.089, pair 0.084 (strength 0.5: 0.098 / 0.093, pair 0.052): clean, varied
  strokes that look like base-alphabet characters, with only loose ties to the exemplar.

None of these is near RandAugment's class preservation on this pixel proxy: treat the family as
an experiment, not a recommended augmentation, until the episodic bench says otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genaug.errors import GenaugError
from genaug.models.base import AutocastFactory, Generator, num_resolution_steps
from genaug.models.dagan_nets import UPSAMPLING, PairDiscriminator, UNetGenerator
from genaug.models.diffaugment import diff_augment, parse_policy
from genaug.models.gan import GAN, LOSSES, discriminator_loss, generator_loss
from genaug.models.registry import register
from genaug.models.varying import NO_EXEMPLAR, check_exemplars, vary_exemplars


class DAGAN(Generator):
    """Image-conditioned GAN trained on same-class pairs; ``vary(images)`` makes variations.

    Args:
        image_size: power of two in [16, 128].
        channels: 1 or 3.
        num_classes: ignored (accepted so the training loop builds every family alike): labels
            only pair the training images, the model never sees them and stays unconditional.
            ``class_names`` still lists the classes of its training pairs (set by the loop, kept
            in checkpoints), so users can check that new classes are disjoint from them.
        latent_dim: size of the noise z ~ N(0, I) of one variation.
        width: channels of the highest-resolution stage (doubled per stage, capped at 8x).
        noise_channels: 4x4 noise planes concatenated at the bottleneck and at each decoder level.
        loss: "bce" (non-saturating minimax) or "hinge", as in the GAN family.
        spectral_norm: spectral normalisation of the discriminator's weights.
        diff_augment: DiffAugment policy of the discriminator's pairs (same transform on both
            images): "auto" (translation + cutout below 10,000 training images), a
            comma-separated subset of "color,translation,cutout", or "off".
        discriminator_lr_ratio: the discriminator's learning rate as a multiple of ``lr``.
        diversity_weight: weight of the mode-seeking term (0 turns it off and saves a pass).
        mismatched_pairs: also show the discriminator pairs of different classes as fakes.
        skip_drop: how many of the highest-resolution skip connections to remove, so the
            generator cannot pass the exemplar's pixels straight through and ignore the noise.
        upsample: "transposed" (4x4 transposed convolutions) or "resize" (nearest 2x + 3x3
            convolution, bilinear noise planes).
        match_weight: weight of a best-of-two L1 term pulling one of the two noise draws towards
            the partner image (0 = off: a pure GAN).
    """

    family = "dagan"
    image_conditioned = True
    trains_on_pairs = True
    training_only_prefixes = ("discriminator.",)
    default_steps = 1500
    default_batch_size = 64
    default_lr = 5e-4
    # Checkpoints written before these arguments existed were built this way.
    legacy_args = {"skip_drop": 0, "upsample": "transposed", "match_weight": 0.0}

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        latent_dim: int = 32,
        width: int = 32,
        noise_channels: int = 8,
        loss: str = "bce",
        spectral_norm: bool = True,
        diff_augment: str | None = "auto",
        discriminator_lr_ratio: float = 1.0,
        diversity_weight: float = 0.5,
        mismatched_pairs: bool = True,
        skip_drop: int = 1,
        upsample: str = "resize",
        match_weight: float = 10.0,
    ) -> None:
        del num_classes  # see the docstring: the model is unconditional
        super().__init__(
            image_size=image_size,
            channels=channels,
            num_classes=0,
            latent_dim=latent_dim,
            width=width,
            noise_channels=noise_channels,
            loss=loss,
            spectral_norm=spectral_norm,
            diff_augment=diff_augment,
            discriminator_lr_ratio=discriminator_lr_ratio,
            diversity_weight=diversity_weight,
            mismatched_pairs=mismatched_pairs,
            skip_drop=skip_drop,
            upsample=upsample,
            match_weight=match_weight,
        )
        if loss not in LOSSES:
            raise GenaugError(f"Unknown GAN loss {loss!r}; choose one of {', '.join(LOSSES)}.")
        if diff_augment != "auto":
            parse_policy(diff_augment)  # unknown operation -> clear error now, not mid-training
        for name, value in (("noise_channels", noise_channels), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise GenaugError(f"{name} must be a positive integer, not {value!r}.")
        levels = num_resolution_steps(image_size) - 1  # decoder levels with a skip
        if not isinstance(skip_drop, int) or not 0 <= skip_drop <= levels:
            raise GenaugError(
                f"skip_drop must be an integer from 0 to {levels} at {image_size} px, "
                f"not {skip_drop!r}."
            )
        if upsample not in UPSAMPLING:
            raise GenaugError(
                f"Unknown upsample {upsample!r}; choose one of {', '.join(UPSAMPLING)}."
            )
        if not match_weight >= 0:
            raise GenaugError(f"match_weight must be at least 0, not {match_weight!r}.")
        if not discriminator_lr_ratio > 0 or not diversity_weight >= 0:
            raise GenaugError(
                "discriminator_lr_ratio must be positive and diversity_weight at least 0, got "
                f"{discriminator_lr_ratio!r} and {diversity_weight!r}."
            )
        self.loss = loss
        self.diff_augment = diff_augment
        self.discriminator_lr_ratio = float(discriminator_lr_ratio)
        self.diversity_weight = float(diversity_weight)
        self.mismatched_pairs = bool(mismatched_pairs)
        self.match_weight = float(match_weight)
        self.generator = UNetGenerator(
            channels, image_size, width, latent_dim, noise_channels, skip_drop, upsample
        )
        self.discriminator = PairDiscriminator(channels, image_size, width, spectral_norm)
        self._collapsed_checks = 0  # consecutive log steps the discriminator won outright

    # Shared with the GAN family: "auto" DiffAugment by data size, and the collapse stop.
    diff_augment_policy = GAN.diff_augment_policy
    check_training = GAN.check_training

    # ------------------------------------------------------------------------------ the model
    def generate(self, images: Tensor, z: Tensor) -> Tensor:
        """Exemplars (B, C, S, S) in [0, 1] + noise (B, latent_dim) -> variations in [0, 1].

        Differentiable; ``z = 0`` gives the generator's central variation (not ``images``).
        """
        return torch.sigmoid(self.generator(images, z))

    @torch.no_grad()
    def vary(
        self,
        images: Tensor,
        strength: float = 1.0,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Variations (B, C, S, S) float32 in [0, 1] of images (B, C, S, S) in [0, 1].

        The noise is ``strength * N(0, I)``: 1 is the spread training saw, 0 the central
        variation, values above 1 extrapolate. ``generator`` (on the model's device) makes the
        noise reproducible; ``noise`` (B, latent_dim) gives it instead (then ``generator`` is
        unused). Works for any class, including ones the model never saw.
        """
        return vary_exemplars(self, images, strength, generator, noise)

    def check_exemplars(self, images: Tensor) -> Tensor:
        """Images as float on the model's device, or a clear error for the wrong shape."""
        return check_exemplars(self, images)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Not available: a DAGAN needs an exemplar; see :meth:`vary`."""
        raise GenaugError(NO_EXEMPLAR.format(family=self.family))

    # ------------------------------------------------------------------------------ training
    def discriminate(self, anchors: Tensor, others: Tensor, policy: str) -> Tensor:
        """Pair logits (B,); DiffAugment applies one random transform to both images of a pair."""
        if policy:
            others = others.to(anchors.dtype)  # same dtype: the two draws below are identical
            seed = int(torch.randint(0, 2**62, (1,)))  # from the global RNG: reproducible
            same = [torch.Generator(device=anchors.device).manual_seed(seed) for _ in range(2)]
            anchors = diff_augment(anchors, policy, same[0])
            others = diff_augment(others, policy, same[1])
        return self.discriminator(anchors, others).float()

    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), lr=lr * self.discriminator_lr_ratio, betas=betas
            ),
        }

    def training_step(
        self,
        images: Tensor,
        labels: Tensor | None,
        optimizers: dict[str, torch.optim.Optimizer],
        autocast: AutocastFactory,
        partners: Tensor | None = None,
    ) -> dict[str, Any]:
        if partners is None or partners.shape != images.shape:
            raise GenaugError(
                f"A {self.family} generator trains on pairs: pass partners shaped like the images "
                "(another image of each one's class), as `genaug train` does."
            )
        b = images.shape[0]
        policy = self.diff_augment_policy
        z = torch.randn(b, self.latent_dim, device=images.device)
        two = self.diversity_weight > 0 or self.match_weight > 0
        with autocast():
            if two:  # one pass for both noises, so BatchNorm sees them together
                z2 = torch.randn(b, self.latent_dim, device=images.device)
                both = self.generate(torch.cat([images, images]), torch.cat([z, z2]))
                fake, fake2 = both.chunk(2)  # each (B, C, S, S)
            else:
                fake = self.generate(images, z)  # (B, C, S, S)

        # Discriminator: real pairs (x_i, x_j) against fake pairs (x_i, G(x_i, z)) and, when on,
        # mismatched pairs (x_i, partner of row i - 1), all in one batch.
        others = [partners, fake.detach()] + (
            [partners.roll(1, 0)] if self.mismatched_pairs else []
        )
        with autocast():
            logits = self.discriminate(
                images.repeat(len(others), 1, 1, 1), torch.cat(others), policy
            )
            real_logits, fake_logits, *mismatch = logits.chunk(len(others))
            d_loss = discriminator_loss(self.loss, real_logits, torch.cat([fake_logits, *mismatch]))
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()

        # Generator on the same fakes; freezing D skips its unused weight gradients.
        self.discriminator.requires_grad_(False)
        try:
            with autocast():
                g_loss = generator_loss(self.loss, self.discriminate(images, fake, policy))
                total = g_loss
                if two:
                    spread = (fake.float() - fake2.float()).abs().mean() / (z - z2).abs().mean()
                    total = g_loss - self.diversity_weight * spread
                if self.match_weight > 0:  # best of two draws: one of them near the partner
                    gaps = [(f.float() - partners).abs().flatten(1).mean(1) for f in (fake, fake2)]
                    match = torch.minimum(*gaps).mean()
                    total = total + self.match_weight * match
            optimizers["generator"].zero_grad(set_to_none=True)
            total.backward()
            optimizers["generator"].step()
        finally:
            self.discriminator.requires_grad_(True)
        losses = {
            "g_loss": g_loss.detach(),
            "d_loss": d_loss.detach(),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
        }
        if two:
            losses["diversity"] = spread.detach()
        if self.match_weight > 0:
            losses["match"] = match.detach()
        if mismatch:
            losses["d_mismatch"] = mismatch[0].detach().mean()
        return losses


@register
def dagan(**overrides: Any) -> DAGAN:
    """DAGAN: U-Net width 32, noise 32 (8 planes per level), BCE loss, diversity weight 0.5,
    top skip dropped, resize-convolution decoder, best-of-two partner match weight 10."""
    return DAGAN(**overrides)


@register
def test_dagan(**overrides: Any) -> DAGAN:
    """A tiny DAGAN for fast tests: width 8, noise 8 (2 planes per level)."""
    return DAGAN(**{"width": 8, "latent_dim": 8, "noise_channels": 2, **overrides})
