"""Named augmentation recipes: the *conditions* of a benchmark, parsed into settings.

A condition is a name; ``+`` combines parts:

- ``none``: the real images as they are.
- classic baselines, applied per image on ``uint8`` tensors with torchvision v2:
  ``flipcrop`` (pad by 1/8 of the size and crop back, plus a horizontal flip unless flips change
  the label: off for digit datasets, where a mirrored 2 is no 2), ``affine`` (rotation 15 deg,
  translation 10%, scale 0.9-1.1, shear 10 deg), ``trivialaugment`` (TrivialAugmentWide) and
  ``randaugment`` (RandAugment, 2 ops at magnitude 9).
- generative parts: a registered generator name (``vae``, ``gan``, ``cgan``, ``dagan``...) with
  its mode, p (the share of images replaced by generated ones in each batch), strength,
  schedule of p and order against the classic parts; defaults come from the benchmark config and
  may be overridden inline after ``@``: ``vae@p=0.3,strength=0.8,order=classic-first``.
- ``more-real``: the reference with ``factor`` x the real shots (combine it with classic parts,
  e.g. ``more-real+randaugment``), so a gain can be read as "worth N real images".

Examples: ``none``, ``randaugment``, ``vae``, ``randaugment+vae``, ``trivialaugment+vae@p=0.25``.
The batch pipeline a recipe builds is in :mod:`genaug.bench.learn.pipeline`; the generator's
settings are :class:`~genaug.bench.plan.augment.AugmentSettings`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genaug.bench.plan.augment import (
    AUGMENT_FIELDS,
    ORDERS,
    SCHEDULES,
    AugmentSettings,
    parse_option,
)
from genaug.bench.plan.learners import LEARNER_FIELDS, LEARNERS, LearnerSettings, parse_learner
from genaug.errors import GenaugError

__all__ = [
    "BASE_PREFIX",
    "CLASSIC",
    "GenerativeStep",
    "Recipe",
    "flips_preserve_labels",
    "parse_condition",
    "split_conditions",
    "split_start",
]

BASE_PREFIX = "base:"  # a condition that starts from the base-pretrained classifier
NONE = "none"
MORE_REAL = "more-real"
CLASSIC = ("flipcrop", "affine", "trivialaugment", "randaugment")
KINDS = ("none", "classic", "generative", "classic+generative", "more-real")
# Digit datasets: a horizontal flip turns a digit into another shape (or no digit).
_NO_FLIP_SPECS = ("digits", "mnist")


@dataclass(frozen=True, kw_only=True)
class GenerativeStep(AugmentSettings):
    """The generative part of a recipe: a generator and its :class:`AugmentSettings`.

    Attributes:
        generator: the registered generator name the part names (``vae``, ``test_vae``...).
        overrides: the inline overrides as written (kept for the canonical name).
    """

    generator: str
    overrides: tuple[tuple[str, str], ...] = ()

    def p_at(self, fraction: float) -> float:
        """The share of generated images at ``fraction`` of training (in [0, 1])."""
        if self.schedule == "decay":
            return self.p * (1.0 - fraction)
        if self.schedule == "warmup":
            return self.p * fraction
        return self.p


@dataclass(frozen=True)
class Recipe:
    """A parsed condition: classic parts (applied in order), at most one generative step, and
    the learner of a ``base:`` condition (:mod:`genaug.bench.plan.learners`)."""

    name: str  # canonical spelling
    classic: tuple[str, ...] = ()
    generative: GenerativeStep | None = None
    more_real: bool = False
    learner: LearnerSettings = LearnerSettings()

    @property
    def kind(self) -> str:
        """``none``, ``classic``, ``generative``, ``classic+generative`` or ``more-real``."""
        if self.more_real:
            return "more-real"
        if self.generative is None:
            return "classic" if self.classic else "none"
        return "classic+generative" if self.classic else "generative"


def split_start(text: str) -> tuple[str, bool]:
    """``"base:randaugment"`` -> ``("randaugment", True)``; other conditions -> ``(text, False)``."""
    stripped = str(text).strip()
    if stripped.lower().startswith(BASE_PREFIX):
        return stripped[len(BASE_PREFIX) :].strip(), True
    return stripped, False


def split_conditions(text: str) -> list[str]:
    """Split a comma-separated list of conditions, keeping inline options with their condition.

    ``"none,vae@p=0.3,strength=0.8,affine"`` -> ``["none", "vae@p=0.3,strength=0.8", "affine"]``:
    a piece that reads ``key=value`` for a generator option continues the condition before it.
    """
    conditions: list[str] = []
    for piece in (p.strip() for p in str(text).split(",")):
        if not piece:
            continue
        key, eq, _ = piece.partition("=")
        option = key.strip() in AUGMENT_FIELDS or key.strip() in LEARNER_FIELDS
        if eq and option and conditions and "@" in conditions[-1]:
            conditions[-1] += "," + piece
        else:
            conditions.append(piece)
    return conditions


def parse_condition(
    text: str,
    generator_names: list[str],
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> Recipe:
    """Parse a condition name into a :class:`Recipe`.

    Args:
        text: e.g. ``"randaugment+vae@p=0.3"``.
        generator_names: the registered generator names (``genaug.models.list_generators()``).
        defaults: per generator name, the augmentation settings (mode, p, strength, schedule,
            order) to use when the condition does not override them.
    """
    if not isinstance(text, str) or not text.strip():
        raise GenaugError(f"a condition must be a non-empty name, got {text!r}.")
    condition = text.strip()
    classic: list[str] = []
    generative: GenerativeStep | None = None
    more_real = False
    learner: LearnerSettings | None = None
    parts = [p.strip() for p in condition.split("+")]
    for part in parts:
        name, _, options = part.partition("@")
        name = name.strip().lower()
        if name == NONE:
            if len(parts) > 1:
                raise GenaugError(
                    f"condition {condition!r}: 'none' stands alone; drop it from the combination."
                )
            continue
        if name in LEARNERS:
            if learner is not None:
                raise GenaugError(f"condition {condition!r} names two learners; name one.")
            learner = parse_learner(name, options, condition)
            continue
        if name == MORE_REAL:
            if more_real:
                raise GenaugError(f"condition {condition!r} names more-real twice.")
            more_real = True
        elif name in CLASSIC:
            if name in classic:
                raise GenaugError(f"condition {condition!r} names {name} twice.")
            classic.append(name)
        elif name in generator_names:
            if generative is not None:
                raise GenaugError(
                    f"condition {condition!r} names two generators; use one per condition."
                )
            generative = _generative_step(name, options, condition, defaults)
            continue
        else:
            raise _unknown_part(name, condition, generator_names)
        if options:
            raise GenaugError(
                f"condition {condition!r}: only generator parts take @options, not {name!r}."
            )
    return _recipe(condition, classic, generative, more_real, learner or LearnerSettings())


def _generative_step(
    name: str, options: str, condition: str, defaults: Mapping[str, Mapping[str, Any]] | None
) -> GenerativeStep:
    """The generator part ``name@options``: its defaults, overridden by the inline options."""
    settings = dict((defaults or {}).get(name, {}))
    overrides: list[tuple[str, str]] = []
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in AUGMENT_FIELDS:
            raise GenaugError(
                f"condition {condition!r}: cannot read {item!r}; write key=value with "
                f"a key among {', '.join(AUGMENT_FIELDS)}."
            )
        settings[key] = parse_option(key, value.strip(), condition)
        overrides.append((key, value.strip()))
    step_args = {k: v for k, v in settings.items() if k in AUGMENT_FIELDS}
    step = GenerativeStep(generator=name, overrides=tuple(sorted(overrides)), **step_args)
    if step.schedule not in SCHEDULES or step.order not in ORDERS:
        raise GenaugError(
            f"condition {condition!r}: schedule must be one of {', '.join(SCHEDULES)} "
            f"and order one of {', '.join(ORDERS)}."
        )
    return step


def _unknown_part(name: str, condition: str, generator_names: list[str]) -> GenaugError:
    known = [NONE, MORE_REAL, *CLASSIC, *LEARNERS, *generator_names]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return GenaugError(
        f"unknown augmentation {name!r} in condition {condition!r}; use none, more-real, "
        f"{', '.join(CLASSIC)}, a learner ({', '.join(LEARNERS)}) or a generator "
        f"({', '.join(generator_names)}), joined with +.{hint}"
    )


def _recipe(
    condition: str,
    classic: list[str],
    generative: GenerativeStep | None,
    more_real: bool,
    learner: LearnerSettings,
) -> Recipe:
    """The parts' recipe under its canonical name, once the parts fit together."""
    if more_real and generative is not None:
        raise GenaugError(
            f"condition {condition!r}: more-real is a reference of real images; combine it with "
            "classic augmentations only."
        )
    if learner.is_head and more_real:
        raise GenaugError(
            f"condition {condition!r}: more-real is a fine-tune reference; drop {learner.name}."
        )
    pieces = ([learner.written] if learner.written else []) + ([MORE_REAL] if more_real else [])
    pieces += classic
    if generative is not None:
        options = ",".join(f"{k}={v}" for k, v in generative.overrides)
        pieces.append(generative.generator + (f"@{options}" if options else ""))
    plain = not classic and generative is None and not more_real
    return Recipe(
        name="+".join(pieces) if not plain or learner.written else NONE,
        classic=tuple(classic),
        generative=generative,
        more_real=more_real,
        learner=learner,
    )


# ---------------------------------------------------------------------------- data
def flips_preserve_labels(data_spec: str) -> bool:
    """Whether a horizontal flip keeps the class of this dataset (not for digits)."""
    name = data_spec.strip().lower().partition(":")[0]
    return name not in _NO_FLIP_SPECS
