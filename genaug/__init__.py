"""genaug: generative data augmentation (GAN, VAE, C-GAN) for PyTorch vision pipelines.

Train a generator on your images, augment with it in the pipeline you already have, and measure
whether it helps.
"""

from __future__ import annotations

__version__ = "0.1.0"

from genaug.errors import GenaugError  # noqa: E402
from genaug.models import (  # noqa: E402
    Generator,
    create_generator,
    list_generators,
    load_generator,
    save_generator,
)

__all__ = [
    "GenaugError",
    "Generator",
    "__version__",
    "create_generator",
    "list_generators",
    "load_generator",
    "save_generator",
]
