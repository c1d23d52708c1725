"""How a generator augments a batch in a bench: :class:`AugmentSettings`, the fields that a
bench's per-generator defaults and every condition's inline overrides (``vae@mode=neighbour,hops=6``)
set, and the reading of an inline value."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from genaug.errors import GenaugError
from genaug.transforms.checks import SPACES, WALKS, check_count
from genaug.transforms.walk import NeighbourWalk

__all__ = ["AUGMENT_FIELDS", "BATCHNORMS", "ORDERS", "SCHEDULES", "AugmentSettings", "parse_option"]

SCHEDULES = ("constant", "decay", "warmup")
ORDERS = ("generative-first", "classic-first")
BATCHNORMS = ("shared", "separate")


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
        offline: 0 (online: the generator runs on every batch) or V: V variations of each
            labelled shot made once before the classifier trains, drawn with the same p (the
            route for costly generators such as a diffusion model's SDEdit).
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
    offline: int = 0

    def __post_init__(self) -> None:
        check_count(self.chain, "chain")
        check_count(self.count, "count")
        if self.offline:
            check_count(self.offline, "offline")
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


def parse_option(key: str, text: str, condition: str) -> Any:
    """The value of an inline option ``key=text`` of ``condition`` (one sentence if unfit)."""
    if key in ("k", "hops", "chain", "count", "offline"):
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
