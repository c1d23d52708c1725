"""GenerativeAugment: a batched generative transform (an ``nn.Module``) on image batches.

Parameters are drawn per image (its own latent noise, its own apply/skip decision) from a
``torch.Generator`` the transform owns; ``make_params`` draws them, ``transform_batch`` uses them,
and ``forward(..., params=...)`` replays a call exactly (like Kornia). Its settings are one
frozen :class:`~genaug.transforms.settings.AugmentSettings`, shared with every adapter.

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
  times). Such a generator does no other mode. A diffusion generator varies too (SDEdit:
  noise each image to the level ``strength`` sets, then denoise); it also resamples.
- ``auto``: ``vary`` for a generator that varies images (image-conditioned or diffusion), else
  ``perturb`` when the generator has an encoder, else ``resample``.

See :mod:`genaug.transforms.functional` for what ``strength`` means in each mode. ``detail``
(encoder modes) adds back what the generator cannot draw: the image minus its reconstruction;
``vary`` has no reconstruction, so it refuses ``detail > 0``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import get_worker_info

from genaug.data.convert import to_uint8_images
from genaug.device import autocast_for, single_image_cpu_kernels
from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.models.holder import GeneratorHolder
from genaug.transforms import functional as F
from genaug.transforms._inputs import Prepared, prepare_batch, with_inferred_classes
from genaug.transforms._params import (
    add_detail,
    check_params,
    draw_params,
    generate,
    to_batch_layout,
)
from genaug.transforms.checks import (
    MODES,
    PRECISIONS,
    check_count,
    check_flag,
    resolve_mode,
    supported_modes,
)
from genaug.transforms.neighbours import LatentBank, build_latent_bank
from genaug.transforms.settings import AugmentSettings, SettingsAttributes
from genaug.transforms.walk import NeighbourWalk

__all__ = ["MODES", "PRECISIONS", "GenerativeAugment", "resolve_mode", "supported_modes"]


def mix_seeds(seed: int, other: int) -> int:
    """A 63-bit seed from two integers (a transform's seed and a DataLoader worker's seed)."""
    return (seed * 6364136223846793005 + other * 1442695040888963407 + 1) % (2**63)


class GenerativeAugment(SettingsAttributes, nn.Module):
    """Batched generative augmentation of images ``(B, C, H, W)``: uint8 0-255 or float in [0, 1].

    Args:
        generator: a :class:`~genaug.models.base.Generator`, a checkpoint path (loaded on the
            CPU), or a genaug transform whose generator to share. A pickled copy carries the
            path (also that of a generator ``load_generator`` loaded and nobody changed since),
            else the weights as plain bytes.
        mode, p, strength, detail, neighbours, precision, compile: the settings every
            transform takes, in this order (see
            :class:`~genaug.transforms.settings.AugmentSettings`). ``p`` is drawn per image. The
            ``neighbours`` bank of mode ``neighbour`` is encoded once, here, into ``self.bank``.
            With ``detail=1`` the change the generator makes is moved onto the real image, so
            its sharp edges and fine texture stay (and an image larger than the generator keeps
            its resolution); in mode ``neighbour`` the detail moves with the walk: a walk of
            ``t`` toward a bank image keeps ``(1 - t)`` of the image's detail and takes ``t`` of
            the bank image's. ``compile=True`` is read back as ``aug.settings.compile``
            (``aug.compile()`` stays ``nn.Module``'s).
        seed: seeds the transform's own random generator; None draws one from torch's global
            RNG, so ``torch.manual_seed`` makes the run repeat. In a DataLoader worker the stream
            is re-seeded from this seed and the worker's seed: workers differ, runs repeat.

    Images of another size are resized to the generator's and back; gray <-> RGB is converted.
    The output keeps the input's dtype, device, size and channel count; the input is not
    modified. Labels ``(B,)`` (or soft ``(B, num_classes)``, argmax used) are what a conditional
    generator conditions on; given none, it conditions on the class it infers for each image
    (``Generator.infer_labels``; one that cannot infer says so). The transform moves with
    ``.to(device)``; an enclosing model's ``.apply(init_fn)`` leaves the generator alone.

    Example: ``aug = GenerativeAugment("runs/digits-vae", p=0.5, seed=0)``, then
    ``images = aug(images, labels)``; ``aug(images, labels, params=aug.last_params)`` replays.
    """

    def __init__(
        self,
        generator: Generator | str | os.PathLike,
        *,
        mode: str = "auto",
        p: float = 0.5,
        strength: float = 1.0,
        detail: float = 0.0,
        neighbours: NeighbourWalk | Any = None,
        precision: str = "auto",
        compile: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        settings = AugmentSettings(mode, p, strength, detail, neighbours, precision, compile)
        self._build(generator, settings, seed, type(self).__name__)

    @classmethod
    def from_settings(
        cls,
        generator: Generator | str | os.PathLike,
        settings: AugmentSettings,
        *,
        seed: int | None = None,
        owner: str | None = None,
    ) -> GenerativeAugment:
        """Build from an :class:`AugmentSettings` (the door every adapter goes through).

        ``owner``: how error messages name the transform (default: this class's name).
        Example: ``GenerativeAugment.from_settings(path, AugmentSettings(p=0.3), seed=0)``.
        """
        if not isinstance(settings, AugmentSettings):
            raise GenaugError(
                f"settings must be an AugmentSettings, got {type(settings).__name__}; build one "
                "with AugmentSettings(mode=..., p=...)."
            )
        augment = cls.__new__(cls)
        nn.Module.__init__(augment)
        augment._build(generator, settings, seed, owner or cls.__name__)
        return augment

    def _build(self, generator: Any, settings: AugmentSettings, seed: Any, owner: str) -> None:
        self.owner = owner  # how error messages name this transform
        self.holder = GeneratorHolder(generator, owner=owner)
        model = self.holder.model
        self.settings = settings.resolved(model)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise GenaugError(f"seed must be an integer or None, got {seed!r}.")
        self.seed = None if seed is None else int(seed)
        self._base_seed = (
            int(torch.randint(0, 2**62, (1,)).item()) if seed is None else int(seed) % (2**63)
        )
        self._rng = torch.Generator().manual_seed(self._base_seed)
        self._worker_rng: torch.Generator | None = None
        self._worker_rng_key: int | None = None
        self._compiled: Callable[..., Any] | None = None
        self.last_params: dict[str, Tensor] | None = None
        # The encoded bank (N latents, and the walk's settings). A pickled copy (a DataLoader
        # worker's) carries it, not the walk's source images (see __getstate__).
        self.bank: LatentBank | None = None
        walk = self.settings.neighbours
        if walk is not None:
            self.bank = build_latent_bank(walk, model, owner, keep_images=self.detail > 0)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs: Any) -> GenerativeAugment:
        """Deprecated: ``GenerativeAugment(path, ...)`` (every transform takes a path)."""
        warn_from_checkpoint(cls)
        return cls(os.fspath(path), **kwargs)

    @property
    def generator(self) -> Generator:
        """The generator (in eval mode)."""
        return self.holder.model

    @property
    def p(self) -> float:
        """Probability that each image is transformed; settable (a schedule of p), checked."""
        return self.settings.p

    @p.setter
    def p(self, value: float) -> None:
        self.settings = self.settings.replace(p=value)

    def extra_repr(self) -> str:
        extra = f"mode={self.mode!r}, p={self.p}, strength={self.strength}, seed={self.seed}"
        if self.detail:
            extra += f", detail={self.detail}"
        if self.bank is not None:
            extra += f", neighbours={self.bank!r}"
        if self.precision != "auto" or self.settings.compile:
            extra += f", precision={self.precision!r}, compile={self.settings.compile}"
        return extra

    def apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``nn.Module.apply(fn)``: ``fn`` on every submodule (not the generator) and on self.

        Deprecated use: ``apply(batch, labels, params)`` transformed a batch; it still does,
        with a DeprecationWarning, until the next release: call :meth:`transform_batch`.
        """
        if isinstance(fn, Tensor):
            warnings.warn(
                f"{type(self).__name__}.apply(batch, labels, params) is now "
                "transform_batch(batch, labels, params); apply(fn) is nn.Module.apply again.",
                DeprecationWarning,
                stacklevel=2,
            )
            return self.transform_batch(fn, *args, **kwargs)
        return super().apply(fn)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        # A torch.Generator does not survive torch's DataLoader pickler (its state tensor is
        # sent as shared memory and fails to rebuild under spawn): carry the state as bytes.
        state = super().__getstate__()
        rng = state.pop("_rng")
        state["_rng_state"] = bytes(rng.get_state().numpy()) if rng.device.type == "cpu" else None
        state["_worker_rng"] = state["_worker_rng_key"] = None
        state["last_params"] = None
        state["_compiled"] = None  # compiled code does not pickle; recompiled on first use
        walk = self.settings.neighbours
        if walk is not None:  # the bank is encoded: its source images stay here
            state["settings"] = self.settings.replace(neighbours=walk.described())
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
        per_image: bool = False,
    ) -> dict[str, Tensor]:
        """Draw the per-image parameters for ``batch``: a dict of tensors with first dim B.

        ``apply`` (B,) bool: transform this image; ``noise`` (B, latent_dim); for
        ``interpolate`` also ``mix`` (B,) uniform and ``partner`` (B,) index of a same-class image;
        for ``neighbour`` ``mix`` (B,) and ``choice`` (B, hops), the neighbour each hop takes.
        ``generator`` replaces the transform's own random generator for this draw. ``chain``
        (mode ``vary``): draw a chain of that many variations, noise (B, chain, latent_dim);
        ``aug(batch, labels, params=params)`` then applies the generator ``chain`` times.
        ``per_image=True`` draws image by image, as calls on one image at a time would: each
        image gets the draw a per-sample transform of the same seed gives it in turn (in mode
        ``interpolate`` an image alone has no partner, so each is its own: it is perturbed).
        :meth:`transform_batch` is the second step.
        """
        chain = check_count(chain, "chain")
        per_image = check_flag(per_image, "per_image")
        prepared = self._prepare(batch, labels, convert=False)
        return self._make_params(prepared, generator, chain, per_image)

    def _make_params(
        self,
        prepared: Prepared,
        generator: torch.Generator | None = None,
        chain: int = 1,
        per_image: bool = False,
    ) -> dict[str, Tensor]:
        rng = generator if generator is not None else self._random_generator(prepared.device)
        return draw_params(self.mode, self.p, prepared, self.bank, rng, chain, per_image)

    # ------------------------------------------------------------------ applying
    def forward(
        self,
        batch: Tensor,
        labels: Tensor | None = None,
        *,
        params: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Transform ``batch`` (B, C, H, W); pass ``params`` (e.g. ``last_params``) to replay.

        The parameters used are kept in ``last_params``.
        """
        prepared = self._prepare(batch, labels)
        if params is None:
            params = self._make_params(prepared)
        self.last_params = params
        return self._run(prepared, params)

    def transform_batch(
        self, batch: Tensor, labels: Tensor | None, params: dict[str, Tensor]
    ) -> Tensor:
        """Transform ``batch`` with the given parameters (from :meth:`make_params`), keeping no
        ``last_params``: the second step, for hosts that draw and apply apart (Kornia)."""
        return self._run(self._prepare(batch, labels), params)

    def _run(self, prepared: Prepared, params: dict[str, Tensor]) -> Tensor:
        batch, model, device = prepared.batch, prepared.model, prepared.device
        n = batch.shape[0]
        check_params(params, self.mode, n, model.latent_dim)
        applied = params["apply"].to(device)
        # On the CPU only the images to transform are computed (all of them: no selection);
        # on an accelerator the whole batch is computed and selected with torch.where, so
        # nothing waits for the host.
        rows, every = None, device.type != "cpu"
        if not every:
            rows = applied.nonzero().squeeze(1)
            if rows.numel() == 0:
                return batch.clone()
            if rows.numel() == n:
                rows, every = None, True
        images = n if rows is None else rows.numel()
        with torch.inference_mode(), self._autocast(device, images):
            prepared = with_inferred_classes(prepared, rows)  # only the rows to transform
            decoded = generate(  # images (n, C_gen, S, S), and what ``detail`` needs
                self._kernel(),
                self.mode,
                prepared,
                params,
                rows,
                self.strength,
                self.bank,
                self.detail > 0,
            )
            generated = to_batch_layout(decoded.images, batch)
            if self.detail > 0:
                generated = add_detail(generated, decoded, batch, rows, self.detail)
            if batch.dtype == torch.uint8:
                generated = to_uint8_images(generated)
            else:
                generated = generated.to(batch.dtype)
        generated = generated.to(batch.device)
        if every and device.type == "cpu":  # every image transformed: nothing of it to keep
            return torch.empty_like(batch).copy_(generated)  # in the batch's memory layout
        if rows is None:
            keep = applied.to(batch.device).view(-1, 1, 1, 1)
            return torch.where(keep, generated, batch)
        out = batch.clone()
        out[rows.to(batch.device)] = generated
        return out

    def _autocast(self, device: torch.device, images: int) -> contextlib.AbstractContextManager:
        if self.precision == "bfloat16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        if self.precision == "auto" and device.type != "cpu":
            return autocast_for(device)()
        return single_image_cpu_kernels(device, images, float32=True)  # float32 (on the CPU)

    def _kernel(self) -> Callable[..., Any]:
        kernel = getattr(F, self.mode)
        if not self.settings.compile:
            return kernel
        if self._compiled is None:
            # Freezing treats the generator weights as constants: batch norm folds into the
            # convolutions. The weights of an augmenting generator do not change.
            self._compiled = torch.compile(kernel, options={"freezing": True})
        return self._compiled

    def _prepare(self, batch: Any, labels: Any, convert: bool = True) -> Prepared:
        guided = self.bank is not None and self.bank.labels is not None
        model = self.holder.current()
        return prepare_batch(batch, labels, model, self.owner, self.mode, guided, convert)


def warn_from_checkpoint(cls: type) -> None:
    """The DeprecationWarning of ``from_checkpoint`` (kept one release on the classes that had it)."""
    warnings.warn(
        f"{cls.__name__}.from_checkpoint(path, ...) is deprecated; pass the path as the "
        f"generator: {cls.__name__}(path, ...).",
        DeprecationWarning,
        stacklevel=3,
    )
