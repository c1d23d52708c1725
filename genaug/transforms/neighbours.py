"""The latent bank behind mode ``neighbour``: other images, encoded once, to walk toward.

Semi-supervised augmentation: a few labelled images and many unlabelled ones (the generator's
training pool). Mode ``neighbour`` moves a labelled image's latent part of the way toward one of
its nearest unlabelled images, so the labelled set borrows the variation of real images it does
not hold, while staying closer to the labelled image than to the neighbour (``t <= 1/2``). The
neighbours' labels are never read; for a conditional generator the bank needs labels (its
encoder takes them) and only neighbours of the same class count.

A *guide* (the few labelled images) keeps an unconditional generator's walk within the class:
its labels spread over the bank along the bank's nearest-neighbour graph (label propagation), and
each hop then goes only to bank images given the walking image's class. On the digits this
lowers the share of 6-hop walks that end on another class from 4-8% to 1-2% at 2 and 5 shots per
class (``benchmarks/results/experiments.md``).
"""

from __future__ import annotations

from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

from genaug.data.convert import convert_channels, resize_images, to_float_images, to_uint8_images
from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.transforms.functional import BankTensors, nearest_latents
from genaug.transforms.walk import NeighbourWalk

__all__ = ["LatentBank", "build_latent_bank", "propagate_labels"]

_ENCODE_CHUNK = 256  # images encoded per call while building the bank
_PROPAGATION_K = 10  # neighbours per node of the label-propagation graph
_PROPAGATION_ALPHA = 0.9  # share of a node's score that comes from its neighbours
_PROPAGATION_STEPS = 50
_TENSORS = ("latents", "labels", "graph", "images", "keys", "scales")  # what a LatentBank holds


class LatentBank:
    """Latent means (N, D) of the bank images (and their labels), kept on the CPU, with the
    settings of the :class:`~genaug.transforms.walk.NeighbourWalk` it was built for (``k``,
    ``hops``, ``walk``, ``space``, ``jitter``, ``backtrack``; not its bank or guide images).

    ``images`` (N, C, S, S) uint8 at the generator's size, kept only when a walk needs the bank
    images' own detail (``detail > 0``). ``keys`` (N, C*S*S) float: the bank images' pixels, when
    neighbours are found in pixel space (then the graph is built on them). ``scales`` (N, D):
    the latents' posterior scales, kept when the walk jitters around where it arrives.
    ``on(device)`` returns the tensors on a device, copied once per device: the CPU copy is
    the one that pickles and the one a DataLoader worker uses, so no CUDA tensor reaches a
    worker.
    """

    def __init__(
        self,
        latents: Tensor,
        labels: Tensor | None,
        walk: NeighbourWalk,
        images: Tensor | None = None,
        keys: Tensor | None = None,
        scales: Tensor | None = None,
    ) -> None:
        self.latents = latents.detach().float().cpu().contiguous()  # (N, D)
        self.scales = None if scales is None else scales.detach().float().cpu().contiguous()
        self.keys = None if keys is None else keys.detach().float().cpu().contiguous()
        search = self.latents if self.keys is None else self.keys  # what neighbours are found in
        self.labels = None if labels is None else labels.detach().long().cpu()  # (N,)
        self.images = None if images is None else images.detach().cpu().contiguous()
        self.k, self.hops, self.walk, self.space = walk.k, walk.hops, walk.walk, walk.space
        self.jitter, self.backtrack = walk.jitter, walk.backtrack
        self.graph: Tensor | None = None  # (N, k): each entry's k nearest others, for hops > 1
        if self.hops > 1:
            rows = []
            for start in range(0, len(self), _ENCODE_CHUNK):  # bounded memory: (chunk, N)
                part = slice(start, start + _ENCODE_CHUNK)
                labels_part = None if self.labels is None else self.labels[part]
                indices, found = nearest_latents(
                    search[part], labels_part, search, self.labels, self.k
                )
                # A missing neighbour (a class smaller than k + 1) repeats the nearest one, or
                # the entry itself when it has none: a hop never leaves the class.
                own = torch.arange(start, start + indices.shape[0]).unsqueeze(1)
                fallback = torch.where(found[:, :1], indices[:, :1], own)  # (chunk, 1)
                rows.append(torch.where(found, indices, fallback))
            self.graph = torch.cat(rows)
        self._copies: dict[str, BankTensors] = {}

    def __len__(self) -> int:
        return self.latents.shape[0]

    def on(self, device: torch.device | str = "cpu") -> BankTensors:
        """The bank's tensors on ``device``, with the walk settings the kernel reads."""
        device = torch.device(device)
        tensors = BankTensors(
            self.latents,
            self.labels,
            self.graph,
            self.images,
            self.keys,
            self.scales,
            self.k,
            self.jitter,
            self.backtrack,
        )
        if device.type == "cpu":
            return tensors
        key = str(device)
        if key not in self._copies:
            self._copies[key] = BankTensors(
                *(t.to(device) if isinstance(t, Tensor) else t for t in tensors)
            )
        return self._copies[key]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_copies"] = {}  # device copies are rebuilt where needed
        # The tensors as one safetensors blob: plain bytes, which a spawn DataLoader sends as
        # they are (tensors would travel through shared-memory file descriptors).
        tensors = {name: state.pop(name) for name in _TENSORS}
        present = {name: t.contiguous() for name, t in tensors.items() if t is not None}
        state["_tensors"] = save_tensors(present)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        tensors = load_tensors(state.pop("_tensors"))
        self.__dict__.update(state)
        for name in _TENSORS:
            setattr(self, name, tensors.get(name))

    def __repr__(self) -> str:
        labelled = "labelled" if self.labels is not None else "unlabelled"
        settings = f"k={self.k}, hops={self.hops}"
        for name, default in (("walk", "partway"), ("space", "latent"), ("jitter", 0.0)):
            if getattr(self, name) != default:
                settings += f", {name}={getattr(self, name)!r}"
        if not self.backtrack:
            settings += ", backtrack=False"
        return f"LatentBank({len(self)} {labelled} images, {settings})"


