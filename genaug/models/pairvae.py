"""Pair VAE: an image-conditioned VAE, ``G(x, z)`` -> another plausible member of ``x``'s class.

The variational counterpart of the DAGAN (:mod:`genaug.models.dagan`), trained on the same pairs
``(x_i, x_j)`` of two different images of one class (a conditional VAE, Sohn et al. 2015, with the
exemplar as the condition). It learns "another drawing of the same thing" without a class label,
so it carries over to classes it never saw.

- Exemplar encoder (U-Net side, DCGAN blocks: strided 4x4 convolutions, BatchNorm, LeakyReLU(0.2))
  takes ``x_i`` from S px down to 4x4 and keeps its features at each size.
- Posterior ``q(z | x_i, x_j)`` (training only): the same kind of encoder over the pair, channels
  concatenated, to a diagonal Gaussian. The prior is ``N(0, I)``, so at augment time
  ``vary(x) = D(features(x), strength * noise)`` with ``noise ~ N(0, I)``: strength 1 is the
  spread training saw, 0 the decoder's central variation.
- Decoder ``D``: ``z`` projected to 4x4 planes and joined with the exemplar's 4x4 features, then
  transposed 4x4 convolutions (BatchNorm, ReLU) up to S px; the exemplar's features of the
  coarsest ``skips`` levels above 4x4 are concatenated on the way (skip connections).

Objective per pair (minimised): ``BCE(D(features(x_i), z), x_j) + beta * KL(q || N(0, I))``,
the Bernoulli likelihood summed over pixels (Omniglot's strokes are binary). The target is a
*different* drawing ``x_j``, so copying ``x_i`` is penalised. The defaults come from a short
sweep on Omniglot (32 px, base classes, 1000 steps, proxy: nearest-neighbour class preservation
of variations of unseen classes): with ``beta = 1`` the posterior carries the whole partner in
``z`` (about 20 nats) and the decoder ignores the exemplar, so prior samples are random
characters; ``beta = 6`` collapses ``z`` (under 1 nat); ``beta = 3`` with the 8 and 16 px skips
(``skips=2``) keeps the exemplar's shape and still varies it.

Optionally a frozen classifier trained on the same base classes (``critic``: the folder of
``genaug bench``'s base classifier; :mod:`genaug.models.critic`) judges a prior sample
``D(features(x_i), z ~ N(0, I))`` per pair, and ``critic_weight`` x its cross-entropy against
``x_i``'s class is added: the variations ``vary`` makes should stay in the class as that
classifier's features see it (issue 13's class-preserving loss). Off by default.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.errors import GenaugError
from genaug.models.base import AutocastFactory, Generator, num_resolution_steps, stage_widths
from genaug.models.registry import register
from genaug.models.varying import NO_EXEMPLAR, check_exemplars, vary_exemplars


def _down(in_channels: int, widths: list[int]) -> nn.ModuleList:
    """DCGAN downsampling blocks: (B, in, S, S) -> (B, widths[k], S / 2^(k+1), ...) per block."""
    blocks = nn.ModuleList()
    for i, out_channels in enumerate(widths):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=i == 0)]
        if i:  # DCGAN: no BatchNorm on the first layer
            layers.append(nn.BatchNorm2d(out_channels))
        blocks.append(nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True)))
        in_channels = out_channels
    return blocks


class ExemplarDecoder(nn.Module):
    """Exemplar features (per level) + latents (B, latent_dim) -> pixel logits (B, C, S, S)."""

    def __init__(
        self, channels: int, widths: list[int], latent_dim: int, latent_channels: int, skips: int
    ) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.skips = skips
        self.from_latent = nn.Sequential(
            nn.Linear(latent_dim, latent_channels * 16), nn.ReLU(inplace=True)
        )
        self.middle = nn.Sequential(
            nn.Conv2d(widths[-1] + latent_channels, widths[-1], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(inplace=True),
        )
        self.up = nn.ModuleList()
        in_channels = widths[-1]
        for level, out_channels in enumerate(reversed(widths[:-1]), start=1):  # 8 px ... S/2 px
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                )
            )
            in_channels = out_channels * (2 if level <= skips else 1)  # + the exemplar's skip
        self.to_image = nn.ConvTranspose2d(in_channels, channels, 4, 2, 1)

    def forward(self, features: list[Tensor], z: Tensor) -> Tensor:
        # features: the exemplar's (B, w_k, S / 2^(k+1), ...) for k = 0 .. steps-1 (4x4 last).
        planes = self.from_latent(z).view(z.shape[0], self.latent_channels, 4, 4)
        h = self.middle(torch.cat([features[-1], planes.to(features[-1].dtype)], dim=1))
        for level, block in enumerate(self.up, start=1):
            h = block(h)  # (B, w, 2H, 2W)
            if level <= self.skips:
                h = torch.cat([h, features[-1 - level]], dim=1)
        return self.to_image(h)  # (B, C, S, S) logits


class PairVAE(Generator):
    """Image-conditioned VAE trained on same-class pairs; ``vary(images)`` makes variations.

    Args:
        image_size: power of two in [16, 128].
        channels: 1 or 3.
        num_classes: ignored (as for the DAGAN): labels only pair the training images; the model
            is unconditional and ``class_names`` records the classes it learnt from.
        latent_dim: size of the latent ``z`` of one variation (prior N(0, I)).
        width: channels of the highest-resolution stage (doubled per stage, capped at 8x).
        latent_channels: 4x4 planes the latent is projected to at the bottleneck.
        skips: how many levels of exemplar features above the 4x4 bottleneck the decoder gets,
            coarsest first (0: the bottleneck only; more than there are: all of them).
        beta: weight of the KL term.
        critic: a classifier folder (``pretrained/base-classifier`` of a bench) trained on the
            same classes, for the class-preserving loss; used in training only.
        critic_weight: weight of that loss (0: off).
    """

    family = "pairvae"
    image_conditioned = True
    trains_on_pairs = True
    default_steps = 3000
    default_batch_size = 64
    default_lr = 1e-3
    legacy_args = {"critic": None, "critic_weight": 0.0}

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        latent_dim: int = 32,
        width: int = 32,
        latent_channels: int = 16,
        skips: int = 2,
        beta: float = 3.0,
        critic: str | None = None,
        critic_weight: float = 0.0,
    ) -> None:
        del num_classes  # see the docstring: the model is unconditional
        super().__init__(
            image_size=image_size,
            channels=channels,
            num_classes=0,
            latent_dim=latent_dim,
            width=width,
            latent_channels=latent_channels,
            skips=skips,
            beta=beta,
            critic=critic,
            critic_weight=critic_weight,
        )
        if not float(critic_weight) >= 0 or (critic_weight and not critic):
            raise GenaugError(
                f"critic_weight must be at least 0 and needs a critic folder, got "
                f"{critic_weight!r} with critic {critic!r}."
            )
        self.critic_path, self.critic_weight = critic, float(critic_weight)
        for name, value in (("width", width), ("latent_channels", latent_channels)):
            if not isinstance(value, int) or value < 1:
                raise GenaugError(f"{name} must be a positive integer, not {value!r}.")
        if not isinstance(skips, int) or skips < 0 or not float(beta) > 0:
            raise GenaugError(
                f"skips must be an integer of at least 0 and beta positive, got {skips!r} and "
                f"{beta!r}."
            )
        self.beta = float(beta)
        widths = stage_widths(width, num_resolution_steps(image_size))  # S/2 ... 4 px
        self.exemplar_encoder = _down(channels, widths)
        self.pair_encoder = nn.Sequential(*_down(2 * channels, widths), nn.Flatten())
        self.to_posterior = nn.Linear(widths[-1] * 16, 2 * latent_dim)
        skips = min(skips, len(widths) - 1)
        self.decoder = ExemplarDecoder(channels, widths, latent_dim, latent_channels, skips)

    @property
    def wants_pair_labels(self) -> bool:
        """Whether training needs the pairs' classes (for the critic loss only)."""
        return bool(self.critic_weight)

    # ------------------------------------------------------------------------------ the model
    def features(self, images: Tensor) -> list[Tensor]:
        """Exemplars (B, C, S, S) in [0, 1] -> their encoder features, S/2 px ... 4 px."""
        h = images * 2 - 1  # centre the inputs
        out = []
        for block in self.exemplar_encoder:
            h = block(h)
            out.append(h)
        return out

    def posterior(self, images: Tensor, partners: Tensor) -> tuple[Tensor, Tensor]:
        """``q(z | x_i, x_j)``: mean and log-variance (B, latent_dim) each (training only)."""
        pairs = torch.cat([images, partners.to(images.dtype)], dim=1) * 2 - 1  # (B, 2C, S, S)
        mean, logvar = self.to_posterior(self.pair_encoder(pairs)).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def generate(self, images: Tensor, z: Tensor) -> Tensor:
        """Exemplars (B, C, S, S) in [0, 1] + latents (B, latent_dim) -> variations in [0, 1]."""
        return torch.sigmoid(self.decoder(self.features(images), z))

    @torch.no_grad()
    def vary(
        self,
        images: Tensor,
        strength: float = 1.0,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Variations (B, C, S, S) float32 in [0, 1] of images (B, C, S, S) in [0, 1].

        ``z = strength * noise`` under the N(0, I) prior: 1 is the spread training saw, 0 the
        central variation. ``generator`` (on the model's device) makes the noise reproducible;
        ``noise`` (B, latent_dim) gives it instead. Works for classes the model never saw.
        """
        return vary_exemplars(self, images, strength, generator, noise)

    def check_exemplars(self, images: Tensor) -> Tensor:
        """Images as float on the model's device, or a clear error for the wrong shape."""
        return check_exemplars(self, images)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Not available: a pair VAE needs an exemplar; see :meth:`vary`."""
        raise GenaugError(NO_EXEMPLAR.format(family=self.family))

    # ------------------------------------------------------------------------------ training
    def elbo_terms(self, images: Tensor, partners: Tensor) -> dict[str, Tensor]:
        """Batch means of the reconstruction of ``partners`` from ``images`` and of the KL."""
        mean, logvar = self.posterior(images, partners)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)  # reparameterisation
        logits = self.decoder(self.features(images), z).float()  # (B, C, S, S)
        recon = F.binary_cross_entropy_with_logits(logits, partners.float(), reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()).float()
        return {"recon": recon / images.shape[0], "kl": kl / images.shape[0]}

    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"pairvae": torch.optim.Adam(self.parameters(), lr=lr)}

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
        with autocast():
            terms = self.elbo_terms(images, partners)
            loss = terms["recon"] + self.beta * terms["kl"]
            if self.critic_weight:
                terms["critic"] = self._critic_loss(images, labels)
                loss = loss + self.critic_weight * terms["critic"]
        optimizer = optimizers["pairvae"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    def _critic_loss(self, images: Tensor, labels: Tensor | None) -> Tensor:
        """The critic's cross-entropy on one prior variation of each exemplar (B images)."""
        if labels is None or not getattr(self, "class_names", None):
            raise GenaugError(
                "the critic loss needs the training images' classes; train on labelled base "
                "classes (not --unlabeled)."
            )
        critic = self.__dict__.get("_critic")  # not a submodule: never saved or averaged
        if critic is None:
            from genaug.models.critic import ClassifierCritic

            critic = ClassifierCritic(self.critic_path).to(images.device)
            self.__dict__["_critic"] = critic
            self.__dict__["_critic_classes"] = critic.class_index(self.class_names).to(
                images.device
            )
        z = torch.randn(images.shape[0], self.latent_dim, device=images.device)
        varied = torch.sigmoid(self.decoder(self.features(images), z).float())  # (B, C, S, S)
        return critic.loss(varied, self.__dict__["_critic_classes"][labels.long()])


@register
def pairvae(**overrides: Any) -> PairVAE:
    """Pair VAE: width 32, latent 32, skips at 8 and 16 px (at 32 px), beta 3."""
    return PairVAE(**overrides)


@register
def test_pairvae(**overrides: Any) -> PairVAE:
    """A tiny pair VAE for fast tests: width 8, latent 8, 4 latent planes."""
    return PairVAE(**{"width": 8, "latent_dim": 8, "latent_channels": 4, **overrides})
