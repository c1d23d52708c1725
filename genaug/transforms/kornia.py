"""A Kornia adapter: ``KorniaGenerativeAugment``, a native ``kornia.augmentation`` 2D augmentation.

Install with ``pip install genaug[kornia]``. It works on batches on the training device, beside
Kornia's own augmentations and inside ``AugmentationSequential``::

    aug = KorniaGenerativeAugment("runs/digits-vae", p=0.5).to(device)
    pipeline = K.AugmentationSequential(K.RandomAffine(15), aug, K.ColorJitter(0.2, 0.2))
    images = pipeline(images)  # (B, C, H, W) float in [0, 1], on the device

    with aug.use_labels(labels):  # a conditional generator in a pipeline: the batch's classes
        images = pipeline(images)
    images = aug(images, labels)  # called alone, the labels go with the call
    again = aug(images, params=aug.last_params)  # replays the last call exactly

It follows Kornia's conventions, not genaug's other adapters', where they differ:

- Input: float16, bfloat16, float32 or float64 images in [0, 1], ``(B, C, H, W)``, ``(C, H, W)``
  or ``(H, W)`` (promoted to a batch; ``keepdim=True`` gives the input's shape back). An
  integer (uint8) tensor raises Kornia's ``TypeError``, a 5-D one Kornia's ``ValueError``. The
  output keeps the input's dtype and device.
- Randomness comes from torch's global generators, as for every Kornia augmentation (Kornia has
  no per-instance generator): ``torch.manual_seed`` repeats a run.
- ``generate_parameters`` draws everything random before any pixel is read, into tensors with
  one row per image: ``noise`` (B, latent_dim), for ``interpolate`` also ``mix`` and
  ``partner``, for ``neighbour`` ``mix`` and ``choice``, and ``labels`` when labels were given
  (mode ``vary`` draws only the noise: an image-conditioned generator needs no labels).
  ``apply_transform`` uses them; ``aug(x, params=aug.last_params)`` replays a call exactly,
  labels included. Kornia's ``batch_prob`` is the per-image ``p`` gate; on the CPU only the images it
  selects are generated.
- ``same_on_batch=False`` (the default): every image has its own draw. ``same_on_batch=True``
  shares one draw of the noise (and of a walk's share and hops) and one ``p`` decision across
  the batch: every image moves by the same offset from its own latent (in mode ``resample``,
  images of one class then become the same new image).

Labels: Kornia carries none to an augmentation, so a conditional generator gets them through
``aug(x, labels)`` or ``with aug.use_labels(...)`` around the pipeline call (class indices
``(B,)`` or soft labels ``(B, num_classes)``); given none, it conditions on the class it
infers for each image (one that cannot infer says so). An unconditional generator needs none.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genaug.errors import GenaugError
from genaug.models.base import Generator
from genaug.transforms._inputs import warn_if_labels_required
from genaug.transforms.checks import check_flag, check_fraction
from genaug.transforms.core import GenerativeAugment
from genaug.transforms.settings import AugmentSettings, HostP, SettingsAttributes
from genaug.transforms.walk import NeighbourWalk

try:
    from kornia.augmentation import IntensityAugmentationBase2D
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "genaug.transforms.kornia needs Kornia; install it with `pip install genaug[kornia]`."
    ) from exc

__all__ = ["KorniaGenerativeAugment", "RandomGenerativeAugment"]

# Keys of the generative parameters GenerativeAugment.make_params draws (besides its own gate).
_DRAWN = ("noise", "mix", "partner", "choice")
_SHARED = ("noise", "mix", "choice")  # what same_on_batch=True shares (partners stay per image)
# Kornia's record of the last call besides _params (set by its _commit_state on a call).
_PER_CALL = (
    "_lazy_matrix_args",
    "_transform_matrix",
    "_transform_matrix_params",
    "_transform_matrix_params_snapshot",
)


def _global_generator(device: torch.device) -> torch.Generator:
    """torch's default generator for ``device`` (where Kornia samples), the CPU's otherwise."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return torch.default_generator


def _labels_tensor(labels: Any) -> Tensor:
    """Checked labels as a tensor with one row per image, to store in the parameters."""
    tensor = torch.as_tensor(np.asarray(labels) if isinstance(labels, list) else labels)
    return tensor.reshape(1) if tensor.ndim == 0 else tensor


