"""Pure batched kernels of the generative transforms.

Every kernel takes a generator and images already prepared for it: float32 ``(B, C, S, S)`` in
[0, 1] at the generator's size and channel count, on its device. Randomness comes in as tensors
(``noise``, ``mix``, ``partner``) drawn by the caller, so a kernel is a deterministic function of
its arguments. ``strength`` in [0, 1] is the one magnitude knob; its meaning per mode:

- ``perturb``: the latent jitter, in units of the encoder's posterior scale:
  ``z = mean + strength * scale * noise``. 0 reconstructs the image, 1 draws from the VAE posterior
  (for a deterministic encoder, such as the C-GAN's, the scale is 1: unit Gaussian jitter).
- ``resample``: the sampling temperature: ``z = strength * noise``. 1 samples the generator's
  prior; lower values give more typical, less varied images of the class (the truncation trick);
  0 gives the same prototype image for every sample of a class.
- ``interpolate``: how far to walk toward a partner image of the same class:
  ``z = z_a + t (z_b - z_a)`` with ``t = strength * mix / 2`` and ``mix`` uniform in [0, 1], so 1
  reaches at most the midpoint. An image without a partner is perturbed instead.
- ``neighbour``: how far to walk toward one of the image's ``k`` nearest neighbours in a bank of
  other images (typically unlabelled ones: the generator's training pool), in latent space:
  ``t = strength * mix``, so 1 may reach the neighbour itself and 0.5 at most the midpoint. The
  bank brings the variation of real images the labelled set lacks (its nearest images mostly
  share its class: 97% of the 5 nearest on the digits); an image with no neighbour is
  reconstructed.
- ``vary`` (an image-conditioned generator, e.g. a DAGAN): each image becomes ``G(image, z)``
  with ``z = strength * noise``, so 1 is the spread of variations training saw and 0 the
  generator's central variation of the image. For a diffusion generator, an SDEdit: the image
  noised with ``noise`` (image-shaped) to the level ``strength`` (0: the image itself, 1: pure
  noise), then denoised. A chain of ``L`` variations applies ``G`` ``L``
  times, each link with its own noise (``noise`` shaped (B, L, latent_dim)). It needs no label
  and works on classes the generator never saw. It has no reconstruction, so no ``detail``.

The encoder modes (``perturb``, ``interpolate``, ``neighbour``) return a :class:`Decoded`: the
images, and with ``reconstruct=True`` also the decoded reconstruction of each image: the caller
adds back the image's detail the generator cannot draw, ``image - reconstruction`` (see
``detail`` in :class:`~genaug.transforms.GenerativeAugment`). A ``neighbour`` walk given the
bank images also returns the detail of the bank image it walks toward, so the real detail moves
with the walk: ``(1 - t) x`` the image's own plus ``t x`` the bank image's.

Labels are class indices ``(B,)`` (or None for an unconditional generator); they are preserved.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from genaug.models.base import Generator

__all__ = [
    "BankTensors",
    "Decoded",
    "decode_pair",
    "interpolate",
    "nearest_latents",
    "neighbour",
    "pick_partners",
    "perturb",
    "resample",
    "vary",
]


class BankTensors(NamedTuple):
    """A bank encoded for :func:`neighbour`: its tensors on one device and the walk settings
    the kernel reads (``LatentBank.on(device)`` gives one)."""

    latents: Tensor  # (N, D) float
    labels: Tensor | None = None  # (N,) long
    graph: Tensor | None = None  # (N, k) long, for hops > 1
    images: Tensor | None = None  # (N, C, S, S) uint8 at the generator's size, for ``detail``
    keys: Tensor | None = None  # (N, C*S*S) float pixels in [0, 1]: neighbours found in pixels
    scales: Tensor | None = None  # (N, D) float posterior scales, for a walk that jitters
    k: int = 5  # neighbours each hop picks from
    jitter: float = 0.0  # posterior scales of noise where the walk arrives
    backtrack: bool = True  # whether a hop may step straight back


class Decoded(NamedTuple):
    """What an encoder kernel returns, whatever it was asked for: the images, and what a
    caller keeping the images' detail needs (None where not asked for)."""

    images: Tensor  # (B, C, S, S) in [0, 1]
    reconstruction: Tensor | None = None  # (B, C, S, S): each image decoded from its own latent
    borrowed: Tensor | None = None  # (B, C, S, S): t x (bank image - its reconstruction)
    own_share: Tensor | None = None  # (B,): 1 - t, the share of the image's own detail kept


