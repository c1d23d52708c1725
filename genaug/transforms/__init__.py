"""Augmentation built on a generator: one generator, wrapped once, native in each host API.

- :class:`GenerativeAugment`: the batched ``nn.Module`` on ``(B, C, H, W)`` images.
- :class:`GenerativeMix`: ``(images, labels) -> (images, labels)`` on the training device.
- :mod:`genaug.transforms.torchvision`: ``TorchvisionGenerativeAugment``, a v2 transform.
- :mod:`genaug.transforms.albumentations`: ``AlbumentationsGenerativeAugment`` (optional extra).
- :class:`LabelsRequiredWarning`: said when an adapter is built with a conditional generator
  that cannot infer classes, so every call must bring labels.
- :class:`NeighbourWalk`: where and how mode ``neighbour`` walks (``neighbours=`` of each).
- :mod:`genaug.transforms.functional`: the pure batched kernels.
"""

from genaug.transforms._inputs import LabelsRequiredWarning
from genaug.transforms.batch import GenerativeMix
from genaug.transforms.core import MODES, GenerativeAugment, supported_modes
from genaug.transforms.walk import NeighbourWalk

__all__ = [
    "MODES",
    "GenerativeAugment",
    "GenerativeMix",
    "LabelsRequiredWarning",
    "NeighbourWalk",
    "supported_modes",
]