def _bank_images(bank: Any, model: Generator) -> tuple[Tensor, Tensor | None]:
    """The bank's images (N, C, H, W) and labels (N,) or None, from a walk's checked bank."""
    from genaug.data import ImageDataset, load_dataset

    if isinstance(bank, str):
        bank = load_dataset(bank, image_size=model.image_size, channels=model.channels)
    if isinstance(bank, ImageDataset):
        targets = bank.targets
        labels = None if bool((targets < 0).any()) else targets
        return bank.images, labels
    return bank, None  # a tensor (NeighbourWalk checked the type)


def propagate_labels(latents: Tensor, guide_latents: Tensor, guide_labels: Tensor) -> Tensor:
    """A class for every latent, spread from the labelled ``guide`` along nearest neighbours.

    The guide and the latents form one graph, each node linked to its 10 nearest others; every
    node repeatedly takes 0.9 x the mean class scores of its neighbours plus 0.1 x its own
    label (guide nodes, and latents equal to one, keep theirs). A node no guide reaches takes
    its nearest guide's class.

    Args:
        latents: (N, D); guide_latents: (M, D); guide_labels: (M,) class indices.

    Returns:
        (N,) long class indices.
    """
    nodes = torch.cat([guide_latents, latents]).float()  # (M + N, D)
    m, total = guide_latents.shape[0], nodes.shape[0]
    k = min(_PROPAGATION_K, total - 1)
    rows = []
    for start in range(0, total, _ENCODE_CHUNK):  # bounded memory: (chunk, M + N)
        distances = torch.cdist(nodes[start : start + _ENCODE_CHUNK], nodes)
        own = torch.arange(start, start + distances.shape[0])
        distances[torch.arange(distances.shape[0]), own] = float("inf")  # not its own neighbour
        rows.append(distances.topk(k, dim=1, largest=False).indices)
    graph = torch.cat(rows)  # (M + N, k)
    num_classes = int(guide_labels.max()) + 1
    seed = torch.zeros(total, num_classes)
    seed[torch.arange(m), guide_labels.long()] = 1.0
    # A bank image that is one of the guide's images (the shots are often in the bank too)
    # is a guide node as well: it keeps that label.
    fixed = torch.zeros(total, dtype=torch.bool)
    fixed[:m] = True
    for start in range(0, latents.shape[0], _ENCODE_CHUNK):
        distances = torch.cdist(latents[start : start + _ENCODE_CHUNK].float(), nodes[:m])
        closest, which = distances.min(dim=1)
        same = closest < 1e-4
        rows = m + start + torch.nonzero(same).squeeze(1)
        fixed[rows] = True
        seed[rows, guide_labels.long()[which[same]]] = 1.0
    scores = seed.clone()
    for _ in range(_PROPAGATION_STEPS):
        scores = _PROPAGATION_ALPHA * scores[graph].mean(dim=1) + (1 - _PROPAGATION_ALPHA) * seed
        scores[fixed] = seed[fixed]
    labels = scores[m:].argmax(dim=1)
    unreached = scores[m:].sum(dim=1) == 0
    if bool(unreached.any()):
        nearest = torch.cdist(latents[unreached].float(), guide_latents.float()).argmin(dim=1)
        labels[unreached] = guide_labels.long()[nearest]
    return labels


