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
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from genaug.errors import GenaugError
from genaug.models.base import Generator, family_class
from genaug.models.checkpoint import read_generator_config
from genaug.transforms.checks import (
    WALKS,
    check_detail,
    check_flag,
    check_fraction,
    check_option,
    resolve_mode,
)
from genaug.transforms.core import GenerativeAugment, mix_seeds
from genaug.transforms.neighbours import SPACES

try:
    import albumentations as A
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "genaug.transforms.albumentations needs Albumentations; install it with "
        "`pip install genaug[albumentations]`."
    ) from exc

__all__ = ["AlbumentationsGenerativeAugment"]


class AlbumentationsGenerativeAugment(A.ImageOnlyTransform):
    """Generative augmentation as an Albumentations ``ImageOnlyTransform``.

    Args:
        generator: a checkpoint path (serialisable), or a Generator (not serialisable).
        mode: ``auto``, ``perturb``, ``resample``, ``interpolate`` or ``neighbour``; stored resolved, so a
            saved pipeline does the same thing when loaded.
        strength: magnitude in [0, 1] (see :mod:`genaug.transforms.functional`).
        label_key: the keyword the class label comes in (``pipeline(image=img, label=3)``);
            needed for a conditional generator. With ``images=`` give a sequence of labels.
        p: probability of applying the transform to a call (Albumentations' own ``p``).
        neighbours, neighbours_k, neighbours_hops: for mode ``neighbour``, a dataset spec of the images to walk
            toward (``imagefolder:PATH``: serialisable), encoded once per process on first use.
        neighbours_guide: a dataset spec of labelled images that keeps the walk within the
            image's class (as for ``GenerativeAugment``; needs ``label_key``).
        neighbours_walk: ``partway`` or ``whole`` (as for ``GenerativeAugment``).
        neighbours_space: ``latent`` or ``pixels`` (as for ``GenerativeAugment``).
        neighbours_jitter: posterior scales of noise where the walk arrives, in [0, 1] (as for
            ``GenerativeAugment``).
        neighbours_backtrack: whether a hop may step straight back (as for
            ``GenerativeAugment``).
        detail: how much of the image's own detail to keep, in [0, 1] (encoder modes; see
            :class:`~genaug.transforms.core.GenerativeAugment`).
    """

    def __init__(
        self,
        generator: Generator | str | os.PathLike,
        mode: str = "auto",
        strength: float = 1.0,
        label_key: str = "label",
        p: float = 0.5,
        neighbours: str | None = None,
        neighbours_k: int = 5,
        neighbours_hops: int = 1,
        neighbours_guide: str | None = None,
        neighbours_walk: str = "partway",
        neighbours_space: str = "latent",
        neighbours_jitter: float = 0.0,
        neighbours_backtrack: bool = True,
        detail: float = 0.0,
    ) -> None:
        super().__init__(p=check_fraction(p, "p"))
        self._augment: GenerativeAugment | None = None
        if isinstance(generator, Generator):
            self.generator: Generator | str = generator
            has_encoder, conditional, family = (
                generator.has_encoder,
                generator.conditional,
                generator.family,
            )
        elif isinstance(generator, (str, os.PathLike)):
            self.generator = os.fspath(generator)
            config = read_generator_config(self.generator)  # fails early and clearly; no weights
            has_encoder = family_class(config["family"]).has_encoder
            conditional = int(config["model_args"].get("num_classes", 0)) > 0
            family = config["family"]
        else:
            raise GenaugError(
                "AlbumentationsGenerativeAugment needs a checkpoint path (or a Generator), got "
                f"{type(generator).__name__}; pass the folder that `genaug train` wrote."
            )
        self.mode = resolve_mode(mode, has_encoder, conditional, family)
        self.strength = check_fraction(strength, "strength")
        if not isinstance(label_key, str) or not label_key:
            raise GenaugError(f"label_key must be a non-empty string, got {label_key!r}.")
        self.label_key = label_key
        if neighbours is not None and not isinstance(neighbours, str):
            raise GenaugError(
                "AlbumentationsGenerativeAugment takes neighbours as a dataset spec (for example "
                f"'imagefolder:PATH'), so that it serialises; got {type(neighbours).__name__}."
            )
        if self.mode == "neighbour" and neighbours is None:
            raise GenaugError(
                "mode 'neighbour' walks toward other images, so it needs neighbours='SPEC' "
                "(for example 'imagefolder:PATH' of unlabelled images)."
            )
        self.neighbours = neighbours
        self.neighbours_k = neighbours_k
        self.neighbours_hops = neighbours_hops
        if neighbours_guide is not None and not isinstance(neighbours_guide, str):
            raise GenaugError(
                "AlbumentationsGenerativeAugment takes neighbours_guide as a dataset spec (for "
                f"example 'imagefolder:PATH'), so that it serialises; got "
                f"{type(neighbours_guide).__name__}."
            )
        self.neighbours_guide = neighbours_guide
        self.neighbours_walk = check_option(neighbours_walk, "neighbours_walk", WALKS)
        self.neighbours_space = check_option(neighbours_space, "neighbours_space", SPACES)
        self.neighbours_jitter = check_fraction(neighbours_jitter, "neighbours_jitter")
        self.neighbours_backtrack = check_flag(neighbours_backtrack, "neighbours_backtrack")
        self.detail = check_detail(detail, self.mode)

    # ------------------------------------------------------------------ the generator, lazily
    def _core(self) -> GenerativeAugment:
        """The batched transform, built on first use (once per process)."""
        if self._augment is None:
            augment = GenerativeAugment(
                self.generator,
                mode=self.mode,
                p=1.0,
                strength=self.strength,
                neighbours=self.neighbours,
                neighbours_k=self.neighbours_k,
                neighbours_hops=self.neighbours_hops,
                neighbours_guide=self.neighbours_guide,
                neighbours_walk=self.neighbours_walk,
                neighbours_space=self.neighbours_space,
                neighbours_jitter=self.neighbours_jitter,
                neighbours_backtrack=self.neighbours_backtrack,
                detail=self.detail,
            )
            augment.owner = type(self).__name__
            self._augment = augment
        return self._augment

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["params"] = {}  # the last call's parameters: not part of the transform
        if isinstance(self.generator, str):
            state["_augment"] = None  # carry the path; each process loads its own CPU copy
        else:
            state["_augment"] = self._core()  # its holder carries the weights once, on the CPU
            state["generator"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.generator is None:
            self.generator = self._augment.generator

    # ------------------------------------------------------------------ serialisation
    def to_dict_private(self) -> dict[str, Any]:
        if not isinstance(self.generator, str):
            raise GenaugError(
                "AlbumentationsGenerativeAugment was built from an in-memory generator, which "
                "cannot be serialised; save it with save_generator(model, path) and pass the path."
            )
        return super().to_dict_private()

    def get_transform_init_args(self) -> dict[str, Any]:
        args = super().get_transform_init_args()
        if not isinstance(self.generator, str):  # keep repr() working
            args["generator"] = f"<in-memory {self.generator.family} generator>"
        return args

    # ------------------------------------------------------------------ applying
    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        key = "image" if "image" in data else "images"
        batch = self._to_batch(data[key], key)
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
        batch = self._to_batch(img, "image")
        return self._from_batch(self._run(batch, labels, generative), img)

    def apply_to_images(
        self,
        images: np.ndarray,
        generative: dict[str, Tensor] | None = None,
        labels: Any = None,
        **params: Any,
    ) -> np.ndarray:
        batch = self._to_batch(images, "images")  # one batched call for all images
        return self._from_batch(self._run(batch, labels, generative), images)

    def _run(self, batch: Tensor, labels: Any, generative: dict[str, Tensor] | None) -> Tensor:
        core = self._core()
        if generative is None:  # called outside Albumentations' __call__
            generative = core.make_params(batch, labels)
        return core.apply(batch, labels, generative)

    def _to_batch(self, image: Any, key: str) -> Tensor:
        """HWC / HW (or NHWC / NHW for ``images``) numpy -> (B, C, H, W) tensor, no copy."""
        name = type(self).__name__
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

    @staticmethod
    def _from_batch(batch: Tensor, like: np.ndarray) -> np.ndarray:
        out = batch.permute(0, 2, 3, 1).contiguous().numpy()  # (B, H, W, C)
        return out.reshape(like.shape)
