"""The per-image parameters of one call of a generative transform: drawn, checked, used.

A call's randomness is drawn up front into tensors with one row per image (so a call can be
replayed exactly, as in Kornia): :func:`draw_params` draws them for a mode, :func:`check_params`
checks a replayed set against the batch, and :func:`generate` hands them to the mode's kernel
in :mod:`genaug.transforms.functional`; :func:`to_batch_layout` and :func:`add_detail` shape
what the kernel made into the caller's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from genaug.data.convert import convert_channels, resize_images, to_float_images
from genaug.errors import GenaugError
from genaug.transforms import functional as F
from genaug.transforms._inputs import Prepared
from genaug.transforms.functional import Decoded
from genaug.transforms.neighbours import LatentBank

# The keys a mode draws besides ``apply`` (B,) bool and ``noise`` (B, latent_dim).
_EXTRA = {"interpolate": ("mix", "partner"), "neighbour": ("mix", "choice")}


def draw_params(
    mode: str,
    p: float,
    prepared: Prepared,
    bank: LatentBank | None,
    rng: torch.Generator,
    chain: int = 1,
    per_image: bool = False,
) -> dict[str, Tensor]:
    """Draw the parameters of one call from ``rng`` (on its device).

    ``apply`` (B,) bool: transform this image (probability ``p``); ``noise`` (B, latent_dim)
    (for ``vary`` with a ``chain`` of L > 1 variations, (B, L, latent_dim): one per link);
    for ``interpolate`` also ``mix`` (B,) uniform and ``partner`` (B,) index of a same-class
    image; for ``neighbour`` ``mix`` (B,) (all ones for a whole walk) and ``choice``
    (B, hops) which of the ``k`` neighbours each hop takes.

    ``per_image``: draw image by image, each as a call on that image alone draws it (so an
    image gets what a per-sample transform on the same stream gives it in turn; in mode
    ``interpolate`` an image alone has no partner: each is its own).
    """
    n = prepared.batch.shape[0]
    if chain != 1 and mode != "vary":
        raise GenaugError(
            f"chain applies the generator several times in mode 'vary', not in mode {mode!r}; "
            "use chain=1."
        )
    latent, classes = prepared.model.latent_dim, prepared.classes
    if not per_image or n == 1:
        return _draw(mode, p, n, latent, classes, bank, rng, chain)
    if mode not in _EXTRA:
        return _draw_rows(p, n, latent, rng, chain)
    rows = [
        _draw(mode, p, 1, latent, None if classes is None else classes[i : i + 1], bank, rng, chain)
        for i in range(n)
    ]
    params = {key: torch.cat([row[key] for row in rows]) for key in rows[0]}
    if mode == "interpolate":  # each image alone is its own partner (index 0 of its call)
        params["partner"] = torch.arange(n, device=rng.device)
    return params


def _draw_rows(
    p: float, n: int, latent: int, rng: torch.Generator, chain: int
) -> dict[str, Tensor]:
    """:func:`_draw` image by image for the modes that draw ``apply`` and ``noise`` alone.

    Each row is filled in place, in the order calls on one image draw (its ``apply`` uniform,
    then its noise): a fresh ``torch.rand(1)`` or ``torch.randn`` is an empty tensor filled the
    same way, so the numbers are the same, without a tensor per draw and their concatenation.
    """
    device = rng.device
    shape = (n, latent) if chain == 1 else (n, chain, latent)
    uniform = torch.empty(n, device=device)
    noise = torch.empty(shape, device=device)
    for row_uniform, row_noise in zip(uniform.unbind(), noise.unbind()):  # views, in order
        row_uniform.uniform_(generator=rng)
        row_noise.normal_(generator=rng)
    return {"apply": uniform < p, "noise": noise}  # (B,) bool, (B, [L,] latent_dim)


def _draw(
    mode: str,
    p: float,
    n: int,
    latent: int,
    classes: Tensor | None,
    bank: LatentBank | None,
    rng: torch.Generator,
    chain: int,
) -> dict[str, Tensor]:
    """The draws of :func:`draw_params` for ``n`` images, in one go."""
    device = rng.device
    shape = (n, latent) if chain == 1 else (n, chain, latent)
    params = {
        "apply": torch.rand(n, generator=rng, device=device) < p,  # (B,)
        "noise": torch.randn(*shape, generator=rng, device=device),
    }
    if mode == "interpolate":
        params["mix"] = torch.rand(n, generator=rng, device=device)  # (B,)
        params["partner"] = F.pick_partners(classes, n, rng, device)  # (B,)
    elif mode == "neighbour":
        assert bank is not None
        mix = torch.rand(n, generator=rng, device=device)  # (B,)
        params["mix"] = torch.ones_like(mix) if bank.walk == "whole" else mix
        params["choice"] = torch.randint(  # (B, hops)
            0, bank.k, (n, bank.hops), generator=rng, device=device
        )
    return params


def check_params(params: Any, mode: str, n: int, latent_dim: int) -> None:
    """Refuse parameters that are not a draw of ``mode`` for a batch of ``n`` images."""
    keys = ("apply", "noise", *_EXTRA.get(mode, ()))
    if not isinstance(params, dict) or any(key not in params for key in keys):
        raise GenaugError(
            "params must be the dict that make_params returned (or last_params), "
            f"got {type(params).__name__}."
        )
    noise = params["noise"]
    chained = mode == "vary" and noise.ndim == 3 and noise.shape[1] >= 1  # (B, L, latent_dim)
    if chained and noise.shape[2] == latent_dim:
        noise = noise[:, 0]
    if params["apply"].shape != (n,) or noise.shape != (n, latent_dim):
        raise GenaugError(
            f"params were drawn for {params['apply'].shape[0]} images but the batch holds "
            f"{n}; draw them for this batch with make_params."
        )


def generate(
    kernel: Callable[..., Any],
    mode: str,
    prepared: Prepared,
    params: dict[str, Tensor],
    rows: Tensor | None,
    strength: float,
    bank: LatentBank | None,
    reconstruct: bool,
) -> Decoded:
    """Call the mode's ``kernel`` on the prepared batch with the drawn parameters.

    ``rows``: the images to produce (None: all of them); ``reconstruct``: also decode each
    image's reconstruction (for ``detail``). Returns a :class:`Decoded` whose ``images`` are
    (len(rows), C, S, S) at the generator's size.
    """
    model, work, classes, device = prepared.model, prepared.work, prepared.classes, prepared.device
    noise = params["noise"].to(device=device, dtype=work.dtype)

    def pick(t: Tensor | None) -> Tensor | None:
        return t if t is None or rows is None else t[rows]

    if mode == "perturb":
        return kernel(model, pick(work), pick(classes), pick(noise), strength, reconstruct)
    if mode == "resample":
        return Decoded(kernel(model, pick(classes), pick(noise), strength))
    if mode == "vary":  # noise (B, latent_dim), or (B, L, latent_dim) for a chain of L
        return Decoded(kernel(model, pick(work), pick(noise), strength, pick(classes)))
    if mode == "neighbour":
        assert bank is not None
        choice, mix = pick(params["choice"].to(device)), pick(params["mix"].to(device))
        walked = (pick(work), pick(classes), bank.on(device), choice, mix)
        return kernel(model, *walked, strength, pick(noise), reconstruct)
    partner, mix = params["partner"].to(device), params["mix"].to(device)
    # interpolate: partners are looked up in the whole batch, so it takes all rows and ``rows``
    return kernel(model, work, classes, partner, mix, noise, strength, rows, reconstruct)


def to_batch_layout(images: Tensor, batch: Tensor) -> Tensor:
    """Generator output (n, C_gen, S, S) -> float32 (n, C, H, W) like ``batch``."""
    images = convert_channels(images.float(), batch.shape[1])
    return resize_images(images, tuple(batch.shape[-2:]))


def add_detail(
    generated: Tensor, decoded: Decoded, batch: Tensor, rows: Tensor | None, detail: float
) -> Tensor:
    """``generated + detail * (image - reconstruction)``, in the batch's layout, for the images
    ``rows`` of ``batch`` (None: all); a walk's detail moves toward the bank image's with it."""
    assert decoded.reconstruction is not None
    reconstruction = to_batch_layout(decoded.reconstruction, batch)
    # The image's own detail: what the generator's reconstruction misses.
    original = batch if rows is None else batch[rows.to(batch.device)]
    original = to_float_images(original).to(generated.device)
    own = original - reconstruction
    if decoded.borrowed is not None and decoded.own_share is not None:
        own_share = decoded.own_share.float().view(-1, 1, 1, 1)
        own = own_share * own + to_batch_layout(decoded.borrowed, batch)
    return (generated + detail * own).clamp(0.0, 1.0)
