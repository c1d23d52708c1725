"""A frozen image model as a feature map: the learner's view of an image, for few-shot heads and
feature-space generators (hallucinators).

:class:`FeatureExtractor` wraps a timm model (its pooled pre-logits features) or any
``nn.Module`` that maps images to ``(B, D)`` features, with the normalisation its weights expect,
the image size and channels it takes, and a fingerprint of its weights. The fingerprint is what a
hallucinator records of the extractor it was trained on: used with another, it refuses.

Extractors come from Python (``FeatureExtractor(model, image_size=32, channels=1)``) or from a
string :func:`load_extractor` reads (what a checkpoint can record):

- a classifier folder as ``genaug bench`` writes its base classifier (``classifier.safetensors``
  + ``classifier.json``: the timm model, channels, image size, classes);
- ``timm:NAME@FILE``: a timm model with local weights (never downloaded);
- ``memory:FINGERPRINT``: an extractor registered in this process with :func:`register_extractor`
  (an ``nn.Module`` that no string can rebuild).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genaug.errors import GenaugError

__all__ = [
    "CLASSIFIER_RECORD",
    "CLASSIFIER_WEIGHTS",
    "FeatureExtractor",
    "load_classifier_folder",
    "load_extractor",
    "register_extractor",
    "timm_normalisation",
    "weights_fingerprint",
]

# The bench's base-classifier files (genaug.bench.learn.base_classifier writes them under these names).
CLASSIFIER_WEIGHTS, CLASSIFIER_RECORD = "classifier.safetensors", "classifier.json"
_REGISTERED: dict[str, FeatureExtractor] = {}


def weights_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's parameters and buffers (equal weights <-> equal hash)."""
    digest = hashlib.sha1()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(
            value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()[:16]


def timm_normalisation(model: nn.Module, channels: int) -> tuple[Tensor, Tensor]:
    """Per-channel (mean, std), each (1, C, 1, 1), for [0, 1] images: the timm model's config
    statistics, averaged over RGB for one channel (timm sums the RGB filters for in_chans=1)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = torch.tensor(cfg.get("mean", (0.5,) * 3), dtype=torch.float32)
    std = torch.tensor(cfg.get("std", (0.5,) * 3), dtype=torch.float32)
    if channels == 1:
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)


def load_classifier_folder(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The timm classifier a bench's base-classifier folder holds (eval mode, CPU), and its
    record (``classifier.json``)."""
    folder = Path(folder)
    weights, record_path = folder / CLASSIFIER_WEIGHTS, folder / CLASSIFIER_RECORD
    if not weights.is_file() or not record_path.is_file():
        raise GenaugError(
            f"{folder} holds no classifier ({CLASSIFIER_WEIGHTS} and {CLASSIFIER_RECORD}); give "
            "the folder genaug bench trained its base classifier in (pretrained/base-classifier)."
        )
    try:
        record = json.loads(record_path.read_text())
        name, classes, channels = record["model"], int(record["classes"]), int(record["channels"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GenaugError(
            f"{record_path} is not a classifier record ({type(exc).__name__}); restore it or "
            "train the classifier again."
        ) from None
    import timm
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model = timm.create_model(name, pretrained=False, num_classes=classes, in_chans=channels)
    try:
        model.load_state_dict(load_file(str(weights)))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise GenaugError(
            f"{weights} does not hold the weights {record_path.name} describes "
            f"({type(exc).__name__}); restore it or train the classifier again."
        ) from None
    return model.eval(), record


class FeatureExtractor(nn.Module):
    """A frozen image model: images (B, C, S, S) in [0, 1] (or uint8) -> features (B, D).

    Args:
        model: a timm model (its pooled pre-logits features are used, the head is ignored) or
            any ``nn.Module`` returning ``(B, D)`` features for normalised images.
        image_size, channels: the images it takes (others are refused, not converted).
        mean, std: per-channel normalisation of [0, 1] images; None: a timm model's config
            statistics, else none (the module gets [0, 1] images).
        source: how to load it again (a folder or ``timm:NAME@FILE``); None for a module that
            lives only in memory.

    The model is frozen (``requires_grad_(False)``, eval mode whatever ``.train()`` says).
    Example: ``extractor = FeatureExtractor(timm.create_model("resnet10t", in_chans=1),
    image_size=32, channels=1)``, then ``features = extractor(images)``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        image_size: int,
        channels: int,
        mean: Tensor | None = None,
        std: Tensor | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise GenaugError(
                f"a feature extractor wraps an nn.Module (e.g. a timm model), got "
                f"{type(model).__name__}."
            )
        if channels not in (1, 3) or not isinstance(image_size, int) or image_size < 8:
            raise GenaugError(
                f"a feature extractor takes 1 or 3 channels and at least 8 px, got {channels} "
                f"channels at {image_size!r} px."
            )
        self.model = model.eval().requires_grad_(False)
        self.image_size, self.channels, self.source = image_size, channels, source
        self.timm = hasattr(model, "forward_features") and hasattr(model, "forward_head")
        if mean is None and std is None:
            mean, std = (
                timm_normalisation(model, channels)
                if self.timm
                else (torch.zeros(1, channels, 1, 1), torch.ones(1, channels, 1, 1))
            )
        self.register_buffer("mean", torch.as_tensor(mean).float().view(1, -1, 1, 1), False)
        self.register_buffer("std", torch.as_tensor(std).float().view(1, -1, 1, 1), False)
        self.fingerprint = weights_fingerprint(self.model)
        with torch.no_grad():
            out = self.features(torch.zeros(2, channels, image_size, image_size))
        if out.ndim != 2:
            raise GenaugError(
                f"the feature extractor returned {tuple(out.shape)} for a batch of 2 images; "
                "give a module that returns (batch, features), e.g. a timm model."
            )
        self.feature_dim = int(out.shape[1])

    def train(self, mode: bool = True) -> FeatureExtractor:
        super().train(mode)
        self.model.eval()  # frozen: BatchNorm statistics never move
        return self

    def check_images(self, images: Tensor) -> Tensor:
        """Images as float in [0, 1] on the extractor's device, or one sentence naming the
        size and channels it takes."""
        shape = (self.channels, self.image_size, self.image_size)
        if not torch.is_tensor(images) or images.ndim != 4 or tuple(images.shape[1:]) != shape:
            got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
            raise GenaugError(
                f"the feature extractor takes images (B, {', '.join(map(str, shape))}), got "
                f"{got}; resize them to {self.image_size} px with {self.channels} channel(s) "
                "first."
            )
        device = self.mean.device
        if images.dtype == torch.uint8:
            return images.to(device).float() / 255.0
        return images.to(device).float()

    def features(self, images: Tensor) -> Tensor:
        """Features (B, D) of float images (B, C, S, S) in [0, 1]; gradients flow if asked."""
        x = (images - self.mean) / self.std
        if self.timm:
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return self.model(x)

    @torch.no_grad()
    def forward(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """Features (B, D) float32 of images (B, C, S, S), uint8 or float in [0, 1]."""
        out = [
            self.features(self.check_images(images[i : i + batch_size])).float()
            for i in range(0, images.shape[0], batch_size)
        ]
        if not out:
            return torch.empty(0, self.feature_dim, device=self.mean.device)
        return torch.cat(out)

    def spec(self) -> str:
        """The string :func:`load_extractor` rebuilds this extractor from (registering an
        in-memory one under its fingerprint)."""
        if self.source is not None:
            return self.source
        return register_extractor(self)

    def describe(self) -> dict[str, Any]:
        """What a hallucinator records of the extractor it was trained on."""
        return {
            "spec": self.spec(),
            "fingerprint": self.fingerprint,
            "feature_dim": self.feature_dim,
            "image_size": self.image_size,
            "channels": self.channels,
        }

    @classmethod
    def from_folder(cls, folder: str | Path) -> FeatureExtractor:
        """The base classifier of a bench folder (``pretrained/base-classifier``), as features."""
        model, record = load_classifier_folder(folder)
        size = int(record.get("image_size") or 32)
        return cls(model, image_size=size, channels=int(record["channels"]), source=str(folder))

    @classmethod
    def from_timm(
        cls, name: str, weights_file: str | Path, *, image_size: int, channels: int
    ) -> FeatureExtractor:
        """A timm model with local weights (``pretrained=False`` otherwise: nothing downloads)."""
        import timm

        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise GenaugError(
                f"weights file {path} does not exist; give a local .safetensors or .pth file "
                "(genaug never downloads weights)."
            )
        overlay = {"file": str(path), "source": None, "hf_hub_id": None, "url": None}
        try:
            model = timm.create_model(
                name,
                pretrained=True,
                pretrained_cfg_overlay=overlay,
                num_classes=0,
                in_chans=channels,
            )
        except Exception as exc:  # timm raises many types for bad names or weights
            raise GenaugError(
                f"timm could not create {name!r} with the weights in {path} "
                f"({type(exc).__name__}); check the model name and the file."
            ) from None
        source = f"timm:{name}@{path}"
        return cls(model, image_size=image_size, channels=channels, source=source)


def register_extractor(extractor: FeatureExtractor) -> str:
    """Make an in-memory extractor loadable in this process as ``memory:FINGERPRINT``."""
    spec = f"memory:{extractor.fingerprint}"
    _REGISTERED[spec] = extractor
    return spec


def load_extractor(
    spec: str | FeatureExtractor, image_size: int | None = None, channels: int | None = None
) -> FeatureExtractor:
    """A :class:`FeatureExtractor` from what a checkpoint records (see the module docstring).

    ``image_size`` and ``channels`` are needed for ``timm:NAME@FILE`` only (a folder records
    them). An extractor given as is is returned as is.
    """
    if isinstance(spec, FeatureExtractor):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise GenaugError(
            f"an extractor is a classifier folder, timm:NAME@FILE or a FeatureExtractor, got "
            f"{spec!r}."
        )
    if spec.startswith("memory:"):
        if spec not in _REGISTERED:
            raise GenaugError(
                f"extractor {spec} lived in another process's memory; pass the same extractor "
                "module again (genaug.fewshot.train_hallucinator registers it)."
            )
        return _REGISTERED[spec]
    if spec.startswith("timm:"):
        name, _, weights = spec[len("timm:") :].partition("@")
        if not weights or image_size is None or channels is None:
            raise GenaugError(
                f"extractor {spec!r} needs a local weights file (timm:NAME@FILE) and the image "
                "size and channels it takes."
            )
        return FeatureExtractor.from_timm(name, weights, image_size=image_size, channels=channels)
    return FeatureExtractor.from_folder(spec)