def decode_pair(
    generator: Generator, z: Tensor, z_self: Tensor, labels: Tensor | None, reconstruct: bool
) -> Decoded:
    """Decode ``z``; with ``reconstruct`` also ``z_self`` (one decoder call of 2B rows).

    Returns:
        :class:`Decoded`: ``images`` (B, C, S, S) from ``z`` and, with ``reconstruct``,
        ``reconstruction`` from ``z_self``.
    """
    if not reconstruct:
        return Decoded(generator.decode(z, labels))
    both_labels = None if labels is None else torch.cat([labels, labels])
    both = generator.decode(torch.cat([z, z_self]), both_labels)  # (2B, C, S, S)
    return Decoded(both[: z.shape[0]], both[z.shape[0] :])


def perturb(
    generator: Generator,
    images: Tensor,
    labels: Tensor | None,
    noise: Tensor,
    strength: float,
    reconstruct: bool = False,
) -> Decoded:
    """Encode, jitter each latent by ``strength`` x its posterior scale, decode.

    Args:
        images: (B, C, S, S) in [0, 1]; labels: (B,) or None; noise: (B, latent_dim) ~ N(0, I).
        reconstruct: also return the decoded reconstruction of each image.

    Returns:
        :class:`Decoded`: ``images`` (B, C, S, S) in [0, 1] (and ``reconstruction``, with
        ``reconstruct``).
    """
    encoding = generator.encode(images, labels)
    z = encoding.mean + strength * encoding.scale * noise  # (B, latent_dim)
    return decode_pair(generator, z, encoding.mean, labels, reconstruct)


def resample(generator: Generator, labels: Tensor | None, noise: Tensor, strength: float) -> Tensor:
    """A fresh sample per row (of the row's class when conditional), at temperature ``strength``.

    Args:
        labels: (B,) or None; noise: (B, latent_dim) ~ N(0, I).

    Returns:
        (B, C, S, S) in [0, 1].
    """
    return generator.decode(strength * noise, labels)


def vary(
    generator: Generator,
    images: Tensor,
    noise: Tensor,
    strength: float,
    labels: Tensor | None = None,
) -> Tensor:
    """Variations of each image (``G(image, strength * noise)``, or an SDEdit of a diffusion
    generator at noise level ``strength``), or a chain of them.

    Args:
        images: (B, C, S, S) in [0, 1].
        noise: (B, latent_dim) ~ N(0, I) for one variation, or (B, L, latent_dim) for a chain of
            ``L``: link ``l`` varies the output of link ``l - 1`` with ``noise[:, l]``.
        labels: (B,) classes a conditional generator conditions on (None: no class); ignored
            by an unconditional one.

    Returns:
        (B, C, S, S) float32 in [0, 1].
    """
    links = noise.unsqueeze(1) if noise.ndim == 2 else noise  # (B, L, latent_dim)
    given = {"labels": labels} if labels is not None and generator.conditional else {}
    out = images
    for link in range(links.shape[1]):
        out = generator.vary(out, strength, noise=links[:, link], **given)
    return out


def interpolate(
    generator: Generator,
    images: Tensor,
    labels: Tensor | None,
    partner: Tensor,
    mix: Tensor,
    noise: Tensor,
    strength: float,
    rows: Tensor | None = None,
    reconstruct: bool = False,
) -> Decoded:
    """Decode a point between the latents of each image and its partner of the same class.

    Args:
        images: (B, C, S, S) in [0, 1], the whole batch (partners are looked up in it).
        labels: (B,) or None.
        partner: (B,) index of each image's partner; an image that is its own partner has none
            and is perturbed instead (with ``noise``).
        mix: (B,) uniform in [0, 1]; the walk is ``t = strength * mix / 2``.
        noise: (B, latent_dim) ~ N(0, I), used for images without a partner.
        rows: which rows to produce (default: all), so skipped images need no decoding.
        reconstruct: also return the decoded reconstruction of each produced row.

    Returns:
        :class:`Decoded`: ``images`` (len(rows), C, S, S) in [0, 1] (and ``reconstruction``,
        with ``reconstruct``).
    """
    encoding = generator.encode(images, labels)
    z_self = encoding.mean  # (B, latent_dim)
    t = (0.5 * strength * mix).to(z_self.dtype).unsqueeze(1)  # (B, 1)
    z_walk = z_self + t * (z_self[partner] - z_self)
    z_jitter = z_self + strength * encoding.scale * noise
    alone = partner == torch.arange(partner.shape[0], device=partner.device)  # (B,)
    z = torch.where(alone.unsqueeze(1), z_jitter, z_walk)
    if rows is not None:
        z, z_self = z[rows], z_self[rows]
        labels = None if labels is None else labels[rows]
    return decode_pair(generator, z, z_self, labels, reconstruct)


