"""How a bench trains each generator its conditions name, and that generator's augmentation
defaults: :class:`GeneratorSettings` (``BenchConfig.generators`` holds them as dicts)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from genaug.bench.plan.augment import ORDERS, SCHEDULES, AugmentSettings
from genaug.errors import GenaugError
from genaug.models.diffaugment import parse_policy
from genaug.transforms.checks import SPACES, WALKS

__all__ = ["GeneratorSettings"]


@dataclass(frozen=True, kw_only=True)
class GeneratorSettings(AugmentSettings):
    """How the generator named in conditions is trained, and its augmentation defaults.

    A condition names a registered generator (``vae``) or a key of ``BenchConfig.generators``
    whose ``model`` is registered: ``{"vae_beta4": {"model": "vae", "model_args": {"beta": 4}}}``
    makes ``randaugment+vae_beta4`` a condition beside ``randaugment+vae``.

    Attributes:
        model: registered generator name to train (defaults to the name used in conditions).
        steps, batch_size, lr: training budget (None: the family's defaults).
        model_args: extra generator arguments (latent_dim, width, beta...).
        conditional: for the ``labeled`` source, condition the generator on the shot labels
            (a ``pool`` generator is always unconditional: the pool's labels are never used).
        train_augment: the generator's own training augmentation (``translation``, ``color``,
            ``cutout``, comma-separated; "" off): see ``TrainConfig.augment``.
        The :class:`~genaug.bench.plan.augment.AugmentSettings` fields (mode, p, strength, schedule,
        order, k, hops, guide, detail, walk, space, jitter, backtrack) are the augmentation
        defaults, overridable per condition.
    """

    model: str
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    conditional: bool = True
    train_augment: str = ""

    @classmethod
    def from_dict(cls, name: str, values: dict[str, Any] | None) -> GeneratorSettings:
        """The settings of generator ``name`` from their dict (None: the defaults); one
        sentence for an unknown key or a value no bench can use."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GenaugError(
                f"generator settings for {name!r} have unknown keys {', '.join(unknown)}; "
                f"use {', '.join(sorted(known))}."
            )
        values.setdefault("model", name)
        settings = cls(**values)
        for key in ("p", "strength", "detail", "jitter"):
            value = getattr(settings, key)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= 1
            ):
                raise GenaugError(f"generator {name!r}: {key} must lie in [0, 1], got {value!r}.")
        if not isinstance(settings.train_augment, str):
            raise GenaugError(
                f"generator {name!r}: train_augment must be a string such as 'translation', "
                f"got {settings.train_augment!r}."
            )
        parse_policy(settings.train_augment)
        for key in ("guide", "backtrack"):
            if not isinstance(getattr(settings, key), bool):
                raise GenaugError(
                    f"generator {name!r}: {key} must be true or false, got "
                    f"{getattr(settings, key)!r}."
                )
        for key, options in (("walk", WALKS), ("space", SPACES)):
            if getattr(settings, key) not in options:
                raise GenaugError(
                    f"generator {name!r}: {key} must be one of {', '.join(options)}, got "
                    f"{getattr(settings, key)!r}."
                )
        if settings.schedule not in SCHEDULES or settings.order not in ORDERS:
            raise GenaugError(
                f"generator {name!r}: schedule must be one of {', '.join(SCHEDULES)} and order "
                f"one of {', '.join(ORDERS)}."
            )
        return settings
