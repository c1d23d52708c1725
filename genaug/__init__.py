"""genaug: generative data augmentation (GAN, VAE, C-GAN) for PyTorch vision pipelines.

Train a generator on your images, augment with it in the pipeline you already have, and measure
whether it helps.
"""

from __future__ import annotations

from genaug.errors import GenaugError, GenaugNotice
from genaug.models import (
    Generator,
    create_generator,
    list_generators,
    load_generator,
    save_generator,
)
from genaug.transforms import GenerativeAugment, GenerativeMix
from genaug.transforms.synthetic import MixedDataset, SyntheticDataset
from genaug.version import __version__

__all__ = [
    "AlbumentationsGenerativeAugment",
    "GenaugError",
    "GenaugNotice",
    "GenerativeAugment",
    "GenerativeMix",
    "Generator",
    "MixedDataset",
    "SyntheticDataset",
    "TorchvisionGenerativeAugment",
    "__version__",
    "create_generator",
    "list_generators",
    "load_generator",
    "save_generator",
]

# The host-API adapters load on first use: Albumentations is an optional extra, so
# `import genaug` works without it, and neither host library is imported before it is needed.
_ADAPTERS = {
    "TorchvisionGenerativeAugment": "genaug.transforms.torchvision",
    "AlbumentationsGenerativeAugment": "genaug.transforms.albumentations",
}


def __getattr__(name: str):
    if name in _ADAPTERS:
        import importlib

        return getattr(importlib.import_module(_ADAPTERS[name]), name)
    raise AttributeError(f"module 'genaug' has no attribute {name!r}")