def pick_partners(
    classes: Tensor | None, n: int, generator: torch.Generator, device: torch.device
) -> Tensor:
    """For each of ``n`` images, a random other image of the same class (itself when none).

    Images are shuffled within their class and each one's partner is the next in that random
    cycle: O(n log n), no (n, n) matrix. ``classes`` (n,) or None (one class for all).
    """
    key = torch.rand(n, generator=generator, device=device)  # random order within a class
    order = torch.argsort(key)
    if classes is not None:
        classes = classes.to(device)
        order = order[torch.argsort(classes[order], stable=True)]
        sorted_classes = classes[order]
    else:
        sorted_classes = torch.zeros(n, dtype=torch.long, device=device)
    position = torch.arange(n, device=device)
    group_start = torch.searchsorted(sorted_classes, sorted_classes)  # first slot of each class
    next_same = torch.zeros(n, dtype=torch.bool, device=device)
    next_same[:-1] = sorted_classes[1:] == sorted_classes[:-1]
    partner_slot = torch.where(next_same, position + 1, group_start)
    partner = torch.empty_like(order)
    partner[order] = order[partner_slot]
    return partner


def nearest_latents(
    z: Tensor,
    labels: Tensor | None,
    bank: Tensor,
    bank_labels: Tensor | None,
    k: int,
    own: bool = False,
) -> tuple[Tensor, ...]:
    """The ``k`` nearest bank latents of each row of ``z`` (Euclidean), and whether they exist.

    Args:
        z: (B, D) latents; labels: (B,) or None.
        bank: (N, D) latents; bank_labels: (N,) or None. With both label sets given, only bank
            entries of the row's class count.

    Returns:
        indices (B, k) into the bank and ``found`` (B, k) bool. A bank entry at distance ~0 is
        the image itself (the bank may hold it) and does not count. With ``own``, also that
        entry (B,) long per row, -1 where the bank does not hold the image (same distances).
    """
    # Exact distances (the matrix-product shortcut is off by ~1e-3, which would hide the
    # image itself among its neighbours); (B, N) is small: a batch against the bank.
    distances = torch.cdist(
        z.float(), bank.float(), compute_mode="donot_use_mm_for_euclid_dist"
    )  # (B, N)
    itself = distances < 1e-4
    if own:
        closest, which = distances.min(dim=1)  # (B,)
        entry = torch.where(closest < 1e-4, which, torch.full_like(which, -1))
    excluded = itself
    if labels is not None and bank_labels is not None:
        excluded = excluded | (labels.unsqueeze(1) != bank_labels.unsqueeze(0))
    distances = distances.masked_fill(excluded, float("inf"))
    k = min(k, bank.shape[0])
    nearest, indices = distances.topk(k, dim=1, largest=False)  # (B, k)
    if own:
        return indices, torch.isfinite(nearest), entry
    return indices, torch.isfinite(nearest)


