"""The per-image parameters of one call of a generative transform: drawn, checked, used.

A call's randomness is drawn up front into tensors with one row per image (so a call can be
replayed exactly, as in Kornia): :func:`draw_params` draws them for a mode, :func:`check_params`
checks a replayed set against the batch, and :func:`generate` hands them to the mode's kernel
in :mod:`genaug.transforms.functional`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

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
) -> dict[str, Tensor]:
    """Draw the parameters of one call from ``rng`` (on its device).

    ``apply`` (B,) bool: transform this image (probability ``p``); ``noise`` (B, latent_dim)
    (for ``vary`` with a ``chain`` of L > 1 variations, (B, L, latent_dim): one per link);
    for ``interpolate`` also ``mix`` (B,) uniform and ``partner`` (B,) index of a same-class
    image; for ``neighbour`` ``mix`` (B,) (all ones for a whole walk) and ``choice``
    (B, hops) which of the ``k`` neighbours each hop takes.
    """
    n, device = prepared.batch.shape[0], rng.device
    if chain != 1 and mode != "vary":
        raise GenaugError(
            f"chain applies the generator several times in mode 'vary', not in mode {mode!r}; "
            "use chain=1."
        )
    latent = prepared.model.latent_dim
    shape = (n, latent) if chain == 1 else (n, chain, latent)
    params = {
        "apply": torch.rand(n, generator=rng, device=device) < p,  # (B,)
        "noise": torch.randn(*shape, generator=rng, device=device),
    }
    if mode == "interpolate":
        params["mix"] = torch.rand(n, generator=rng, device=device)  # (B,)
        params["partner"] = F.pick_partners(prepared.classes, n, rng, device)  # (B,)
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
    model, work, classes = prepared.model, prepared.work, prepared.classes
    device = model.device
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
