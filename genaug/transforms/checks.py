"""Checks of the transforms' settings, shared by GenerativeAugment and its adapters.

Each returns the checked value or raises a :class:`~genaug.errors.GenaugError` of one sentence
that names the setting and what it accepts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genaug.errors import GenaugError
from genaug.models.base import family_class, list_families

MODES = ("perturb", "resample", "interpolate", "neighbour", "vary")
WALKS = ("partway", "whole")  # how far a neighbour walk goes: t ~ U(0, strength), or t = strength
#: Where a walk's nearest neighbours (and a guide's label propagation) are found: the generator's
#: latent space, or the raw pixels at the generator's size (the walk itself is always latent).
SPACES = ("latent", "pixels")
PRECISIONS = ("auto", "float32", "bfloat16")


def varying_families() -> list[str]:
    """The registered families that vary given images (mode ``vary``): ``dagan``, ``diffusion``..."""
    return [name for name in list_families() if family_class(name).varies_images]


def _family_trait(family: str, trait: str) -> bool:
    return family in list_families() and bool(getattr(family_class(family), trait))


def supported_modes(
    has_encoder: bool, conditional: bool, image_conditioned: bool = False, varies: bool = False
) -> list[str]:
    """The modes a generator can do: ``perturb`` and ``interpolate`` need an encoder; an
    image-conditioned generator does ``vary`` only; one that also ``varies`` images (diffusion)
    does ``vary`` besides the rest."""
    if image_conditioned:
        return ["vary"]
    modes = ["vary"] if varies else []
    modes += ["perturb"] if has_encoder else []
    modes.append("resample" if conditional else "resample (unlabelled images only)")
    if has_encoder:
        modes += ["interpolate", "neighbour (given neighbours)"]
    return modes


def resolve_mode(
    mode: str,
    has_encoder: bool,
    conditional: bool,
    family: str = "",
    image_conditioned: bool | None = None,
    varies: bool | None = None,
) -> str:
    """``mode`` checked against what the generator can do; ``auto`` -> the best it supports.

    ``image_conditioned``: whether the generator varies given images only (None: read from the
    registered ``family``); such a generator does ``vary`` (what ``auto`` picks) and nothing else.
    ``varies``: whether it can vary given images besides drawing from noise (diffusion; None:
    read from the family); ``auto`` then picks ``vary``: it keeps each image's content, so its
    label, and needs no label (also for classes the generator never saw).
    """
    if not isinstance(mode, str) or mode not in (*MODES, "auto"):
        raise GenaugError(f"Unknown generative mode {mode!r}; use one of auto, {', '.join(MODES)}.")
    if image_conditioned is None:
        image_conditioned = _family_trait(family, "image_conditioned")
    if varies is None:
        varies = image_conditioned or _family_trait(family, "varies_images")
    name = family or "this"
    if image_conditioned:
        if mode not in ("auto", "vary"):
            raise GenaugError(
                f"A {name} generator is image-conditioned: it makes variations of given images, "
                f"so it cannot do mode {mode!r}; use mode 'vary' (or auto)."
            )
        return "vary"
    if mode == "vary" and not varies:
        can = ", ".join(supported_modes(has_encoder, conditional))
        raise GenaugError(
            f"Mode 'vary' needs a generator that varies given images "
            f"({', '.join(varying_families()) or 'none is installed'}), and a {name} "
            f"generator is not one; use a checkpoint of that family, or one of {can} (or auto)."
        )
    if mode == "auto":
        return "vary" if varies else "perturb" if has_encoder else "resample"
    if mode in ("perturb", "interpolate", "neighbour") and not has_encoder:
        can = ", ".join(supported_modes(has_encoder, conditional, varies=varies))
        raise GenaugError(
            f"A {name} generator has no encoder, so it cannot do mode {mode!r}; "
            f"it can do {can} (or auto)."
        )
    return mode


def check_makes_images(generator: Any) -> None:
    """Refuse a generator that makes no images (a feature-space one, such as a hallucinator).

    ``generator``: a Generator, or its traits read from a checkpoint's config.
    """
    if getattr(generator, "feature_space", False):
        raise GenaugError(
            f"A {generator.family} generator makes features, not images, so it cannot augment "
            "or draw images; use it where a few-shot head is fit (genaug.fewshot, or the "
            "bench's proto, probe and fine-tune heads)."
        )


def check_fraction(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1], or a clear error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise GenaugError(f"{name} must be a number in [0, 1], got {value!r}.")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise GenaugError(f"{name} must lie in [0, 1], got {value!r}.")
    return value


def check_option(value: Any, name: str, options: tuple[str, ...]) -> str:
    """``value`` if it is one of ``options``, else a clear error naming ``name``."""
    if value not in options:
        raise GenaugError(f"{name} must be one of {', '.join(options)}, got {value!r}.")
    return value


def check_detail(value: Any, mode: str) -> float:
    """``detail`` as a float in [0, 1]; only the encoder modes read an image to keep its detail."""
    detail = check_fraction(value, "detail")
    if detail > 0 and mode == "resample":
        raise GenaugError(
            "detail keeps an image's own detail, but mode 'resample' draws new images without "
            "reading them; use detail=0, or an encoder mode (perturb, interpolate, neighbour)."
        )
    if detail > 0 and mode == "vary":
        raise GenaugError(
            "detail adds back what a generator's reconstruction of the image misses, but mode "
            "'vary' makes no reconstruction (G(image, 0) is a variation, not the image); use "
            "detail=0 with vary."
        )
    return detail


def check_flag(value: Any, name: str) -> bool:
    """``value`` if it is True or False, else a clear error naming ``name``."""
    if not isinstance(value, bool):
        raise GenaugError(f"{name} must be True or False, got {value!r}.")
    return value


def check_count(value: Any, name: str) -> int:
    """``value`` if it is a whole number >= 1 (not a bool), else a clear error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GenaugError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)
