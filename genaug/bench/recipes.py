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
The batch pipeline a recipe builds is in :mod:`genaug.bench.pipeline`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genaug.bench.learners import LEARNER_FIELDS, LEARNERS, LearnerSettings, parse_learner
from genaug.errors import GenaugError
from genaug.transforms.checks import SPACES, WALKS, check_count
from genaug.transforms.walk import NeighbourWalk

__all__ = [
    "AUGMENT_FIELDS",
    "CLASSIC",
    "AugmentSettings",
    "GenerativeStep",
    "Recipe",
    "flips_preserve_labels",
    "parse_condition",
    "split_conditions",
]

NONE = "none"
MORE_REAL = "more-real"
CLASSIC = ("flipcrop", "affine", "trivialaugment", "randaugment")
SCHEDULES = ("constant", "decay", "warmup")
ORDERS = ("generative-first", "classic-first")
BATCHNORMS = ("shared", "separate")
KINDS = ("none", "classic", "generative", "classic+generative", "more-real")
# Digit datasets: a horizontal flip turns a digit into another shape (or no digit).
_NO_FLIP_SPECS = ("digits", "mnist")


@dataclass(frozen=True, kw_only=True)
class AugmentSettings:
    """How a generator augments a batch; the bench's per-generator defaults and every
    condition's inline overrides (``vae@mode=neighbour,hops=6``) are these fields.

    Attributes:
        mode: ``auto``, ``perturb``, ``resample``, ``interpolate``, ``neighbour`` (walks
            toward the nearest images of the generator's training data: the pool's images for
            a ``pool`` generator, whose labels are never read) or ``vary`` (an image-conditioned
            generator such as ``dagan``, e.g. from ``checkpoint:PATH``; what ``auto`` picks).
        p: share of each batch replaced by generated images (drawn per image).
        strength: the mode's magnitude in [0, 1] (see :mod:`genaug.transforms.functional`).
        schedule: ``constant`` p; ``decay`` from p to 0 over training; ``warmup`` from 0 to p.
        order: ``generative-first`` (the generator sees clean images, classic parts follow) or
            ``classic-first``.
        k, hops: for mode ``neighbour``, how many nearest neighbours each hop picks from, and
            how many hops through the bank the walk takes.
        guide: for mode ``neighbour`` with an unconditional (``pool``) generator, spread the
            labelled shots' classes over the bank and keep each walk within its image's class.
        detail: how much of each image's own detail the generated image keeps, in [0, 1]
            (encoder modes; see :class:`~genaug.transforms.GenerativeAugment`).
        walk: for mode ``neighbour``, ``partway`` (a random share of ``strength`` of the way)
            or ``whole`` (all of it: with strength 1 and detail 1 the real bank image itself).
        space: for mode ``neighbour``, where neighbours and the guide's labels are found:
            ``latent`` (the generator's latent space) or ``pixels`` (raw pixel distance).
        jitter: for mode ``neighbour``, posterior scales of noise added to the latent where
            the walk arrives, in [0, 1] (a whole walk then gives a generated variation of the
            bank image instead of the bank image itself).
        backtrack: for mode ``neighbour``, whether a hop may step straight back to where it
            came from (``backtrack=0``: it takes the next nearest neighbour instead).
        chain: for mode ``vary``, how many times the generator is applied (a chain of
            variations, each link varying the last; 1: one variation).
        weight: the loss weight of a generated image (or hallucinated feature) against a real
            one's 1 (fine-tunes and heads).
        bn: ``shared`` or ``separate``: generated images go through the fine-tuned network in
            their own forward pass, with their own batch statistics, and never move the
            BatchNorm running statistics (which the test images are normalised with).
        soft: label smoothing of the generated images' labels, in [0, 1].
        filter: keep a generated image only when the base classifier's features put it
            nearest its own class's shots (else the real image stays); needs the base
            classifier (``pretrain_data``).
        cap: the most of a batch that may be generated, in [0, 1] (draws past it stay real).
        count: for a feature-space generator (``hallucinator``), hallucinated features per shot
            (heads) or per image of a batch (the head of a fine-tune).
    """

    mode: str = "auto"
    p: float = 0.5
    strength: float = 1.0
    schedule: str = "constant"
    order: str = "generative-first"
    k: int = 5
    hops: int = 1
    guide: bool = False
    detail: float = 0.0
    walk: str = "partway"
    space: str = "latent"
    jitter: float = 0.0
    backtrack: bool = True
    chain: int = 1
    weight: float = 1.0
    bn: str = "shared"
    soft: float = 0.0
    filter: bool = False
    cap: float = 1.0
    count: int = 5

    def __post_init__(self) -> None:
        check_count(self.chain, "chain")
        check_count(self.count, "count")
        if self.bn not in BATCHNORMS:
            raise GenaugError(f"bn must be one of {', '.join(BATCHNORMS)}, got {self.bn!r}.")
        if self.chain != 1 and self.mode not in ("auto", "vary"):
            raise GenaugError(
                f"chain applies the generator several times in mode 'vary', not in mode "
                f"{self.mode!r}; use chain=1."
            )

    def settings(self) -> dict[str, Any]:
        """The augmentation fields as a dict."""
        return {k: getattr(self, k) for k in AUGMENT_FIELDS}

    def neighbour_walk(self, bank: Any, guide: Any = None) -> NeighbourWalk | None:
        """The :class:`~genaug.transforms.NeighbourWalk` these settings describe, toward
        ``bank``: None unless the mode is ``neighbour`` (and a bank is given). ``guide``: the
        labelled images a ``guide=1`` walk spreads its classes from (ignored otherwise)."""
        if self.mode != "neighbour" or bank is None:
            return None
        return NeighbourWalk(
            bank,
            k=self.k,
            hops=self.hops,
            guide=guide if self.guide else None,
            walk=self.walk,
            space=self.space,
            jitter=self.jitter,
            backtrack=self.backtrack,
        )


