"""GenerativeAugment: a batched generative transform (an ``nn.Module``) on image batches.

Parameters are drawn per image (its own latent noise, its own apply/skip decision) from a
``torch.Generator`` the transform owns; ``make_params`` draws them, ``apply`` uses them, and
``forward(..., params=...)`` replays a call exactly (like Kornia).

Label policy per mode (every mode keeps the label of each image):

- ``perturb`` (generators with an encoder): encode, jitter the latent, decode.
- ``resample``: replace the image by a fresh sample of its class. An unconditional generator
  cannot know the class, so it may resample only unlabelled images (called without labels).
- ``interpolate`` (encoder): decode a point between the latents of two images of one class.
- ``neighbour`` (encoder, and a bank of other images, typically unlabelled): decode a point
  between the image's latent and that of one of its nearest bank images.
- ``vary`` (an image-conditioned generator, e.g. a DAGAN): each image becomes ``G(image, z)``,
  another plausible member of its class; it needs no label, so it works on classes the generator
  never saw. ``make_params(..., chain=L)`` draws a chain of ``L`` variations (``G`` applied ``L``
  times). Such a generator does no other mode.
- ``auto``: ``vary`` for an image-conditioned generator, else ``perturb`` when the generator
  has an encoder, else ``resample``.

See :mod:`genaug.transforms.functional` for what ``strength`` means in each mode. ``detail``
(encoder modes) adds back what the generator cannot draw: the image minus its reconstruction;
``vary`` has no reconstruction, so it refuses ``detail > 0``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import get_worker_info

from genaug.data.convert import convert_channels, resize_images, to_float_images, to_uint8_images
from genaug.device import autocast_for
from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.models.holder import GeneratorHolder
from genaug.transforms import functional as F
from genaug.transforms._inputs import Prepared, prepare_batch
from genaug.transforms._params import check_params, draw_params, generate
from genaug.transforms.checks import (
    MODES,
    PRECISIONS,
    check_count,
    check_detail,
    check_fraction,
    check_option,
    resolve_mode,
    supported_modes,
)
from genaug.transforms.neighbours import LatentBank, build_latent_bank
from genaug.transforms.walk import NeighbourWalk, walk_for_mode

__all__ = ["MODES", "PRECISIONS", "GenerativeAugment", "resolve_mode", "supported_modes"]


def mix_seeds(seed: int, other: int) -> int:
    """A 63-bit seed from two integers (a transform's seed and a DataLoader worker's seed)."""
    return (seed * 6364136223846793005 + other * 1442695040888963407 + 1) % (2**63)


class GenerativeAugment(nn.Module):
    """Batched generative augmentation of images ``(B, C, H, W)``: uint8 0-255 or float in [0, 1].

    Args:
        generator: a :class:`~genaug.models.base.Generator`, or a checkpoint path to load (CPU).
        mode: ``auto``, ``perturb``, ``resample``, ``interpolate``, ``neighbour`` or ``vary``
            (see the module docstring).
        p: probability that each image is transformed (drawn per image).
        strength: magnitude in [0, 1]; its meaning per mode is in :mod:`~.functional`.
        seed: seeds the transform's own random generator; None draws one from torch's global
            RNG, so ``torch.manual_seed`` makes the run repeat. In a DataLoader worker the stream
            is re-seeded from this seed and the worker's seed: workers differ, runs repeat.
        precision: ``auto`` (bfloat16 autocast on CUDA, float32 on the CPU), ``float32``, or
            ``bfloat16`` (also on the CPU: 2-3x faster where the CPU has AMX or AVX512-BF16,
            slower where it has not; pixels then differ by about 1/256).
        compile: ``torch.compile`` the generator call (with weight freezing) on first use:
            faster after a compile of tens of seconds, so meant for the long-lived batched path
            (GenerativeMix on the training device), not for short per-sample runs in workers.
        neighbours: for mode ``neighbour``, where and how to walk: a
            :class:`~genaug.transforms.walk.NeighbourWalk` (the bank of images to walk toward,
            typically unlabelled ones, and the walk's settings), or just the bank (a
            (N, C, H, W) tensor, an :class:`~genaug.data.ImageDataset` or a dataset spec),
            walked with the defaults. The bank is encoded once, here, into ``self.bank``.
        detail: in [0, 1], how much of the image's own detail to keep (encoder modes only):
            ``output = generated + detail * (image - reconstruction)``, at the image's own size.
            A generator's images are smoother than real ones (a VAE's blur); with ``detail=1``
            the change the generator makes is moved onto the real image, so its sharp edges
            and fine texture stay (and an image larger than the generator keeps its
            resolution). 0 (the default) outputs the generated image as it is. In mode
            ``neighbour`` the detail moves with the walk: a walk of ``t`` toward a bank image
            keeps ``(1 - t)`` of the image's detail and takes ``t`` of the bank image's, so a
            whole walk with ``detail=1`` reaches the real bank image itself.

    Images of another size are resized to the generator's and back; gray <-> RGB is converted.
    The output keeps the input's dtype, device, size and channel count; the input is not
    modified. Labels ``(B,)`` (or soft ``(B, num_classes)``, argmax used) are what a conditional
    generator conditions on; given none, it conditions on the class it infers for each image
    (``Generator.infer_labels``; one that cannot infer says so). The transform moves with
    ``.to(device)``.

    Example: ``aug = GenerativeAugment.from_checkpoint("runs/digits-vae", p=0.5, seed=0)``,
    then ``images = aug(images, labels)``.
    """

    def __init__(
        self,
        generator: Generator | str | os.PathLike,
        mode: str = "auto",
        p: float = 0.5,
        strength: float = 1.0,
        seed: int | None = None,
        precision: str = "auto",
        compile: bool = False,
        neighbours: NeighbourWalk | Any = None,
        detail: float = 0.0,
    ) -> None:
        super().__init__()
        self.owner = type(self).__name__  # how error messages name this transform
        self.holder = GeneratorHolder(generator, owner=self.owner)
        model = self.holder.model
        self.mode = resolve_mode(
            mode, model.has_encoder, model.conditional, model.family, model.image_conditioned
        )
        self.p = check_fraction(p, "p")
        self.strength = check_fraction(strength, "strength")
        self.detail = check_detail(detail, self.mode)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise GenaugError(f"seed must be an integer or None, got {seed!r}.")
        self.seed = None if seed is None else int(seed)
        self._base_seed = (
            int(torch.randint(0, 2**62, (1,)).item()) if seed is None else int(seed) % (2**63)
        )
        self._rng = torch.Generator().manual_seed(self._base_seed)
        self._worker_rng: torch.Generator | None = None
        self._worker_rng_key: int | None = None
        self.precision = check_option(precision, "precision", PRECISIONS)
        if not isinstance(compile, bool):
            raise GenaugError(f"compile must be True or False, got {compile!r}.")
        self.compile = compile
        self._compiled: Callable[..., Tensor] | None = None
        self.last_params: dict[str, Tensor] | None = None
        walk = walk_for_mode(neighbours, self.mode)
        # The encoded bank (N latents, and the walk's settings); the walk's source images are
        # not kept, so a pickled copy (a DataLoader worker's) does not carry them.
        self.bank: LatentBank | None = None
        if walk is not None:
            self.bank = build_latent_bank(walk, model, self.owner, keep_images=self.detail > 0)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs: Any) -> GenerativeAugment:
        """Build from a checkpoint folder; pickled copies carry the path, not the weights."""
        return cls(os.fspath(path), **kwargs)

    @property
    def generator(self) -> Generator:
        """The generator (in eval mode)."""
        return self.holder.model

    def extra_repr(self) -> str:
        extra = f"mode={self.mode!r}, p={self.p}, strength={self.strength}, seed={self.seed}"
        if self.detail:
            extra += f", detail={self.detail}"
        if self.bank is not None:
            extra += f", neighbours={self.bank!r}"
        if self.precision != "auto" or self.compile:
            extra += f", precision={self.precision!r}, compile={self.compile}"
        return extra

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        # A torch.Generator does not survive torch's DataLoader pickler (its state tensor is
        # sent as shared memory and fails to rebuild under spawn): carry the state as bytes.
        state = self.__dict__.copy()
        rng = state.pop("_rng")
        state["_rng_state"] = bytes(rng.get_state().numpy()) if rng.device.type == "cpu" else None
        state["_worker_rng"] = state["_worker_rng_key"] = None
        state["last_params"] = None
        state["_compiled"] = None  # compiled code does not pickle; recompiled on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        rng_state = state.pop("_rng_state")
        super().__setstate__(state)
        self._rng = torch.Generator().manual_seed(self._base_seed)
        if rng_state is not None:
            self._rng.set_state(torch.frombuffer(bytearray(rng_state), dtype=torch.uint8))

    def _apply(self, fn: Any, recurse: bool = True) -> GenerativeAugment:
        self._compiled = None  # frozen weights would be stale after a move or cast
        return super()._apply(fn, recurse)

    # ------------------------------------------------------------------ randomness
    def _random_generator(self, device: torch.device) -> torch.Generator:
        info = get_worker_info()
        if info is not None:  # a DataLoader worker: own stream from (seed, worker seed)
            if self._worker_rng is None or self._worker_rng_key != info.seed:
                self._worker_rng = torch.Generator().manual_seed(
                    mix_seeds(self._base_seed, info.seed)
                )
                self._worker_rng_key = info.seed
            return self._worker_rng
        if self._rng.device != device:  # moved to another device: the stream restarts there
            self._rng = torch.Generator(device).manual_seed(self._base_seed)
        return self._rng

    def make_params(
        self,
        batch: Tensor,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        chain: int = 1,
    ) -> dict[str, Tensor]:
        """Draw the per-image parameters for ``batch``: a dict of tensors with first dim B.

        ``apply`` (B,) bool: transform this image; ``noise`` (B, latent_dim); for
        ``interpolate`` also ``mix`` (B,) uniform and ``partner`` (B,) index of a same-class image;
        for ``neighbour`` ``mix`` (B,) and ``choice`` (B, hops), the neighbour each hop takes.
        ``generator`` replaces the transform's own random generator for this draw. ``chain``
        (mode ``vary``): draw a chain of that many variations, noise (B, chain, latent_dim);
        ``aug(batch, labels, params=params)`` then applies the generator ``chain`` times.
        """
        chain = check_count(chain, "chain")
        return self._make_params(self._prepare(batch, labels, convert=False), generator, chain)

    def _make_params(
        self, prepared: Prepared, generator: torch.Generator | None = None, chain: int = 1
    ) -> dict[str, Tensor]:
        rng = generator if generator is not None else self._random_generator(prepared.model.device)
        return draw_params(self.mode, self.p, prepared, self.bank, rng, chain)

    # ------------------------------------------------------------------ applying
    def forward(
        self,
        batch: Tensor,
        labels: Tensor | None = None,
        params: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Transform ``batch`` (B, C, H, W); pass ``params`` (e.g. ``last_params``) to replay."""
        prepared = self._prepare(batch, labels)
        if params is None:
            params = self._make_params(prepared)
        self.last_params = params
        return self._run(prepared, params)

    def apply(self, batch: Tensor, labels: Tensor | None, params: dict[str, Tensor]) -> Tensor:
        """Transform ``batch`` with the given parameters (from :meth:`make_params`)."""
        return self._run(self._prepare(batch, labels), params)

    def _run(self, prepared: Prepared, params: dict[str, Tensor]) -> Tensor:
        batch, model = prepared.batch, prepared.model
        check_params(params, self.mode, batch.shape[0], model.latent_dim)
        device = model.device
        applied = params["apply"].to(device)
        # On the CPU only the images to transform are computed; on an accelerator the whole
        # batch is computed and selected with torch.where, so nothing waits for the host.
        rows = None
        if device.type == "cpu":
            rows = applied.nonzero().squeeze(1)
            if rows.numel() == 0:
                return batch.clone()
        with torch.inference_mode(), self._autocast(device):
            decoded = generate(  # (n, C_gen, S, S), or a tuple with ``detail``
                self._kernel(),
                self.mode,
                prepared,
                params,
                rows,
                self.strength,
                self.bank,
                self.detail > 0,
            )
            if self.detail > 0:
                generated, reconstruction, *walked = decoded
                generated = self._to_batch_layout(generated, batch)
                reconstruction = self._to_batch_layout(reconstruction, batch)
                # The image's own detail: what the generator's reconstruction misses.
                original = batch if rows is None else batch[rows.to(batch.device)]
                original = to_float_images(original).to(generated.device)
                detail = original - reconstruction
                if walked:  # a walk: the detail moves toward the bank image's, with the walk
                    borrowed, own_share = walked
                    own_share = own_share.float().view(-1, 1, 1, 1)
                    detail = own_share * detail + self._to_batch_layout(borrowed, batch)
                generated = (generated + self.detail * detail).clamp(0.0, 1.0)
            else:
                generated = self._to_batch_layout(decoded, batch)
            if batch.dtype == torch.uint8:
                generated = to_uint8_images(generated)
            else:
                generated = generated.to(batch.dtype)
        generated = generated.to(batch.device)
        if rows is None:
            keep = applied.to(batch.device).view(-1, 1, 1, 1)
            return torch.where(keep, generated, batch)
        out = batch.clone()
        out[rows.to(batch.device)] = generated
        return out

    @staticmethod
    def _to_batch_layout(images: Tensor, batch: Tensor) -> Tensor:
        """Generator output (n, C_gen, S, S) -> float32 (n, C, H, W) like ``batch``."""
        images = convert_channels(images.float(), batch.shape[1])
        return resize_images(images, tuple(batch.shape[-2:]))

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.precision == "bfloat16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        if self.precision == "auto":
            return autocast_for(device)()
        return contextlib.nullcontext()

    def _kernel(self) -> Callable[..., Tensor]:
        kernel = getattr(F, self.mode)
        if not self.compile:
            return kernel
        if self._compiled is None:
            # Freezing treats the generator weights as constants: batch norm folds into the
            # convolutions. The weights of an augmenting generator do not change.
            self._compiled = torch.compile(kernel, options={"freezing": True})
        return self._compiled

    # ------------------------------------------------------------------ checking inputs
    def _prepare(self, batch: Any, labels: Any, convert: bool = True) -> Prepared:
        guided = self.bank is not None and self.bank.labels is not None
        model = self.holder.current()
        return prepare_batch(batch, labels, model, self.owner, self.mode, guided, convert)