def neighbour(
    generator: Generator,
    images: Tensor,
    labels: Tensor | None,
    bank: BankTensors,
    choice: Tensor,
    mix: Tensor,
    strength: float,
    noise: Tensor | None = None,
    reconstruct: bool = False,
) -> Decoded:
    """Walk each image's latent toward a bank latent a few nearest-neighbour hops away, decode.

    Args:
        images: (B, C, S, S) in [0, 1]; labels: (B,) or None.
        bank: the encoded bank on the images' device (``LatentBank.on(device)``):
            ``latents`` (N, D) latent means of the bank images; ``labels`` (N,) or None;
            ``k``: how many nearest neighbours a hop picks from; ``graph`` (N, k) the k nearest
            bank entries of every bank entry, needed for H > 1 hops: hop 1 goes to one of the
            image's nearest bank images, each further hop to one of that image's nearest
            (reaching further images, with a higher risk of another class); ``images``
            (N, C, S, S) uint8: with ``reconstruct``, the walk also carries the detail of the
            bank image it walks toward, in proportion to ``t``; ``keys`` (N, C*S*S) the bank
            images' pixels in [0, 1]: find the neighbours by pixel distance instead of latent
            distance (the walk still goes through the latents); ``jitter``: after the walk, the
            latent moves by ``jitter`` x its posterior scale x ``noise`` (as mode ``perturb``
            with that strength), the scale going from the image's to the bank image's along
            the walk (``scales`` (N, D); without them the image's own), 0: no jitter;
            ``backtrack``: whether a hop may step straight back to the bank image it came from
            (or, on hop 2, to the image's own copy in the bank); False takes the next of the k
            neighbours instead, where there is another: the walk then reaches further.
        choice: (B,) or (B, H) integers in [0, k): which of the k neighbours each hop takes.
        mix: (B,) uniform in [0, 1]; the walk is ``t = strength * mix``.
        noise: (B, D) ~ N(0, I), for a walk that jitters.
        reconstruct: also return the decoded reconstruction of each image.

    Returns:
        :class:`Decoded`: ``images`` (B, C, S, S) in [0, 1]; with ``reconstruct`` also
        ``reconstruction``; with the bank's ``images`` as well, ``borrowed`` (the bank image's
        detail, ``t * (bank image - its reconstruction)``) and ``own_share`` ``1 - t`` (B,):
        the caller's detail is then ``own_share * (image - reconstruction) + borrowed``.
    """
    if choice.ndim == 1:
        choice = choice.unsqueeze(1)  # (B, 1): one hop
    encoding = generator.encode(images, labels)
    z = encoding.mean  # (B, D)
    latents, graph, bank_images = bank.latents, bank.graph, bank.images
    if bank.keys is None:
        query, keys = z, latents
    else:  # pixel space, quantised like the bank's keys so an image finds itself at distance 0
        query = ((images.float().clamp(0, 1) * 255).round() / 255).flatten(1)  # (B, C*S*S)
        keys = bank.keys
    # Without backtracking, the walk also needs the image's own bank entry (hop 2 must not
    # step back onto it): found in the same distances.
    far = not bank.backtrack and choice.shape[1] > 1
    indices, found, *own = nearest_latents(query, labels, keys, bank.labels, bank.k, own=far)
    # Pick among the neighbours that exist (a small class of a labelled bank may have fewer
    # than k): found ones come first, nearest first.
    count = found.sum(dim=1, keepdim=True)  # (B, 1)
    slot = choice[:, :1] % count.clamp(min=1)  # (B, 1)
    target = indices.gather(1, slot).squeeze(1)  # (B,) bank index after hop 1
    ok = count.squeeze(1) > 0  # (B,)
    previous = own[0] if far else None  # (B,) the bank entry each walk just left; -1: none
    for hop in range(1, choice.shape[1]):
        assert graph is not None, "more than one hop needs the bank's neighbour graph"
        width = graph.shape[1]
        step = choice[:, hop].clamp(max=width - 1)
        following = graph[target, step]
        if previous is not None:
            # Stepping straight back: take the next of the k neighbours, where it differs.
            other = graph[target, (step + 1) % width]
            back = (following == previous) & (other != previous)
            previous = target
            following = torch.where(back, other, following)
        target = following
    t = strength * mix.to(z.dtype) * ok.to(z.dtype)  # (B,)
    z_walk = z + t.unsqueeze(1) * (latents[target].to(z.dtype) - z)
    if bank.jitter > 0:
        assert noise is not None, "a jittered walk needs noise"
        scale = encoding.scale
        if bank.scales is not None:
            scale = scale + t.unsqueeze(1) * (bank.scales[target].to(z.dtype) - scale)
        z_walk = z_walk + bank.jitter * scale * noise.to(z.dtype)
    if not reconstruct or bank_images is None:
        return decode_pair(generator, z_walk, z, labels, reconstruct)
    # Decode the walk, the image and the bank image reached in one call of 3B rows.
    b = z.shape[0]
    # A conditional bank holds only the image's class (the walk stays in it): same labels.
    all_labels = None if labels is None else torch.cat([labels, labels, labels])
    decoded = generator.decode(torch.cat([z_walk, z, latents[target].to(z.dtype)]), all_labels)
    walked, own_reconstruction, target_reconstruction = decoded.split(b)  # (B, C, S, S) each
    target_images = bank_images[target].float() / 255.0  # (B, C, S, S)
    share = t.view(-1, 1, 1, 1)
    borrowed = share * (target_images - target_reconstruction.float())
    return Decoded(walked, own_reconstruction, borrowed, 1.0 - t)
