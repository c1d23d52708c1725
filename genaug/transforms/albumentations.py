"""An Albumentations adapter: ``AlbumentationsGenerativeAugment`` (needs the optional extra).

Install with ``pip install genaug[albumentations]``. The transform works on HWC (or HW) numpy
images, uint8 or float32 in [0, 1], reads the class label from a named key of the call::

    pipeline = A.Compose([AlbumentationsGenerativeAugment("runs/digits-vae", p=0.5)], seed=0)
    out = pipeline(image=image, label=3)["image"]

Its randomness comes from the generator Albumentations gives every transform (seeded by
``A.Compose(..., seed=...)``); in a DataLoader worker the worker's seed is mixed in, so workers
differ. It serialises with ``A.to_dict`` / ``A.save`` (JSON or YAML) by storing the checkpoint
*path*, never weights; import this module before ``A.from_dict`` / ``A.load`` so Albumentations
knows the class.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from genaug.errors import GenaugError
from genaug.models.base import Generator, family_class
from genaug.models.checkpoint import read_generator_config
from genaug.models.holder import checkpoint_of, generator_argument
from genaug.transforms._inputs import config_label_problem, warn_if_labels_required
from genaug.transforms.core import GenerativeAugment, mix_seeds
from genaug.transforms.settings import AugmentSettings, HostP, SettingsAttributes
from genaug.transforms.walk import NeighbourWalk

try:
    import albumentations as A
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "genaug.transforms.albumentations needs Albumentations; install it with "
        "`pip install genaug[albumentations]`."
    ) from exc

__all__ = ["AlbumentationsGenerativeAugment"]


def _read_generator(generator: Any) -> tuple[Generator | str, Any]:
    """What the adapter stores (a path or a Generator), and what the settings are resolved
    against: the Generator itself, or its traits read from the checkpoint's config (the
    weights load on first use, once per process)."""
    source = generator_argument(generator, _OWNER)
    if isinstance(source, Generator):
        return source, source
    config = read_generator_config(source)  # fails early and clearly
    family = family_class(config["family"])
    traits = SimpleNamespace(
        family=config["family"],
        has_encoder=family.has_encoder,
        conditional=int(config["model_args"].get("num_classes", 0)) > 0,
        image_conditioned=family.image_conditioned,
        varies_images=family.varies_images,
        feature_space=family.feature_space,
        config=config,
    )
    return source, traits


def _label_problem(traits: Any, mode: str) -> str | None:
    """Why the generator cannot infer an unlabelled image's class (None: it can, or needs none)."""
    if isinstance(traits, Generator):
        return traits.label_inference_problem() if traits.conditional else None
    return config_label_problem(traits.config, traits.has_encoder, mode)


_OWNER = "AlbumentationsGenerativeAugment"


