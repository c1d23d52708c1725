"""Augmentation built on a generator: one generator, wrapped once, native in each host API.

Every transform takes the generator (a checkpoint path, a Generator, or another transform whose
generator to share), then the same keyword-only settings in the same order (:data:`SETTING_NAMES`:
``mode, p, strength, detail, neighbours, precision, compile``), held in one frozen
:class:`AugmentSettings`, then what its host needs. Each keeps its last call's parameters in
``last_params``, which replay the call.

- :class:`GenerativeAugment`: the batched ``nn.Module`` on ``(B, C, H, W)`` images.
- :class:`GenerativeMix`: ``(images, labels) -> (images, labels)`` on the training device.
- :class:`GenerativeCollate`: a DataLoader ``collate_fn`` that augments each collated batch in
  the workers (the batched path for ``ImageFolder`` pipelines).
- :mod:`genaug.transforms.torchvision`: ``TorchvisionGenerativeAugment``, a v2 transform.
- :mod:`genaug.transforms.albumentations`: ``AlbumentationsGenerativeAugment`` (optional extra).
- :mod:`genaug.transforms.kornia`: ``KorniaGenerativeAugment`` (optional extra).
- :class:`LabelsRequiredWarning`: said when an adapter is built with a conditional generator
  that cannot infer classes, so every call must bring labels.
- :class:`NeighbourWalk`: where and how mode ``neighbour`` walks (``neighbours=`` of each).
- :mod:`genaug.transforms.functional`: the pure batched kernels.
"""

from genaug.transforms._inputs import LabelsRequiredWarning
from genaug.transforms.batch import GenerativeMix
from genaug.transforms.collate import GenerativeCollate
from genaug.transforms.core import MODES, GenerativeAugment, supported_modes
from genaug.transforms.settings import SETTING_NAMES, AugmentSettings
from genaug.transforms.walk import NeighbourWalk

__all__ = [
    "MODES",
    "SETTING_NAMES",
    "AugmentSettings",
    "GenerativeAugment",
    "GenerativeCollate",
    "GenerativeMix",
    "LabelsRequiredWarning",
    "NeighbourWalk",
    "supported_modes",
]
