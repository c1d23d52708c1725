"""A frozen classifier that judges a generator's images while it trains (a class-preserving loss).

It reads a classifier folder as ``genaug bench`` writes its base classifier
(``pretrained/base-classifier/``: ``classifier.safetensors`` with ``classifier.json`` naming the
timm model, channels, classes and their names). An image-conditioned generator trained on the
same base classes can then be asked that its variations of ``x`` stay in ``x``'s class *as that
classifier sees it*: cross-entropy of the critic's logits on the variation against ``x``'s class.
The critic never trains and is never saved with the generator (only its path is recorded).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.errors import GenaugError
from genaug.models.features import CLASSIFIER_RECORD as CRITIC_RECORD
from genaug.models.features import CLASSIFIER_WEIGHTS as CRITIC_WEIGHTS
from genaug.models.features import load_classifier_folder, timm_normalisation

__all__ = ["CRITIC_RECORD", "CRITIC_WEIGHTS", "ClassifierCritic", "timm_normalisation"]


class ClassifierCritic(nn.Module):
    """A frozen timm classifier over [0, 1] images, with its class names.

    Args:
        folder: a folder holding ``classifier.safetensors`` and ``classifier.json``.
    """

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        self.model, record = load_classifier_folder(Path(folder))
        self.model.eval().requires_grad_(False)
        self.class_names: list[str] = [str(n) for n in record["class_names"]]
        # The normalisation the bench trained it with.
        mean, std = timm_normalisation(self.model, int(record["channels"]))
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def train(self, mode: bool = True) -> ClassifierCritic:
        super().train(mode)
        self.model.eval()  # frozen: its BatchNorm statistics never move
        return self

    def class_index(self, names: list[str]) -> Tensor:
        """The critic's class index of each of ``names`` (a generator's training classes)."""
        where = {name: i for i, name in enumerate(self.class_names)}
        missing = [n for n in names if n not in where]
        if missing:
            raise GenaugError(
                f"the critic does not know {len(missing)} of the generator's training classes "
                f"(e.g. {missing[0]!r}); train both on the same base classes."
            )
        return torch.tensor([where[n] for n in names], dtype=torch.long)

    def loss(self, images: Tensor, classes: Tensor) -> Tensor:
        """Mean cross-entropy of the critic on images (B, C, H, W) in [0, 1] against its class
        indices (B,); gradients flow to the images only."""
        x = (images.float() - self.mean) / self.std
        return F.cross_entropy(self.model(x).float(), classes)
