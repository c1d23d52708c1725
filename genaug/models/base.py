"""The contract every generator family meets, and the pieces the families share.

A generator maps latents ``z`` (and, when conditional, class labels) to images: float32 BCHW in
[0, 1]. Families with an encoder (VAE, C-GAN) also map images back to latents. A generator also
knows how to train itself one step (``training_step``); the one loop in :mod:`genaug.train` owns
everything else (device, AMP, EMA, checkpoints, logging).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from genaug.errors import GenaugError
from genaug.models.labels import (  # noqa: F401  (one_hot, label_maps: used from here too)
    inference_problem,
    label_maps,
    one_hot,
    reconstruction_labels,
)

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 128

_FAMILIES: dict[str, type[Generator]] = {}

AutocastFactory = Callable[[], contextlib.AbstractContextManager]


class Encoding(NamedTuple):
    """What ``encode`` returns: the latent ``mean`` (B, latent_dim) and its ``scale`` (same shape).

    For a VAE the scale is the posterior standard deviation; families with a deterministic encoder
    return ones, so "jitter by ``strength`` x scale" means the same thing for every family.
    """

    mean: Tensor
    scale: Tensor


def validate_image_size(image_size: int, maximum: int = MAX_IMAGE_SIZE) -> int:
    """Return ``image_size`` if it is a power of two in [16, ``maximum``], else a clear error.

    ``maximum`` is 128 for the families genaug trains; a user's pretrained pipeline may be larger.
    """
    if (
        not isinstance(image_size, int)
        or image_size < MIN_IMAGE_SIZE
        or image_size > maximum
        or image_size & (image_size - 1)
    ):
        sizes = ", ".join(str(2**k) for k in range(4, maximum.bit_length()))
        raise GenaugError(
            f"Image size {image_size!r} is not supported; use a power of two from "
            f"{MIN_IMAGE_SIZE} to {maximum} ({sizes})."
        )
    return image_size


def family_class(family: str) -> type[Generator]:
    """The Generator subclass of a family name ("vae", "gan", ...), or a clear error."""
    if family not in _FAMILIES:
        raise GenaugError(
            f"Unknown generator family {family!r}; this genaug knows {', '.join(sorted(_FAMILIES))}."
        )
    return _FAMILIES[family]


def list_families() -> list[str]:
    """Names of the generator families this genaug knows."""
    return sorted(_FAMILIES)


class Generator(nn.Module):
    """Base class of every generator family.

    Subclasses set ``family`` and pass every constructor argument through to ``__init__`` so that
    ``self.config`` records them all: ``type(model)(**model.config)`` rebuilds the same model.
    """

    family: ClassVar[str] = ""
    #: Whether ``encode`` is implemented (images -> latents).
    has_encoder: ClassVar[bool] = False
    #: Whether the generator maps an image to variations of it (``vary``) rather than latents to
    #: images: such a family needs no class label and works on classes it never saw.
    image_conditioned: ClassVar[bool] = False
    #: Whether ``vary(images)`` works: every image-conditioned family, and families that also
    #: draw from noise but can vary a given image (diffusion: SDEdit). Mode ``vary`` needs it.
    varies_images: ClassVar[bool] = False
    #: Whether the family wraps a user's pretrained model loaded from a folder (a diffusers
    #: pipeline): not built by the registry (no ``test_`` builder) nor trained by genaug.
    pretrained: ClassVar[bool] = False
    #: Whether the family maps features to features (a hallucinator) and makes no images.
    feature_space: ClassVar[bool] = False
    #: Whether ``training_step`` takes ``partners``: for each image another image of its class
    #: (the loop draws them with :func:`genaug.data.pairs.pair_indices`; needs labelled data).
    trains_on_pairs: ClassVar[bool] = False
    #: Whether a pair family's ``training_step`` needs the pairs' classes as ``labels`` (a loss of
    #: its own asks for them; otherwise a pair family never sees labels).
    wants_pair_labels: bool = False
    #: Parameter-name prefixes that only training needs (a discriminator): not averaged by EMA.
    training_only_prefixes: ClassVar[tuple[str, ...]] = ()
    #: Training defaults of the family, used when the run config leaves them blank.
    default_steps: ClassVar[int] = 2000
    default_batch_size: ClassVar[int] = 64
    default_lr: ClassVar[float] = 1e-3
    #: Constructor arguments added after checkpoints were first written, with the value a saved
    #: config without them means (e.g. ``{"class_head": False}``: an old checkpoint has no head).
    legacy_args: ClassVar[dict[str, Any]] = {}
    #: The largest image size the family accepts (a power of two).
    max_image_size: ClassVar[int] = MAX_IMAGE_SIZE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.image_conditioned:  # varying given images is all such a family does
            cls.varies_images = True
        if cls.family:
            if cls.family in _FAMILIES and _FAMILIES[cls.family] is not cls:
                raise ValueError(f"Generator family {cls.family!r} is defined twice.")
            _FAMILIES[cls.family] = cls

    def __init__(
        self,
        *,
        image_size: int,
        channels: int,
        num_classes: int,
        latent_dim: int,
        **family_config: Any,
    ) -> None:
        super().__init__()
        validate_image_size(image_size, self.max_image_size)
        if channels not in (1, 3):
            raise GenaugError(f"Generators take 1 or 3 channels, not {channels!r}.")
        if not isinstance(num_classes, int) or num_classes < 0 or num_classes == 1:
            raise GenaugError(
                f"num_classes must be 0 (unconditional) or at least 2, not {num_classes!r}."
            )
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise GenaugError(f"latent_dim must be a positive integer, not {latent_dim!r}.")
        self.image_size = image_size
        self.channels = channels
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.config: dict[str, Any] = {
            "image_size": image_size,
            "channels": channels,
            "num_classes": num_classes,
            "latent_dim": latent_dim,
            **family_config,
        }
        # Filled by training or loading; kept in config.json, not in the constructor arguments.
        self.class_names: list[str] = [str(i) for i in range(num_classes)]
        self.data_description: dict[str, Any] = {}

    # ----------------------------------------------------------------- what every family offers
    @property
    def conditional(self) -> bool:
        """True when the generator takes class labels."""
        return self.num_classes > 0

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents (B, latent_dim) [+ labels (B,)] -> images (B, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def encode(self, images: Tensor, labels: Tensor | None = None) -> Encoding:
        """Images (B, C, H, W) in [0, 1] [+ labels (B,)] -> latent :class:`Encoding`."""
        encoders = [name for name, cls in sorted(_FAMILIES.items()) if cls.has_encoder]
        raise GenaugError(
            f"A {self.family} generator has no encoder, so it cannot encode images; "
            f"use a family that can ({', '.join(encoders)})."
        )

    # ------------------------------------------------- the class of an image given without one
    def label_inference_problem(self, method: str = "head") -> str | None:
        """One sentence saying why ``infer_labels(images, method)`` cannot work; None if it can."""
        return inference_problem(self, method)

    @property
    def can_infer_labels(self) -> bool:
        """True when a conditional generator can infer the class of an unlabelled image."""
        return self.conditional and self.label_inference_problem() is None

    @torch.no_grad()
    def infer_labels(self, images: Tensor, method: str = "head") -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> the class each most likely shows, (B,) long.

        ``method`` is ``"head"`` (the class head trained with the generator, one encoder pass)
        or ``"reconstruction"`` (the class whose encode -> decode round trip fits best, one pass
        per class); see :mod:`genaug.models.labels`. Raises a one-sentence GenaugError naming the
        fix where inference is impossible (no encoder, a checkpoint without a head).
        """
        problem = self.label_inference_problem(method)
        if problem is None and not self.conditional:
            problem = f"This {self.family} generator is unconditional: it takes no class to infer."
        if problem:
            raise GenaugError(problem)
        shape = (self.channels, self.image_size, self.image_size)
        if not torch.is_tensor(images) or images.ndim != 4 or tuple(images.shape[1:]) != shape:
            got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
            raise GenaugError(
                f"infer_labels takes float images (B, {', '.join(map(str, shape))}) in [0, 1], "
                f"got {got}; convert them to the generator's size first."
            )
        images = images.to(self.device, torch.float32)
        if method == "head":
            return self.class_logits(images).argmax(dim=1)
        return reconstruction_labels(self, images, self.reconstruction_cost)

    def class_logits(self, images: Tensor) -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> the class head's logits (B, num_classes)."""
        raise GenaugError(self.label_inference_problem() or f"A {self.family} has no class head.")

    def reconstruction_cost(self, images: Tensor, encoding: Encoding, labels: Tensor) -> Tensor:
        """Per-image cost (B,) of ``images`` encoded as ``encoding`` and decoded with ``labels``."""
        raise GenaugError(self.label_inference_problem("reconstruction") or "Not supported.")

    def vary(
        self,
        images: Tensor,
        strength: float = 1.0,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> variations of them, same shape (``varies_images``).

        ``noise`` (B, latent_dim) ~ N(0, I) is drawn from ``generator`` unless given (the
        transforms draw it up front, to replay a call); ``strength`` in [0, 1] scales how far a
        variation goes (its meaning per family is in its docstring). ``labels`` (B,), read by a
        conditional family only (the transforms pass them to such a family alone), are never
        needed: without them a conditional family varies unconditionally.
        """
        varying = [name for name, cls in sorted(_FAMILIES.items()) if cls.varies_images]
        raise GenaugError(
            f"A {self.family} generator cannot vary given images: that needs a generator that "
            f"varies images ({', '.join(varying) or 'none is installed'})."
        )

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` images (n, C, H, W) in [0, 1].

        ``labels`` (n,) picks the classes of a conditional generator; when omitted, classes are
        drawn uniformly. ``generator`` is the ``torch.Generator`` the randomness comes from (it
        must live on the model's device).
        """
        device = self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        labels = self.check_labels(labels, n, generator=generator)
        return self.decode(z, labels)

    def check_labels(
        self, labels: Tensor | None, n: int, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """Validate labels for ``n`` images (drawing uniform ones when a conditional model has none)."""
        if not self.conditional:
            return None
        device = self.device
        if labels is None:
            return torch.randint(0, self.num_classes, (n,), generator=generator, device=device)
        labels = torch.as_tensor(labels, device=device).long().reshape(-1)
        if labels.numel() != n:
            raise GenaugError(f"Got {labels.numel()} labels for {n} images; give one per image.")
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise GenaugError(
                f"Labels must lie in [0, {self.num_classes - 1}] for this generator, "
                f"got values from {int(labels.min())} to {int(labels.max())}."
            )
        return labels

    # ----------------------------------------------------------------- training, family-specific
    def create_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """The family's optimizers by name; the loop saves and restores them."""
        raise NotImplementedError

    def training_step(
        self,
        images: Tensor,
        labels: Tensor | None,
        optimizers: dict[str, torch.optim.Optimizer],
        autocast: AutocastFactory,
    ) -> dict[str, float | Tensor]:
        """One optimisation step on a batch (B, C, H, W) in [0, 1]; returns the losses by name.

        Compute losses inside ``with autocast():``; call backward and the optimizer steps here.
        Families with ``trains_on_pairs`` also take ``partners`` (B, C, H, W): image ``i``'s partner
        is another image of the same class (labels then only paired them; ``labels`` is None).
        Returned values may be 0-dim tensors: the loop syncs them with the host only when it logs.
        """
        raise NotImplementedError

    def check_training(self, losses: dict[str, float], step: int) -> str | None:
        """Called by the loop at every log step with the host values of the losses.

        Return a sentence describing a collapse (e.g. a discriminator winning outright for many
        steps) to stop training while the last good checkpoint is kept; None to go on. Families
        may keep a little history on ``self`` (not saved: a resumed run starts a fresh count).
        """
        return None

    def weights_from_config(self) -> bool:
        """Whether ``type(self)(**self.config)`` rebuilds these very weights (a user's pipeline,
        which loads them from its folder, unchanged since): it then travels to DataLoader
        workers as its config alone. False for the families genaug trains."""
        return False

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


# ---------------------------------------------------------------------- shared building blocks
def num_resolution_steps(image_size: int, base: int = 4) -> int:
    """How many 2x up/down-sampling stages lie between ``base`` px and ``image_size`` px."""
    return int(math.log2(image_size // base))


def stage_widths(width: int, steps: int, max_multiplier: int = 8) -> list[int]:
    """Channel widths from the image resolution down to 4x4: width, 2*width, ... capped."""
    return [width * min(2**i, max_multiplier) for i in range(steps)]