def _encode(
    images: Tensor,
    labels: Tensor | None,
    model: Generator,
    owner: str,
    kept: list[Tensor] | None = None,
    scales: list[Tensor] | None = None,
) -> Tensor:
    """Latent means (N, D) on the CPU, encoded in chunks without gradients.

    ``kept``: a list that receives the images as the generator saw them (uint8 chunks);
    ``scales``: one that receives the posterior scales (float chunks (n, D)).
    """
    chunks = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], _ENCODE_CHUNK):
            x = to_float_images(images[start : start + _ENCODE_CHUNK]).to(model.device)
            x = resize_images(convert_channels(x, model.channels), model.image_size)
            if not bool(torch.isfinite(x).all()):
                raise GenaugError(f"{owner}: neighbours hold NaN or infinite pixel values.")
            x = x.clamp(0.0, 1.0)
            if kept is not None:
                kept.append(to_uint8_images(x).cpu())
            y = None if labels is None else labels[start : start + _ENCODE_CHUNK].to(model.device)
            encoding = model.encode(x, y)
            chunks.append(encoding.mean.float().cpu())
            if scales is not None:
                scales.append(encoding.scale.float().cpu())
    return torch.cat(chunks)


def _guide_images(guide: Any, model: Generator, owner: str) -> tuple[Tensor, Tensor]:
    """The guide's images and labels, from an ImageDataset with labels or a dataset spec."""
    from genaug.data import ImageDataset, load_dataset

    if isinstance(guide, str):
        guide = load_dataset(guide, image_size=model.image_size, channels=model.channels)
    if not isinstance(guide, ImageDataset) or bool((guide.targets < 0).any()):
        raise GenaugError(
            f"{owner}: the NeighbourWalk guide must be labelled images (an ImageDataset with labels, "
            f"or a dataset spec such as 'imagefolder:PATH'), got {type(guide).__name__}"
            + (" without labels." if isinstance(guide, ImageDataset) else ".")
        )
    return guide.images, guide.targets


def build_latent_bank(
    walk: NeighbourWalk, model: Generator, owner: str, keep_images: bool = False
) -> LatentBank:
    """Encode the bank of ``walk`` with ``model`` into a :class:`LatentBank` (no gradients).

    The walk's ``guide``: labelled images whose classes spread over the bank (see
    :func:`propagate_labels`), for an unconditional generator: the walk then stays in the class.
    Its ``space``: ``latent`` (neighbours and the guide's propagation in the generator's latent
    space) or ``pixels`` (in the raw pixels at the generator's size: the ablation that says
    what the latent space adds; the walk itself still goes through the latent space). A walk
    that jitters also keeps the latents' posterior scales.
    ``keep_images``: also keep the bank images (uint8, at the generator's size), for a walk
    that carries their detail (``detail > 0``). ``owner`` names the transform in errors.
    """
    if not isinstance(walk, NeighbourWalk):
        raise GenaugError(f"{owner}: build_latent_bank takes a NeighbourWalk, got {walk!r}.")
    guide, space = walk.guide, walk.space
    images, labels = _bank_images(walk.bank, model)
    if images.ndim != 4 or images.shape[0] < 2 or images.shape[1] not in (1, 3):
        raise GenaugError(
            f"{owner}: neighbours must hold at least 2 images shaped (N, C, H, W) with 1 or 3 "
            f"channels, got shape {tuple(images.shape)}."
        )
    if not model.conditional:
        labels = None  # an unconditional encoder takes no labels, and the walk needs none
    if model.conditional and labels is None:
        raise GenaugError(
            f"{owner}: the {model.family} generator is conditional, so its encoder needs the "
            "neighbours' labels; pass them as an ImageDataset with labels, or use an "
            "unconditional generator (one trained on unlabelled images)."
        )
    pixels = space == "pixels"
    kept: list[Tensor] | None = [] if keep_images or pixels else None
    scales: list[Tensor] | None = [] if walk.jitter > 0 else None
    latents = _encode(images, labels, model, owner, kept, scales)
    bank_images = None if kept is None else torch.cat(kept)
    keys = _pixels(bank_images) if pixels else None
    if guide is not None:
        if model.conditional:
            raise GenaugError(
                f"{owner}: a NeighbourWalk guide is for an unconditional generator; a conditional "
                "one already walks within the class of its labelled neighbours, so drop the guide."
            )
        guide_images, guide_labels = _guide_images(guide, model, owner)
        guide_kept: list[Tensor] = []
        guide_latents = _encode(guide_images, None, model, owner, guide_kept)
        if pixels:
            labels = propagate_labels(keys, _pixels(torch.cat(guide_kept)), guide_labels)
        else:
            labels = propagate_labels(latents, guide_latents, guide_labels)
    return LatentBank(
        latents,
        labels,
        walk,
        bank_images if keep_images else None,
        keys,
        None if scales is None else torch.cat(scales),
    )


def _pixels(images: Tensor) -> Tensor:
    """uint8 images (N, C, S, S) -> float pixel vectors (N, C*S*S) in [0, 1]."""
    return images.flatten(1).float() / 255.0
