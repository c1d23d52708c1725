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
from genaug.transforms._inputs import config_label_problem, warn_if_labels_required
from genaug.transforms.checks import check_detail, check_fraction, resolve_mode
from genaug.transforms.core import GenerativeAugment, mix_seeds
from genaug.transforms.walk import NeighbourWalk, as_walk, walk_for_mode

try:
    import albumentations as A
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "genaug.transforms.albumentations needs Albumentations; install it with "
        "`pip install genaug[albumentations]`."
    ) from exc

__all__ = ["AlbumentationsGenerativeAugment"]


def _read_generator(generator: Any) -> tuple[Generator | str, bool, bool, str]:
    """What the adapter stores (a path or a Generator), and whether the generator has an
    encoder, is conditional, and its family: read from the checkpoint's config, no weights."""
    if isinstance(generator, Generator):
        return generator, generator.has_encoder, generator.conditional, generator.family
    if isinstance(generator, (str, os.PathLike)):
        path = os.fspath(generator)
        config = read_generator_config(path)  # fails early and clearly; no weights
        conditional = int(config["model_args"].get("num_classes", 0)) > 0
        has_encoder = family_class(config["family"]).has_encoder
        return path, has_encoder, conditional, config["family"]
    raise GenaugError(
        "AlbumentationsGenerativeAugment needs a checkpoint path (or a Generator), got "
        f"{type(generator).__name__}; pass the folder that `genaug train` wrote."
    )


def _label_problem(generator: Generator | str, has_encoder: bool, mode: str) -> str | None:
    """Why the generator cannot infer an unlabelled image's class (None: it can, or needs none)."""
    if isinstance(generator, Generator):
        return generator.label_inference_problem() if generator.conditional else None
    return config_label_problem(read_generator_config(generator), has_encoder, mode)


_OWNER = "AlbumentationsGenerativeAugment"


class AlbumentationsGenerativeAugment(A.ImageOnlyTransform):
    """Generative augmentation as an Albumentations ``ImageOnlyTransform``.

    Args:
        generator: a checkpoint path (serialisable), or a Generator (not serialisable).
        mode: ``auto``, ``perturb``, ``resample``, ``interpolate``, ``neighbour`` or ``vary`` (an
            image-conditioned generator such as a DAGAN); stored resolved, so a saved pipeline
            does the same thing when loaded.
        strength: magnitude in [0, 1] (see :mod:`genaug.transforms.functional`).
        label_key: the keyword the class label comes in (``pipeline(image=img, label=3)``);
            what a conditional generator conditions on; a call without it conditions on the
            class the generator infers (one that cannot infer says so). With ``images=`` give a
            sequence of labels.
        p: probability of applying the transform to a call (Albumentations' own ``p``).
        neighbours: for mode ``neighbour``, a :class:`~genaug.transforms.walk.NeighbourWalk`
            whose bank (and guide) are dataset specs (``imagefolder:PATH``: serialisable), or
            just the bank's spec; encoded once per process on first use. A guided walk needs
            ``label_key``. Saved as data: the specs and settings, never tensors.
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
        neighbours: NeighbourWalk | str | dict[str, Any] | None = None,
        detail: float = 0.0,
    ) -> None:
        super().__init__(p=check_fraction(p, "p"))
        self._augment: GenerativeAugment | None = None
        self.generator, *kind = _read_generator(generator)
        self.mode = resolve_mode(mode, *kind)
        warn_if_labels_required(_label_problem(self.generator, kind[0], self.mode), _OWNER)
        self.strength = check_fraction(strength, "strength")
        if not isinstance(label_key, str) or not label_key:
            raise GenaugError(f"label_key must be a non-empty string, got {label_key!r}.")
        self.label_key = label_key
        walk = as_walk(neighbours)
        if walk is not None:
            walk.to_dict()  # refuses a bank or guide that is no dataset spec: it must serialise
        self.neighbours = walk_for_mode(walk, self.mode)
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
        return core.apply(batch, labels, generative)


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
