"""genaug: generative data augmentation (GAN, VAE, C-GAN) for PyTorch vision pipelines.

Train a generator on your images, augment with it in the pipeline you already have, and measure
whether it helps. Everything the README uses is here: ``genaug.TorchvisionGenerativeAugment``,
``genaug.GenerativeMix``, ``genaug.TrainConfig``... The host adapters and the training loop
load on first use: ``import genaug`` imports neither a host library nor matplotlib, and
``from genaug import *`` works without the optional extras (it then leaves out their adapters).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from genaug.errors import GenaugError, GenaugNotice
from genaug.models import (
    Generator,
    create_generator,
    list_generators,
    load_generator,
    save_generator,
)
from genaug.transforms import (
    AugmentSettings,
    GenerativeAugment,
    GenerativeCollate,
    GenerativeMix,
    NeighbourWalk,
)
from genaug.transforms.synthetic import MixedDataset, SyntheticDataset
from genaug.version import __version__

_TORCHVISION = "genaug.transforms.torchvision"
# Loaded on first use: name -> (module, its name there, the optional library it needs or None).
_LAZY: dict[str, tuple[str, str, str | None]] = {
    "TorchvisionGenerativeAugment": (_TORCHVISION, "TorchvisionGenerativeAugment", None),
    "JointTransformDataset": (_TORCHVISION, "JointTransformDataset", None),
    "AlbumentationsGenerativeAugment": (
        "genaug.transforms.albumentations",
        "AlbumentationsGenerativeAugment",
        "albumentations",
    ),
    "KorniaGenerativeAugment": ("genaug.transforms.kornia", "KorniaGenerativeAugment", "kornia"),
    "TrainConfig": ("genaug.train", "TrainConfig", None),
    # The training loop; ``genaug.train`` stays the subpackage (one name cannot be both).
    "train_generator": ("genaug.train", "train", None),
    # Few-shot heads on a frozen extractor (prototypes, probes, hallucinated features).
    "fit_few_shot": ("genaug.fewshot", "fit_few_shot", None),
    "FewShotClassifier": ("genaug.fewshot", "FewShotClassifier", None),
}


def _installed(library: str | None) -> bool:
    """Whether an optional library can be imported (looked up, not imported)."""
    if library is None:
        return True
    try:
        return importlib.util.find_spec(library) is not None
    except (ImportError, ValueError):  # blocked, or a broken install
        return False


__all__ = [
    "AugmentSettings",
    "GenaugError",
    "GenaugNotice",
    "GenerativeAugment",
    "GenerativeCollate",
    "GenerativeMix",
    "Generator",
    "MixedDataset",
    "NeighbourWalk",
    "SyntheticDataset",
    "__version__",
    "create_generator",
    "list_generators",
    "load_generator",
    "save_generator",
    # `from genaug import *` takes every name here, so an adapter whose extra is missing is left
    # out (it still raises its install hint when asked for by name).
    *sorted(name for name, (_, _, library) in _LAZY.items() if _installed(library)),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute, _ = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module 'genaug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
