"""Hallucinator: a feature-space generator ``G(f, z) -> f'`` over a frozen extractor's features.

Generated pixels add little over a strong pretrained learner; what helped in the literature is
generation in the learner's own feature space (Hariharan & Girshick 2017; Wang et al. 2018). A
hallucinator takes the features ``f`` (D,) of one image, as a frozen
:class:`~genaug.models.features.FeatureExtractor` sees it, and a noise ``z``, and returns the
features of another plausible member of the image's class. A few-shot head
(:mod:`genaug.fewshot`: prototypes, a linear probe, the head of a fine-tune) is then fit on the
real features plus ``M`` hallucinated ones per shot.

It learns from base classes only, through ``genaug train`` (the one loop; pairs of two images of
one base class), with the extractor's weights frozen, in one of two ways (``objective``):

- ``pairs`` (cheap; the pair VAE's recipe in feature space): a conditional VAE, posterior
  ``q(z | f_i, f_j)`` over two features of one class, decoder ``f_j ~ G(f_i, z)``, prior
  ``N(0, I)``; the reconstruction is the squared distance of unit-normalised features, divided by
  ``2 * spread ** 2``, plus ``beta`` x KL.
- ``episodes`` (Wang et al. 2018: trained for the learner's loss): each batch of pairs is a
  base-class episode; each anchor ``f_i`` is one shot, its prototype is the mean of the unit
  features of the shot and ``views`` hallucinations of it, and the loss is the cross-entropy of a
  cosine prototype classifier (learnt temperature) on the partners ``f_j`` as queries (other
  anchors of the query's class are masked out).

Features are handled on the unit sphere (the heads compare directions): ``G`` sees
``u = f / |f|`` and returns ``|f| * (u + delta(u, z))``.

The checkpoint records the extractor (its spec, weight fingerprint, feature size, image size and
channels); :meth:`Hallucinator.check_extractor` refuses another one in one sentence. A
hallucinator makes features, never images: ``sample``, ``decode`` and ``vary`` refuse.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.errors import GenaugError
from genaug.models.base import AutocastFactory, Generator
from genaug.models.registry import register

__all__ = ["OBJECTIVES", "Hallucinator"]

OBJECTIVES = ("pairs", "episodes")
_NO_IMAGES = (
    "A hallucinator makes features, not images; use it where a few-shot head is fit "
    "(genaug.fewshot, or the bench's proto, probe and fine-tune heads)."
)


def _mlp(inputs: int, width: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, width),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Linear(width, width),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Linear(width, outputs),
    )


class Hallucinator(Generator):
    """Feature-space generator over a frozen extractor's features (see the module docstring).

    Args:
        image_size, channels: the images the extractor takes (the training data's).
        num_classes: ignored (labels only pair the training images; ``class_names`` records
            the classes it learnt from).
        latent_dim: size of the noise ``z``.
        extractor: where the extractor comes from: a classifier folder (a bench's
            ``pretrained/base-classifier``), ``timm:NAME@FILE`` or ``memory:FINGERPRINT``
            (see :func:`~genaug.models.features.load_extractor`); needed to train.
        feature_dim, extractor_fingerprint: filled from the extractor when it is given (a
            checkpoint records them).
        width: hidden units of the networks.
        objective: ``pairs`` or ``episodes``.
        beta, spread: the ``pairs`` objective's KL weight and reconstruction scale.
        views: hallucinations per shot in a training episode (``episodes``).
    """

    family = "hallucinator"
    trains_on_pairs = True
    feature_space = True
    default_steps = 2000
    default_batch_size = 64
    default_lr = 1e-3

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        latent_dim: int = 16,
        extractor: str | None = None,
        feature_dim: int = 0,
        extractor_fingerprint: str | None = None,
        width: int = 256,
        objective: str = "episodes",
        beta: float = 1.0,
        spread: float = 0.1,
        views: int = 4,
    ) -> None:
        del num_classes  # see the docstring
        if objective not in OBJECTIVES:
            raise GenaugError(
                f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}."
            )
        if extractor is not None and not feature_dim:  # a new model: read the extractor
            from genaug.models.features import load_extractor

            found = load_extractor(extractor, image_size, channels)
            if (found.image_size, found.channels) != (image_size, channels):
                raise GenaugError(
                    f"the extractor {extractor} takes {found.channels}-channel "
                    f"{found.image_size} px images but the training data is {channels}-channel "
                    f"{image_size} px; load the data at the extractor's size (--image-size)."
                )
            feature_dim, extractor_fingerprint = found.feature_dim, found.fingerprint
        for name, value in (("width", width), ("views", views), ("feature_dim", feature_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise GenaugError(f"{name} must be a whole number >= 0, got {value!r}.")
        if not float(beta) > 0 or not float(spread) > 0 or width < 1 or views < 1:
            raise GenaugError(
                f"beta and spread must be positive and width, views at least 1; got beta "
                f"{beta!r}, spread {spread!r}, width {width!r}, views {views!r}."
            )
        super().__init__(
            image_size=image_size,
            channels=channels,
            num_classes=0,
            latent_dim=latent_dim,
            extractor=extractor,
            feature_dim=feature_dim,
            extractor_fingerprint=extractor_fingerprint,
            width=width,
            objective=objective,
            beta=beta,
            spread=spread,
            views=views,
        )
        self.extractor_spec, self.extractor_fingerprint = extractor, extractor_fingerprint
        # Without an extractor the size is a placeholder: such a model cannot train (it says so).
        self.feature_dim = int(feature_dim) or 8
        self.objective, self.beta, self.spread, self.views = objective, beta, spread, views
        d = self.feature_dim
        self.net = _mlp(d + latent_dim, width, d)  # (u, z) -> delta
        if objective == "pairs":
            self.to_posterior = _mlp(2 * d, width, 2 * latent_dim)
        else:  # the prototype classifier's temperature, learnt with G (log scale)
            self.log_temperature = nn.Parameter(torch.tensor(2.3))

    @property
    def wants_pair_labels(self) -> bool:
        """The episode objective masks the other anchors of a query's class: it needs labels."""
        return self.objective == "episodes"

    # ------------------------------------------------------------------------------ the model
    def check_extractor(self, extractor: Any) -> None:
        """Refuse an extractor this hallucinator was not trained on (one sentence)."""
        dim = getattr(extractor, "feature_dim", None)
        where = self.extractor_spec or "an extractor"
        if dim != self.feature_dim:
            raise GenaugError(
                f"this hallucinator was trained on {self.feature_dim}-dimensional features of "
                f"{where}, but the extractor given makes {dim}; use the extractor it was "
                "trained on, or train a hallucinator on this one."
            )
        fingerprint = getattr(extractor, "fingerprint", None)
        if self.extractor_fingerprint and fingerprint != self.extractor_fingerprint:
            raise GenaugError(
                f"this hallucinator was trained on the features of {where} (weights "
                f"{self.extractor_fingerprint}), but the extractor given has other weights "
                f"({fingerprint}); use that extractor, or train a hallucinator on this one."
            )

    def generate(self, features: Tensor, z: Tensor) -> Tensor:
        """Features (B, D) + noise (B, latent_dim) -> hallucinated features (B, D)."""
        norm = features.norm(dim=1, keepdim=True).clamp_min(1e-8)
        unit = features / norm
        return norm * self._move(unit, z)

    def _move(self, unit: Tensor, z: Tensor) -> Tensor:
        return unit + self.net(torch.cat([unit, z.to(unit.dtype)], dim=1))

    @torch.no_grad()
    def hallucinate(
        self,
        features: Tensor,
        count: int,
        strength: float = 1.0,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """``count`` hallucinations of each row of ``features`` (N, D): (N * count, D) float32,
        the ``count`` of row ``i`` consecutive. ``z = strength * noise``, ``noise`` (N * count,
        latent_dim) ~ N(0, I) drawn with ``generator`` (on the model's device) unless given."""
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise GenaugError(
                f"this hallucinator takes features (N, {self.feature_dim}), got "
                f"{tuple(features.shape)}; extract them with the extractor it was trained on."
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise GenaugError(f"count must be a whole number >= 1, got {count!r}.")
        repeated = features.to(self.device, torch.float32).repeat_interleave(count, dim=0)
        shape = (repeated.shape[0], self.latent_dim)
        if noise is None:
            noise = torch.randn(*shape, generator=generator, device=self.device)
        elif tuple(noise.shape) != shape:
            raise GenaugError(f"noise must be shaped {shape}, got {tuple(noise.shape)}.")
        return self.generate(repeated, noise.to(self.device).float() * float(strength)).float()

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Not available: a hallucinator makes features, not images."""
        raise GenaugError(_NO_IMAGES)

    def sample(self, n: int, labels: Tensor | None = None, generator: Any = None) -> Tensor:
        """Not available: a hallucinator makes features, not images."""
        raise GenaugError(_NO_IMAGES)

    def vary(self, images: Tensor, strength: float = 1.0, generator: Any = None, noise=None):
        """Not available: a hallucinator makes features, not images."""
        raise GenaugError(_NO_IMAGES)

    # ------------------------------------------------------------------------------ training
    def _extractor(self, device: torch.device) -> Any:
        """The frozen extractor (loaded once; not a submodule: never saved or averaged)."""
        extractor = self.__dict__.get("_frozen_extractor")
        if extractor is None:
            if not self.extractor_spec:
                raise GenaugError(
                    "a hallucinator trains on an extractor's features; give one with "
                    "--model-arg extractor=FOLDER (a bench's pretrained/base-classifier) or "
                    "genaug.fewshot.train_hallucinator."
                )
            from genaug.models.features import load_extractor

            extractor = load_extractor(self.extractor_spec, self.image_size, self.channels)
            self.check_extractor(extractor)
            self.__dict__["_frozen_extractor"] = extractor
        return extractor.to(device)

    def _unit_features(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            features = self._extractor(images.device).features(images.float()).float()
        return features / features.norm(dim=1, keepdim=True).clamp_min(1e-8)  # (B, D)

    def pair_losses(self, anchors: Tensor, partners: Tensor) -> dict[str, Tensor]:
        """The ``pairs`` objective's batch means, on unit features (B, D) each."""
        mean, logvar = self.to_posterior(torch.cat([anchors, partners], 1)).chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        moved = self._move(anchors, z)
        recon = (moved - partners).pow(2).sum(1).mean() / (2 * self.spread**2)
        kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp(), dim=1).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}

    def episode_losses(
        self, anchors: Tensor, partners: Tensor, labels: Tensor
    ) -> dict[str, Tensor]:
        """The ``episodes`` objective: a 1-shot cosine prototype classifier over the batch's
        anchors (each with ``views`` hallucinations), tested on the partners."""
        b = anchors.shape[0]
        z = torch.randn(b * self.views, self.latent_dim, device=anchors.device)
        moved = self._move(anchors.repeat_interleave(self.views, dim=0), z)  # (B * V, D)
        moved = F.normalize(moved, dim=1).view(b, self.views, -1)
        prototypes = F.normalize(anchors + moved.sum(1), dim=1)  # (B, D)
        logits = self.log_temperature.exp() * partners @ prototypes.T  # (B queries, B protos)
        same = labels[:, None] == labels[None, :]
        others = same & ~torch.eye(b, dtype=torch.bool, device=anchors.device)
        logits = logits.masked_fill(others, float("-inf"))
        target = torch.arange(b, device=anchors.device)
        loss = F.cross_entropy(logits.float(), target)
        accuracy = (logits.argmax(1) == target).float().mean()
        return {"loss": loss, "accuracy": accuracy}

    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"hallucinator": torch.optim.Adam(self.parameters(), lr=lr)}

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
                "A hallucinator trains on pairs: pass partners shaped like the images (another "
                "image of each one's class), as `genaug train` does."
            )
        if self.objective == "episodes" and labels is None:
            raise GenaugError(
                "the episodes objective needs the training images' classes; train on labelled "
                "base classes."
            )
        anchors, others = self._unit_features(images), self._unit_features(partners)
        with autocast():
            if self.objective == "pairs":
                losses = self.pair_losses(anchors, others)
            else:
                losses = self.episode_losses(anchors, others, labels)
        optimizer = optimizers["hallucinator"]
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        return {k: v.detach() for k, v in losses.items()}


@register
def hallucinator(**overrides: Any) -> Hallucinator:
    """Hallucinator: width 256, latent 16, the episodes objective with 4 views per shot."""
    return Hallucinator(**overrides)


@register
def test_hallucinator(**overrides: Any) -> Hallucinator:
    """A tiny hallucinator for fast tests: width 16, latent 4, 2 views."""
    return Hallucinator(**{"width": 16, "latent_dim": 4, "views": 2, **overrides})
