"""AugmentSettings: what every generative transform is asked to do, one frozen object checked once.

Every transform takes the same keyword-only settings after ``generator``, in this order and with
these defaults: ``mode, p, strength, detail, neighbours, precision, compile``. Each builds one
:class:`AugmentSettings` from them; their checks live here and nowhere else. Each value is
checked when the object is built; what depends on the generator (``auto`` becomes a mode, a mode
the generator cannot do is refused, then which settings go with that mode) when a transform
settles them for its generator with :meth:`AugmentSettings.resolved`::

    settings = AugmentSettings(mode="perturb", p=0.3, detail=1.0)
    aug = GenerativeAugment.from_settings("runs/digits-vae", settings, seed=0)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from genaug.errors import GenaugError
from genaug.transforms.checks import (
    MODES,
    PRECISIONS,
    check_detail,
    check_flag,
    check_fraction,
    check_makes_images,
    check_option,
    resolve_mode,
)
from genaug.transforms.walk import NeighbourWalk, as_walk, walk_for_mode

__all__ = [
    "SETTING_NAMES",
    "AdapterAttributes",
    "AugmentSettings",
    "HostP",
    "SettingsAttributes",
]


@dataclass(frozen=True)
class AugmentSettings:
    """The settings of a generative transform (each value checked when built; frozen).

    Args:
        mode: ``auto``, ``perturb``, ``resample``, ``interpolate``, ``neighbour`` or ``vary``
            (see :mod:`genaug.transforms.core`); ``auto`` picks the best the generator does.
        p: probability that an image is transformed (drawn per image; a host that draws it per
            call, as Albumentations does, draws it per call).
        strength: magnitude in [0, 1]; its meaning per mode is in :mod:`~.functional`.
        detail: in [0, 1], how much of the image's own detail to keep (encoder modes only):
            ``output = generated + detail * (image - reconstruction)``.
        neighbours: for mode ``neighbour``, where and how to walk: a
            :class:`~genaug.transforms.walk.NeighbourWalk`, or just its bank (images, an
            ImageDataset or a dataset spec), or a serialised walk (a dict); stored as a walk.
        precision: ``auto`` (bfloat16 autocast on CUDA, float32 on the CPU), ``float32`` or
            ``bfloat16`` (also on the CPU: faster where it has AMX or AVX512-BF16).
        compile: ``torch.compile`` the generator call on first use (for the long-lived batched
            path on the training device, not for short per-sample runs in workers).

    Example: ``AugmentSettings(mode="interpolate", p=0.5, strength=0.8)``.
    """

    mode: str = "auto"
    p: float = 0.5
    strength: float = 1.0
    detail: float = 0.0
    neighbours: NeighbourWalk | None = None
    precision: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or self.mode not in (*MODES, "auto"):
            raise GenaugError(
                f"Unknown generative mode {self.mode!r}; use one of auto, {', '.join(MODES)}."
            )
        checked = {
            "p": check_fraction(self.p, "p"),
            "strength": check_fraction(self.strength, "strength"),
            "detail": check_fraction(self.detail, "detail"),
            "neighbours": as_walk(self.neighbours),
            "precision": check_option(self.precision, "precision", PRECISIONS),
            "compile": check_flag(self.compile, "compile"),
        }
        for name, value in checked.items():  # numpy numbers and bare banks, as stored
            object.__setattr__(self, name, value)

    def resolved(self, generator: Any) -> AugmentSettings:
        """These settings for ``generator``: ``auto`` replaced by the mode it picks, a mode the
        generator cannot do refused (naming what it can), then ``detail`` and ``neighbours``
        checked against that mode (``neighbour`` needs a walk and no other mode takes one).

        ``generator``: a :class:`~genaug.models.base.Generator`, or anything with its
        ``has_encoder``, ``conditional``, ``family``, ``image_conditioned``,
        ``varies_images`` and ``feature_space`` (a checkpoint's config read without its
        weights). A generator that makes no images (a hallucinator) is refused.
        """
        check_makes_images(generator)
        mode = resolve_mode(
            self.mode,
            generator.has_encoder,
            generator.conditional,
            generator.family,
            generator.image_conditioned,
            getattr(generator, "varies_images", generator.image_conditioned),
        )
        check_detail(self.detail, mode)
        walk_for_mode(self.neighbours, mode)
        return self if mode == self.mode else dataclasses.replace(self, mode=mode)

    def replace(self, **changes: Any) -> AugmentSettings:
        """A copy with ``changes``, checked like the original (``settings.replace(p=1.0)``)."""
        return dataclasses.replace(self, **changes)


#: The names every transform takes after ``generator``, keyword-only, in this order.
SETTING_NAMES = tuple(field.name for field in dataclasses.fields(AugmentSettings))


class SettingsAttributes:
    """Read-only attributes of a transform's settings (``aug.mode``, ``aug.strength``, ...).

    A transform that mixes this in keeps an :class:`AugmentSettings` in ``settings``. ``p`` is
    not among them (hosts with their own ``p``, Albumentations and Kornia, keep theirs), nor
    ``compile``, which would hide ``nn.Module.compile()``: read ``aug.settings.compile``.
    """

    settings: AugmentSettings

    @property
    def mode(self) -> str:
        """The generative mode, resolved for the generator (``auto`` is never left)."""
        return self.settings.mode

    @property
    def strength(self) -> float:
        return self.settings.strength

    @property
    def detail(self) -> float:
        return self.settings.detail

    @property
    def neighbours(self) -> NeighbourWalk | None:
        return self.settings.neighbours

    @property
    def precision(self) -> str:
        return self.settings.precision


class AdapterAttributes(SettingsAttributes):
    """What an adapter built around a ``GenerativeAugment`` (in ``self.augment``) shows of it:
    its ``settings`` and their attributes, ``generator``, ``p`` (settable, checked) and the
    ``last_params`` that replay its last call."""

    augment: Any

    @property
    def settings(self) -> AugmentSettings:  # type: ignore[override]
        """The transform's settings, resolved for its generator."""
        return self.augment.settings

    @property
    def generator(self) -> Any:
        """The generator (in eval mode)."""
        return self.augment.generator

    @property
    def p(self) -> float:
        """Probability that each image is transformed (drawn per image); settable."""
        return self.augment.p

    @p.setter
    def p(self, value: float) -> None:
        self.augment.p = value

    @property
    def last_params(self) -> Any:
        """The parameters of the last call; pass them as ``params=`` to replay it."""
        return self.augment.last_params


class HostP:
    """``p`` as an attribute of a host that keeps its own (Albumentations, Kornia set
    ``self.p``), checked like every setting whenever it is set."""

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return self if obj is None else obj.__dict__["_host_p"]

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_host_p"] = check_fraction(value, "p")
