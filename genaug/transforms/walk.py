"""NeighbourWalk: the settings of mode ``neighbour``, one frozen object checked once.

Every transform that walks (``GenerativeAugment``, ``GenerativeMix`` and the torchvision,
Albumentations and Kornia adapters) takes it as ``neighbours=``::

    walk = NeighbourWalk("imagefolder:/data/unlabelled", hops=6, guide="imagefolder:/data/few")
    aug = GenerativeAugment("runs/pool-vae", mode="neighbour", neighbours=walk, detail=1.0)

A bare bank (``neighbours=images``) is a walk with the default settings. The walk is data: with
dataset specs for ``bank`` and ``guide`` it serialises (:meth:`NeighbourWalk.to_dict`), as the
Albumentations adapter does. The bank is encoded by the transform, once, into a
:class:`~genaug.transforms.neighbours.LatentBank`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from genaug.data import ImageDataset
from genaug.errors import GenaugError
from genaug.transforms.checks import (
    SPACES,
    WALKS,
    check_count,
    check_flag,
    check_fraction,
    check_option,
)

__all__ = ["NeighbourWalk", "as_walk", "walk_for_mode"]

_SOURCES = "(a (N, C, H, W) tensor), an ImageDataset or a dataset spec such as 'imagefolder:PATH'"


@dataclass(frozen=True, eq=False)
class NeighbourWalk:
    """Where mode ``neighbour`` walks, and how (checked when built; frozen).

    Args:
        bank: the images to walk toward (typically unlabelled ones, e.g. the generator's
            training pool): a (N, C, H, W) tensor, an :class:`~genaug.data.ImageDataset` or a
            dataset spec; encoded once by the transform (see
            :mod:`~genaug.transforms.neighbours`).
        k: how many nearest neighbours of each image a hop picks from.
        hops: nearest-neighbour hops through the bank (1: an image's own nearest).
        guide: for an unconditional generator, labelled images (an ImageDataset with labels,
            e.g. the few labelled ones, or a dataset spec) whose classes spread over the bank
            along its nearest neighbours, so the walk stays within each image's class (the
            transform then needs the labels).
        walk: ``partway`` (each walk goes a uniform random share of ``strength`` of the way)
            or ``whole`` (every walk goes ``strength`` of the way: with ``strength=1`` it
            reaches the bank image's latent, and with ``detail=1`` the real bank image itself:
            the generator then only chooses, through its latent space, which real image stands
            in for the labelled one).
        space: ``latent`` (neighbours, and the guide's label propagation, found in the
            generator's latent space) or ``pixels`` (found by raw pixel distance at the
            generator's size; the walk itself still goes through the latent space). ``pixels``
            with a whole walk and ``detail=1`` uses no generator at all: the ablation that
            shows what the latent space adds.
        jitter: in [0, 1]; after the walk, the latent moves by this many posterior scales of
            noise (as mode ``perturb`` with this strength), so that a whole walk gives a
            generated variation of the bank image, not the bank image itself. The scale goes
            from the image's to the bank image's along the walk. 0: no jitter.
        backtrack: whether a hop may step straight back to where it came from (the default,
            as published). False: it takes the next nearest neighbour instead, where that is
            another image, so a walk of several hops reaches further (in a class of two images
            there is nowhere else to go, and the walk still comes back).

    Two walks are equal when their settings are and they name the same bank and guide (specs
    by value, tensors and datasets by identity).
    """

    bank: Tensor | ImageDataset | str
    k: int = 5
    hops: int = 1
    guide: ImageDataset | str | None = None
    walk: str = "partway"
    space: str = "latent"
    jitter: float = 0.0
    backtrack: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.bank, (Tensor, ImageDataset, str)):
            raise GenaugError(
                f"NeighbourWalk bank must be images {_SOURCES}, got {type(self.bank).__name__}."
            )
        guide = self.guide
        labelled = isinstance(guide, str) or (
            isinstance(guide, ImageDataset) and not bool((guide.targets < 0).any())
        )
        if guide is not None and not labelled:
            raise GenaugError(
                "NeighbourWalk guide must be labelled images (an ImageDataset with labels, or a "
                f"dataset spec such as 'imagefolder:PATH'), got {type(guide).__name__}"
                + (" without labels." if isinstance(guide, ImageDataset) else ".")
            )
        checked = {
            "k": check_count(self.k, "NeighbourWalk k"),
            "hops": check_count(self.hops, "NeighbourWalk hops"),
            "walk": check_option(self.walk, "NeighbourWalk walk", WALKS),
            "space": check_option(self.space, "NeighbourWalk space", SPACES),
            "jitter": check_fraction(self.jitter, "NeighbourWalk jitter"),
            "backtrack": check_flag(self.backtrack, "NeighbourWalk backtrack"),
        }
        for name, value in checked.items():  # numpy integers and the like, as plain Python
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The walk as JSON-able data; needs ``bank`` and ``guide`` as dataset specs."""
        for name in ("bank", "guide"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise GenaugError(
                    f"a NeighbourWalk serialises only with its {name} as a dataset spec (for "
                    f"example 'imagefolder:PATH'), got {type(value).__name__}."
                )
        return dataclasses.asdict(self)

    def described(self) -> NeighbourWalk:
        """This walk with a bank or guide of images replaced by its description (specs stay):
        what a transform keeps once it has encoded them, so that a pickled copy carries no
        images. The description is no spec: a walk made of one cannot be encoded again."""
        bank, guide = self.bank, self.guide
        return dataclasses.replace(
            self,
            bank=bank if isinstance(bank, str) else _describe(bank),
            guide=guide if guide is None or isinstance(guide, str) else _describe(guide),
        )

    def _key(self) -> tuple:
        return tuple(
            value if isinstance(value, (str, int, float, bool, type(None))) else id(value)
            for value in (getattr(self, f.name) for f in dataclasses.fields(self))
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeighbourWalk):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        parts = [_describe(self.bank)]
        for field in dataclasses.fields(self)[1:]:
            value = getattr(self, field.name)
            if value != field.default:
                shown = _describe(value) if field.name == "guide" else repr(value)
                parts.append(f"{field.name}={shown}")
        return f"NeighbourWalk({', '.join(parts)})"


def _describe(source: Any) -> str:
    """A short name for a bank or guide: the spec, or the shape of the images."""
    if isinstance(source, Tensor):
        return f"<{tuple(source.shape)} images>"
    if isinstance(source, ImageDataset):
        return f"<ImageDataset of {len(source)} images>"
    return repr(source)


def as_walk(neighbours: Any) -> NeighbourWalk | None:
    """``neighbours=`` as a :class:`NeighbourWalk`: a walk as it is, a bare bank (images, an
    ImageDataset or a dataset spec) with the default settings, a dict (a serialised walk) by its
    keys; None stays None."""
    if neighbours is None or isinstance(neighbours, NeighbourWalk):
        return neighbours
    if isinstance(neighbours, dict):
        names = {f.name for f in dataclasses.fields(NeighbourWalk)}
        unknown = sorted(set(neighbours) - names)
        if unknown or "bank" not in neighbours:
            raise GenaugError(
                f"a serialised NeighbourWalk needs a bank and only the keys "
                f"{', '.join(sorted(names))}; got {', '.join(sorted(map(str, neighbours)))}."
            )
        return NeighbourWalk(**neighbours)
    if isinstance(neighbours, (Tensor, ImageDataset, str)):
        return NeighbourWalk(neighbours)
    raise GenaugError(
        f"neighbours must be a NeighbourWalk, or the images to walk toward {_SOURCES}; got "
        f"{type(neighbours).__name__}."
    )


def walk_for_mode(neighbours: Any, mode: str) -> NeighbourWalk | None:
    """``neighbours=`` as a walk (see :func:`as_walk`), checked against the resolved ``mode``:
    mode ``neighbour`` needs one, every other mode takes none."""
    walk = as_walk(neighbours)
    if mode == "neighbour" and walk is None:
        raise GenaugError(
            "mode 'neighbour' walks toward other images, so it needs neighbours=... "
            "(a NeighbourWalk, or the images to walk toward, for example the unlabelled "
            "images the generator was trained on)."
        )
    if mode != "neighbour" and walk is not None:
        raise GenaugError(
            f"neighbours are used by mode 'neighbour' only, and the mode is {mode!r}; "
            "drop neighbours= or pass mode='neighbour'."
        )
    return walk