class AlbumentationsGenerativeAugment(SettingsAttributes, A.ImageOnlyTransform):
    """Generative augmentation as an Albumentations ``ImageOnlyTransform``.

    Args:
        generator: a checkpoint path, a Generator, or a genaug transform whose generator to
            share. It serialises as a path: the one given, or the checkpoint a generator was
            loaded from (while it is unchanged); a generator that lives only in memory works
            but does not serialise.
        mode, p, strength, detail, neighbours, precision, compile: the settings every
            transform takes (see :class:`~genaug.transforms.settings.AugmentSettings`).
            ``mode`` is stored resolved, so a saved pipeline does the same thing when loaded;
            ``p`` is Albumentations' own, drawn per call. ``neighbours``: a
            :class:`~genaug.transforms.walk.NeighbourWalk` whose bank (and guide) are dataset
            specs (``imagefolder:PATH``: serialisable), or just the bank's spec; encoded once
            per process on first use. A guided walk needs ``label_key``. Saved as data: the
            specs and settings, never tensors.
        label_key: the keyword the class label comes in (``pipeline(image=img, label=3)``);
            what a conditional generator conditions on; a call without it conditions on the
            class the generator infers (one that cannot infer says so). With ``images=`` give a
            sequence of labels.

    ``last_params`` holds the parameters of the last call (empty when it was not applied);
    ``aug.apply_with_params(aug.last_params, image=image)`` replays it.
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
        neighbours: NeighbourWalk | str | dict[str, Any] | None = None,
        precision: str = "auto",
        compile: bool = False,
        label_key: str = "label",
    ) -> None:
        settings = AugmentSettings(mode, p, strength, detail, neighbours, precision, compile)
        super().__init__(p=settings.p)
        if settings.neighbours is not None:
            settings.neighbours.to_dict()  # refuses a bank or guide that is no spec: it must save
        if not isinstance(label_key, str) or not label_key:
            raise GenaugError(f"label_key must be a non-empty string, got {label_key!r}.")
        self.label_key = label_key
        self.generator, traits = _read_generator(generator)
        # The core's settings: Albumentations' p decides per call, so the core applies always.
        self._core_settings = settings.resolved(traits).replace(p=1.0)
        warn_if_labels_required(_label_problem(traits, self.mode), _OWNER)
        self._augment: GenerativeAugment | None = None

    @property
    def settings(self) -> AugmentSettings:  # type: ignore[override]
        """The transform's settings, resolved for its generator; ``p`` is Albumentations'."""
        return self._core_settings.replace(p=self.p)

    @property
    def compile(self) -> bool:
        return self._core_settings.compile

    @property
    def last_params(self) -> dict[str, Any]:
        """The parameters of the last call (Albumentations' ``params``; empty: not applied)."""
        return self.get_applied_params()

    # ------------------------------------------------------------------ the generator, lazily
    def _core(self) -> GenerativeAugment:
        """The batched transform, built on first use (once per process)."""
        if self._augment is None:
            # Its own stream is unused (Albumentations' generator draws), so fixed: building
            # the core draws nothing from torch's global RNG.
            self._augment = GenerativeAugment.from_settings(
                self.generator, self._core_settings, seed=0, owner=type(self).__name__
            )
        return self._augment

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["params"] = {}  # the last call's parameters: not part of the transform
        if isinstance(self.generator, str):
            state["_augment"] = None  # carry the path; each process loads its own CPU copy
        else:  # its holder carries the checkpoint path when there is one, else the weights
            state["_augment"] = self._core()
            state["generator"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.generator is None:
            self.generator = self._augment.generator

    # ------------------------------------------------------------------ serialisation
    def to_dict_private(self) -> dict[str, Any]:
        state = super().to_dict_private()
        if not isinstance(self.generator, str) and state["generator"] == _in_memory(self.generator):
            raise GenaugError(
                "AlbumentationsGenerativeAugment holds a generator that lives only in memory "
                "(not loaded from a checkpoint, or changed since), which cannot be serialised; "
                "save it with save_generator(model, path) and pass the path."
            )
        return state

    def get_transform_init_args(self) -> dict[str, Any]:
        args = super().get_transform_init_args()
        if not isinstance(self.generator, str):  # saved by its checkpoint path when it has one
            args["generator"] = checkpoint_of(self.generator) or _in_memory(self.generator)
        if self.neighbours is not None:  # the walk as data: its specs and settings
            args["neighbours"] = self.neighbours.to_dict()
        return args

    # ------------------------------------------------------------------ applying
    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        key = "image" if "image" in data else "images"
        batch = _to_batch(type(self).__name__, data[key], key)
        labels = data.get(self.label_key)
        seed = int(self.random_generator.integers(0, 2**62))
        info = get_worker_info()
        if info is not None:  # workers differ even when Compose gave them one seed
            seed = mix_seeds(seed, info.seed)
        rng = torch.Generator().manual_seed(seed)
        core = self._core()
        return {"generative": core.make_params(batch, labels, generator=rng), "labels": labels}

    def apply(
        self,
        img: np.ndarray,
        generative: dict[str, Tensor] | None = None,
        labels: Any = None,
        **params: Any,
    ) -> np.ndarray:
        batch = _to_batch(type(self).__name__, img, "image")
        return _from_batch(self._run(batch, labels, generative), img)

    def apply_to_images(
        self,
        images: np.ndarray,
        generative: dict[str, Tensor] | None = None,
        labels: Any = None,
        **params: Any,
    ) -> np.ndarray:
        batch = _to_batch(type(self).__name__, images, "images")  # one batched call for all images
        return _from_batch(self._run(batch, labels, generative), images)

    def _run(self, batch: Tensor, labels: Any, generative: dict[str, Tensor] | None) -> Tensor:
        core = self._core()
        if generative is None:  # called outside Albumentations' __call__
            generative = core.make_params(batch, labels)
        return core.transform_batch(batch, labels, generative)


def _in_memory(generator: Generator) -> str:
    """How a generator without a checkpoint shows in ``repr`` (it cannot be saved)."""
    return f"<in-memory {generator.family} generator>"


def _to_batch(name: str, image: Any, key: str) -> Tensor:
    """HWC / HW (or NHWC / NHW for ``images``) numpy -> (B, C, H, W) tensor, no copy."""
    if not isinstance(image, np.ndarray):
        raise GenaugError(
            f"{name} expects {key} as a numpy array, got {type(image).__name__}; "
            "pass np.asarray(image)."
        )
    if image.dtype not in (np.uint8, np.float32):
        raise GenaugError(
            f"{name} expects uint8 or float32 {key}, got {image.dtype}; convert it with "
            "astype(np.float32) (values in [0, 1]) or astype(np.uint8)."
        )
    batched = key == "images"
    expected = "(N, H, W, C) or (N, H, W)" if batched else "(H, W, C) or (H, W)"
    if image.ndim == (3 if batched else 2):
        image = image[..., None]
    if image.ndim != (4 if batched else 3):
        raise GenaugError(f"{name} expects {key} shaped {expected}, got shape {image.shape}.")
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if not batched:
        tensor = tensor.unsqueeze(0)
    return tensor.permute(0, 3, 1, 2)  # (B, C, H, W), a view


def _from_batch(batch: Tensor, like: np.ndarray) -> np.ndarray:
    """(B, C, H, W) tensor -> numpy shaped like the input (HWC, HW, NHWC or NHW)."""
    out = batch.permute(0, 2, 3, 1).contiguous().numpy()  # (B, H, W, C)
    return out.reshape(like.shape)
