"""The offline route of a costly generator: V variations of every shot, made once before the
classifier trains, then drawn with the same share p as the online route would generate.

A diffusion model's SDEdit costs several network calls per image; over a classifier's training it
varies each shot hundreds of times. With ``offline=V`` (an inline option, ``randaugment+
diffusion@strength=0.3,offline=8``) the bench's generative stage instead makes ``V`` variations of
each labelled shot up front, through the same transform (same mode, strength, chain, resizing),
and a batch image drawn for generation (probability p, the same schedule and cap) is replaced by
one of its own shot's variations, picked at random. An image that is no shot as it stands (a
classic transform ran first: ``order=classic-first``) takes a variation of a random shot of its
class. ``seconds`` is the one-off cost, recorded with the run.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from genaug.data import ImageDataset

__all__ = ["OfflineVariations"]


def _key(image: Tensor) -> bytes:
    return image.cpu().contiguous().numpy().tobytes()


class OfflineVariations:
    """``variations`` per shot of ``shots``, made once by ``augment`` (a GenerativeAugment with
    p forced to 1 for the making), and drawn for the images of a batch.

    Args:
        augment: the stage's transform (its mode, strength and generator).
        shots: the labelled images the classifier trains on (uint8, the bench's size).
        variations: V, how many variations of each shot to make.
        chain: for mode ``vary``, links per variation.
        seed: seeds the draws of variations.
    """

    def __init__(
        self, augment: Any, shots: ImageDataset, variations: int, chain: int, seed: int
    ) -> None:
        started = time.perf_counter()
        images, labels = shots.images, shots.targets
        made = []
        for _ in range(variations):
            params = augment.make_params(images, labels, chain=chain)
            params["apply"] = torch.ones_like(params["apply"])  # every shot, every time
            made.append(augment(images, labels, params=params).cpu())
        self.cache = torch.stack(made, dim=1)  # (N, V, C, H, W) like the shots
        self.labels = labels.clone()
        self.rows = {_key(image): row for row, image in enumerate(images)}
        self.rng = torch.Generator().manual_seed(seed)
        self.seconds = time.perf_counter() - started

    def draw(self, images: Tensor, labels: Tensor) -> Tensor:
        """One cached variation for each image (B, C, H, W): of its own shot when the image is
        one, else of a random shot of its label. Same dtype and device as ``images``."""
        n, variations = len(images), self.cache.shape[1]
        pick = torch.randint(0, variations, (n,), generator=self.rng)
        out = []
        for i, (image, label) in enumerate(zip(images, labels.cpu().tolist())):
            row = self.rows.get(_key(image))
            if row is None:
                same = (self.labels == label).nonzero().squeeze(1)
                if len(same) == 0:  # a class without shots: the image stays as it is
                    out.append(image.cpu())
                    continue
                row = int(same[torch.randint(0, len(same), (1,), generator=self.rng)])
            out.append(self.cache[row, int(pick[i])].to(image.dtype))
        return torch.stack(out).to(images.device, images.dtype)