AUGMENT_FIELDS = tuple(f.name for f in dataclasses.fields(AugmentSettings))


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
    the learner of a ``base:`` condition (:mod:`genaug.bench.learners`)."""

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


def _parse_value(key: str, text: str, condition: str) -> Any:
    if key in ("k", "hops", "chain", "count"):
        if not text.isdigit() or int(text) < 1:
            raise GenaugError(
                f"condition {condition!r}: {key}={text!r} must be a whole number >= 1, e.g. "
                f"{key}=2."
            )
        return int(text)
    if key in ("guide", "backtrack", "filter"):
        if text.lower() not in ("0", "1", "true", "false"):
            raise GenaugError(
                f"condition {condition!r}: {key}={text!r} must be 1 or 0 (true or false)."
            )
        return text.lower() in ("1", "true")
    if key == "weight":
        try:
            value = float(text)
        except ValueError:
            raise GenaugError(
                f"condition {condition!r}: weight={text!r} is not a number; use e.g. weight=0.5."
            ) from None
        if not value >= 0:
            raise GenaugError(f"condition {condition!r}: weight must be 0 or more, got {value}.")
        return value
    if key == "bn" and text not in BATCHNORMS:
        raise GenaugError(
            f"condition {condition!r}: unknown bn {text!r}; use one of {', '.join(BATCHNORMS)}."
        )
    if key in ("p", "strength", "detail", "jitter", "soft", "cap"):
        try:
            value = float(text)
        except ValueError:
            raise GenaugError(
                f"condition {condition!r}: {key}={text!r} is not a number; use e.g. {key}=0.5."
            ) from None
        if not 0.0 <= value <= 1.0:
            raise GenaugError(f"condition {condition!r}: {key} must lie in [0, 1], got {value}.")
        return value
    if key == "schedule" and text not in SCHEDULES:
        raise GenaugError(
            f"condition {condition!r}: unknown schedule {text!r}; use one of {', '.join(SCHEDULES)}."
        )
    if key == "space" and text not in SPACES:
        raise GenaugError(
            f"condition {condition!r}: unknown space {text!r}; use one of {', '.join(SPACES)}."
        )
    if key == "walk" and text not in WALKS:
        raise GenaugError(
            f"condition {condition!r}: unknown walk {text!r}; use one of {', '.join(WALKS)}."
        )
    if key == "order" and text not in ORDERS:
        raise GenaugError(
            f"condition {condition!r}: unknown order {text!r}; use one of {', '.join(ORDERS)}."
        )
    return text


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
    import difflib

    if not isinstance(text, str) or not text.strip():
        raise GenaugError(f"a condition must be a non-empty name, got {text!r}.")
    condition = text.strip()
    known = [NONE, MORE_REAL, *CLASSIC, *LEARNERS, *generator_names]
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
                settings[key] = _parse_value(key, value.strip(), condition)
                overrides.append((key, value.strip()))
            step_args = {k: v for k, v in settings.items() if k in AUGMENT_FIELDS}
            generative = GenerativeStep(
                generator=name, overrides=tuple(sorted(overrides)), **step_args
            )
            if generative.schedule not in SCHEDULES or generative.order not in ORDERS:
                raise GenaugError(
                    f"condition {condition!r}: schedule must be one of {', '.join(SCHEDULES)} "
                    f"and order one of {', '.join(ORDERS)}."
                )
        else:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise GenaugError(
                f"unknown augmentation {name!r} in condition {condition!r}; use none, more-real, "
                f"{', '.join(CLASSIC)}, a learner ({', '.join(LEARNERS)}) or a generator "
                f"({', '.join(generator_names)}), joined with +.{hint}"
            )
        if options and name not in generator_names:
            raise GenaugError(
                f"condition {condition!r}: only generator parts take @options, not {name!r}."
            )
    if more_real and generative is not None:
        raise GenaugError(
            f"condition {condition!r}: more-real is a reference of real images; combine it with "
            "classic augmentations only."
        )
    learner = learner or LearnerSettings()
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
