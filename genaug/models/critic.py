"""A frozen classifier that judges a generator's images while it trains (a class-preserving loss).

It reads a classifier folder as ``genaug bench`` writes its base classifier
(``pretrained/base-classifier/``: ``classifier.safetensors`` with ``classifier.json`` naming the
timm model, channels, classes and their names). An image-conditioned generator trained on the
same base classes can then be asked that its variations of ``x`` stay in ``x``'s class *as that
classifier sees it*: cross-entropy of the critic's logits on the variation against ``x``'s class.
The critic never trains and is never saved with the generator (only its path is recorded).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.errors import GenaugError

__all__ = ["CRITIC_RECORD", "CRITIC_WEIGHTS", "ClassifierCritic", "timm_normalisation"]

# The bench's base-classifier files (genaug.bench.pretrain writes them under these names).
CRITIC_WEIGHTS, CRITIC_RECORD = "classifier.safetensors", "classifier.json"


def timm_normalisation(model: nn.Module, channels: int) -> tuple[Tensor, Tensor]:
    """Per-channel (mean, std), each (1, C, 1, 1), for [0, 1] images: the timm model's config
    statistics, averaged over RGB for one channel (timm sums the RGB filters for in_chans=1)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = torch.tensor(cfg.get("mean", (0.5,) * 3), dtype=torch.float32)
    std = torch.tensor(cfg.get("std", (0.5,) * 3), dtype=torch.float32)
    if channels == 1:
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)


class ClassifierCritic(nn.Module):
    """A frozen timm classifier over [0, 1] images, with its class names.

    Args:
        folder: a folder holding ``classifier.safetensors`` and ``classifier.json``.
    """

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        folder = Path(folder)
        weights, record_path = folder / CRITIC_WEIGHTS, folder / CRITIC_RECORD
        if not weights.is_file() or not record_path.is_file():
            raise GenaugError(
                f"{folder} holds no classifier ({CRITIC_WEIGHTS} and {CRITIC_RECORD}); give the "
                "folder genaug bench trained its base classifier in (pretrained/base-classifier)."
            )
        record = json.loads(record_path.read_text())
        import timm
        from safetensors.torch import load_file

        self.model = timm.create_model(
            record["model"],
            pretrained=False,
            num_classes=int(record["classes"]),
            in_chans=int(record["channels"]),
        )
        self.model.load_state_dict(load_file(str(weights)))
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
