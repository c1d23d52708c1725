"""A small reference classifier trained on real images: the judge of generated images.

No Inception weights are downloaded: the classifier is trained on the user's own data in seconds
to minutes on a CPU, and provides both labels (conditional accuracy) and features (Frechet
distance, precision/recall). It is saved as safetensors + JSON beside the run it judges.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.data import ImageDataset
from genaug.device import resolve_device
from genaug.errors import GenaugError
from genaug.eval.real import data_fingerprint
from genaug.io import write_folder_atomically

REFERENCE_FORMAT_VERSION = 1
#: Seed of the reference classifier and of the CAS classifier (the same recipe for both).
CLASSIFIER_SEED = 0
REFERENCE_WEIGHTS = "reference.safetensors"
REFERENCE_CONFIG = "reference.json"


class ReferenceClassifier(nn.Module):
    """Three conv stages and global pooling; ``features`` is the 128-d pooled vector."""

    def __init__(self, channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.config = {"channels": channels, "num_classes": num_classes, "width": width}

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(
            stage(channels, width), stage(width, 2 * width), stage(2 * width, 4 * width)
        )
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, images: Tensor) -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> features (B, 4 * width)."""
        h = self.body(images * 2 - 1)
        return F.adaptive_avg_pool2d(h, 1).flatten(1)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 512) -> Tensor:
        """Class indices (B,) for images (B, C, H, W) in [0, 1]."""
        device = next(self.parameters()).device
        return torch.cat(
            [
                self(images[i : i + batch_size].to(device)).argmax(1).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )

    @torch.no_grad()
    def embed(self, images: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
        """Features (B, 4 * width) and predicted classes (B,) of images (B, C, H, W), on the CPU."""
        device = next(self.parameters()).device
        features, predictions = [], []
        for i in range(0, len(images), batch_size):
            h = self.features(images[i : i + batch_size].to(device))
            features.append(h.float().cpu())
            predictions.append(self.head(h).argmax(1).cpu())
        if not features:
            return torch.empty(0, self.head.in_features), torch.empty(0, dtype=torch.long)
        return torch.cat(features), torch.cat(predictions)


def train_reference_classifier(
    dataset: ImageDataset,
    steps: int = 600,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "auto",
) -> ReferenceClassifier:
    """Train the reference classifier on a labelled dataset (light shift augmentation)."""
    torch.manual_seed(seed)
    dev = resolve_device(device)
    model = ReferenceClassifier(dataset.channels, dataset.num_classes).to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    images = dataset.float_images().to(dev)
    targets = dataset.targets.to(dev)
    generator = torch.Generator().manual_seed(seed)
    pad = max(dataset.image_size // 16, 1)
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=generator).to(dev)
        x = images[index]
        # random translation by up to `pad` pixels: a little robustness, no new content
        shift = torch.randint(-pad, pad + 1, (2,), generator=generator).tolist()
        x = torch.roll(x, shifts=shift, dims=(2, 3))
        loss = F.cross_entropy(model(x), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def accuracy(model: ReferenceClassifier, dataset: ImageDataset) -> float:
    """Share of ``dataset`` the classifier labels correctly."""
    predictions = model.predict(dataset.float_images())
    return float((predictions == dataset.targets).float().mean())


def save_reference_classifier(
    model: ReferenceClassifier, directory: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Save the classifier as a folder (reference.safetensors + reference.json), atomically.

    ``meta`` (JSON-able) is kept beside the weights: :func:`reference_classifier_for` records there
    which data and recipe the classifier was trained with, to reuse it only when they match.
    """
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {
        "format_version": REFERENCE_FORMAT_VERSION,
        "model_args": dict(model.config),
        "meta": dict(meta or {}),
    }

    def fill(tmp: Path) -> None:
        save_file(tensors, str(tmp / REFERENCE_WEIGHTS))
        (tmp / REFERENCE_CONFIG).write_text(json.dumps(config, indent=2) + "\n")

    return write_folder_atomically(directory, fill)


def read_reference_meta(directory: str | Path) -> dict[str, Any] | None:
    """The ``meta`` saved with a reference classifier, or None when there is no readable one."""
    path = Path(directory) / REFERENCE_CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(config, dict) or not (Path(directory) / REFERENCE_WEIGHTS).is_file():
        return None
    meta = config.get("meta", {})
    return meta if isinstance(meta, dict) else None


def load_reference_classifier(directory: str | Path, device: str = "cpu") -> ReferenceClassifier:
    """Load a classifier saved by :func:`save_reference_classifier` (no pickle)."""
    directory = Path(directory)
    try:
        config = json.loads((directory / REFERENCE_CONFIG).read_text())
        tensors = load_file(str(directory / REFERENCE_WEIGHTS))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError) as exc:
        raise GenaugError(
            f"No readable reference classifier in {directory} ({exc.__class__.__name__}); "
            "delete the folder and it will be trained again."
        ) from None
    # The first format was the bare constructor arguments.
    model_args = config.get("model_args", config) if isinstance(config, dict) else {}
    try:
        model = ReferenceClassifier(**model_args)
        model.load_state_dict(tensors)
    except (TypeError, RuntimeError) as exc:
        raise GenaugError(
            f"The reference classifier in {directory} does not match its {REFERENCE_CONFIG} "
            f"({exc.__class__.__name__}); delete the folder and it will be trained again."
        ) from None
    return model.to(device).eval()


@torch.no_grad()
def conditional_accuracy(
    generator_model, classifier: ReferenceClassifier, n: int = 1000, seed: int = 0
) -> float:
    """Share of ``n`` class-conditional samples the classifier labels as their conditioning class."""
    device = generator_model.device
    rng = torch.Generator(device=device).manual_seed(seed)
    labels = torch.arange(n, device=device) % generator_model.num_classes
    samples = torch.cat(
        [
            generator_model.sample(len(chunk), labels=chunk, generator=rng).cpu()
            for chunk in labels.split(256)
        ]
    )
    return float((classifier.predict(samples) == labels.cpu()).float().mean())


def reference_classifier_for(
    train_part: ImageDataset,
    cache_dir: str | os.PathLike | None = None,
    steps: int = 600,
    device: str | torch.device = "auto",
) -> tuple[ReferenceClassifier, bool]:
    """The reference classifier of ``train_part``: loaded from ``cache_dir`` when it was trained
    on exactly these images with this recipe, else trained (and saved there). Returns
    ``(classifier, reused)``."""
    meta = {
        "recipe": "train_reference_classifier",
        "steps": steps,
        "seed": CLASSIFIER_SEED,
        "data_sha256": data_fingerprint(train_part),
        "data": {
            k: train_part.description.get(k)
            for k in ("spec", "image_size", "channels", "count", "test_fraction", "test_seed")
        },
    }
    dev = resolve_device(device)
    if cache_dir is not None and read_reference_meta(cache_dir) == meta:
        return load_reference_classifier(cache_dir, device=str(dev)), True
    classifier = train_reference_classifier(
        train_part, steps=steps, seed=CLASSIFIER_SEED, device=str(dev)
    )
    if cache_dir is not None:
        save_reference_classifier(classifier, cache_dir, meta)
    return classifier, False