class KorniaGenerativeAugment(SettingsAttributes, IntensityAugmentationBase2D):
    """Generative augmentation as a Kornia 2D intensity augmentation (see the module docstring).

    Args:
        generator: a Generator, a checkpoint path, or a genaug transform whose generator to
            share (pickled copies carry the path when there is one, else plain bytes).
        mode, p, strength, detail, neighbours, precision, compile: the settings every
            transform takes (see :class:`~genaug.transforms.settings.AugmentSettings`);
            ``p`` is Kornia's per-image gate.
        same_on_batch: share one draw across the batch (see the module docstring).
        p_batch: probability that a whole call is applied (Kornia's batch gate).
        keepdim: give a ``(C, H, W)`` input back as ``(C, H, W)`` (Kornia's ``keepdim``).

    The generator moves with ``.to(device)``; images go in and come out on their own device.
    The transform is not differentiable: the generator runs in inference mode.
    """

    p = HostP()  # the host's own p, checked whenever set

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
        same_on_batch: bool = False,
        p_batch: float = 1.0,
        keepdim: bool = False,
    ) -> None:
        settings = AugmentSettings(mode, p, strength, detail, neighbours, precision, compile)
        super().__init__(
            p=settings.p,
            p_batch=check_fraction(p_batch, "p_batch"),
            same_on_batch=check_flag(same_on_batch, "same_on_batch"),
            keepdim=check_flag(keepdim, "keepdim"),
        )
        # The core's own gate is off (Kornia's p decides) and its own random stream unused
        # (Kornia draws from torch's global generators).
        owner = type(self).__name__
        self.augment = GenerativeAugment.from_settings(
            generator, settings.replace(p=1.0), seed=0, owner=owner
        )
        if self.generator.conditional:  # Kornia passes no labels: say now if they must come
            warn_if_labels_required(self.generator.label_inference_problem(), owner)
        self._labels: Any = None  # labels of the call in progress (forward or use_labels)

    @property
    def settings(self) -> AugmentSettings:  # type: ignore[override]
        """The transform's settings, resolved for its generator; ``p`` is Kornia's gate."""
        return self.augment.settings.replace(p=self.p)

    @property
    def generator(self) -> Generator:
        """The generator (in eval mode)."""
        return self.augment.generator

    @property
    def last_params(self) -> dict[str, Tensor]:
        """The parameters of the last call (Kornia's ``_params``): ``params=`` replays it."""
        return self._params

    def __repr__(self) -> str:
        settings = f"mode={self.mode!r}, strength={self.strength}"
        if self.detail:
            settings += f", detail={self.detail}"
        return (
            f"{type(self).__name__}({settings}, p={self.p}, p_batch={self.p_batch}, "
            f"same_on_batch={self.same_on_batch})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # What belongs to the last call (its tensors would travel as shared memory), not to the
        # transform: its labels and Kornia's per-call state, as a fresh transform has it.
        state["_labels"] = None
        state["_params"] = {}
        for key in _PER_CALL:
            state.pop(key, None)
        return state

    # ------------------------------------------------------------------ labels
    @contextlib.contextmanager
    def use_labels(self, labels: Any) -> Iterator[KorniaGenerativeAugment]:
        """Give the calls inside the block these labels, one per image of the batch.

        For a pipeline: ``with aug.use_labels(labels): images = pipeline(images)``. The labels
        are drawn into the parameters (``last_params["labels"]``), so a replay needs none.
        """
        previous, self._labels = self._labels, labels
        try:
            yield self
        finally:
            self._labels = previous

    def forward(
        self,
        input: Tensor,
        labels: Any = None,
        *,
        params: dict[str, Tensor] | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """Augment ``input`` (with the images' class ``labels``, if any); ``params`` (e.g.
        ``aug.last_params``) replays a call."""
        if labels is None:
            return super().forward(input, params=params, **kwargs)
        with self.use_labels(labels):
            return super().forward(input, params=params, **kwargs)

    # ------------------------------------------------------------------ Kornia's two steps
    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        """Draw the per-image parameters for a batch of this shape (no pixel is read)."""
        if batch_shape[0] == 0:  # Kornia: an empty batch gives an empty output
            return {}
        # The core checks the shape and the labels and draws; it reads no pixel, so a
        # zero-stride stand-in of the batch's shape is enough. Its own gate is dropped.
        probe = torch.zeros((), dtype=torch.float32).expand(*batch_shape)
        params = self.augment.make_params(
            probe, self._labels, generator=_global_generator(self.device)
        )
        del params["apply"]
        if self.same_on_batch:
            for key in _SHARED:
                if key in params:
                    params[key] = params[key][:1].expand_as(params[key])
        if self._labels is not None:
            params["labels"] = _labels_tensor(self._labels)
        return params

    def apply_transform(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
    ) -> Tensor:
        """Generate the images the gate selects; the others come back as they are."""
        n = input.shape[0]
        if n == 0:
            return input.clone()
        drawn = {key: params[key] for key in _DRAWN if key in params}
        if self.p == 1.0 and self.p_batch == 1.0:  # Kornia ignores batch_prob then
            gate = torch.ones(n, dtype=torch.bool)
        else:
            gate = torch.atleast_1d(params["batch_prob"] > 0.5)
            if gate.shape[0] not in (1, n):
                raise GenaugError(
                    f"params were drawn for {gate.shape[0]} images but the batch holds {n}; "
                    "replay a call only on a batch of its shape."
                )
            gate = gate.expand(n)
        drawn["apply"] = gate
        labels = params.get("labels", self._labels)
        return self.augment.transform_batch(input, labels, drawn)


RandomGenerativeAugment = KorniaGenerativeAugment  # the name in Kornia's style (RandomAffine, ...)
