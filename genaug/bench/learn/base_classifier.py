"""The reference without a generator: a classifier pretrained on the base classes.

A condition written ``base:CONDITION`` (``base:randaugment``, ``base:randaugment+dagan``) starts
the classifier from one trained on every class of ``BenchConfig.pretrain_data`` (the base
classes, which must not overlap the evaluated ones) instead of from scratch, and fine-tunes it
on the episode's shots with the same budget as the other conditions (``finetune_lr`` may set
another peak learning rate). The head is new: timm drops the base head (its class count differs)
and draws the ``ways``-class head from the run's ``init_seed``, as a scratch model's.

The bench trains the base classifier once (same timm model and image size, ``pretrain_steps``
AdamW steps of the bench's batch size and lr with a one-cycle schedule, ``pretrain_augment``:
``none``, classic augmentations, or classic + a generator given as ``pretrain_generator``, e.g.
``randaugment+pairvae`` with ``checkpoint:runs/base/pairvae``: the classifier then also learns
from the generator's variations of the base images) and keeps it in the run folder as
``pretrained/base-classifier/classifier.safetensors`` with ``classifier.json`` (its settings, the
base classes, the command, time and training accuracy), written atomically. A bench that finds
it reuses it; one trained with other settings is refused. ``pretrained_from: FOLDER`` copies
the base classifier of another bench folder instead of training one, when its record matches
these settings field by field (else one sentence).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from genaug.bench.learn.classifier import create_classifier, input_normalisation, predict
from genaug.bench.learn.pipeline import build_pipeline
from genaug.bench.plan.classifier_config import ClassifierConfig
from genaug.bench.plan.config import BenchConfig
from genaug.data import ImageDataset, batch_indices, check_disjoint_classes, load_dataset
from genaug.data.convert import to_float_images
from genaug.device import autocast_for, memory_format_for, resolve_device
from genaug.errors import GenaugError
from genaug.io import write_folder_atomically
from genaug.models import create_generator, load_generator
from genaug.models.features import weights_fingerprint

__all__ = [
    "PRETRAIN_SEED",
    "base_folder",
    "classifier_for",
    "ensure_base_classifier",
    "load_base_data",
]

PRETRAIN_SEED = 0  # the base classifier's initial weights and batch order
FOLDER = Path("pretrained") / "base-classifier"
WEIGHTS, RECORD = "classifier.safetensors", "classifier.json"
# What makes a saved base classifier the one a bench asks for.
_MATCH = ("model", "data", "image_size", "channels", "steps", "batch_size", "lr")
_MATCH += ("weight_decay", "augment", "seed", "generator")


def _checkpoint_path(spec: str) -> str:
    return spec.partition(":")[2] if spec.startswith("checkpoint:") else spec


def base_folder(out: str | Path) -> Path:
    """Where a bench keeps its base classifier."""
    return Path(out) / FOLDER


def load_base_data(config: BenchConfig, evaluated: ImageDataset) -> ImageDataset:
    """The base classes' images, at the evaluated data's size and channels; refuses base
    classes that are evaluated too."""
    base = load_dataset(
        config.pretrain_data, image_size=config.image_size, channels=evaluated.channels
    )
    if base.num_classes < 2:
        raise GenaugError(f"pretrain_data {config.pretrain_data} has fewer than two classes.")
    check_disjoint_classes(base, evaluated)
    return base


def _wanted(config: BenchConfig, base: ImageDataset) -> dict[str, Any]:
    return {
        "model": config.model,
        "data": config.pretrain_data,
        "image_size": config.image_size,
        "channels": base.channels,
        "steps": config.pretrain_steps,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "augment": config.pretrain_recipe().name,
        "seed": PRETRAIN_SEED,
        "generator": config.pretrain_generator or None,
    }


def ensure_base_classifier(
    config: BenchConfig, base: ImageDataset, out: str | Path, command: str | None = None
) -> dict[str, Any]:
    """The bench's base classifier record, training and saving the classifier if absent.

    Raises when the run folder holds one trained with other settings.
    """
    folder = base_folder(out)
    wanted = _wanted(config, base)
    if config.pretrained_from and not (folder / RECORD).is_file():
        _copy_from(config, wanted, folder)
    if (folder / RECORD).is_file() and (folder / WEIGHTS).is_file():
        record = json.loads((folder / RECORD).read_text())
        changed = _differences(record, wanted)
        if changed:
            # Its base: runs were measured with that classifier: retraining it alone would
            # leave them in runs.jsonl beside runs of the new one.
            raise GenaugError(
                f"the base classifier in {folder} was trained with other settings "
                f"({', '.join(changed)}); set them back, or start the bench afresh with --overwrite, "
                "which deletes every run and generator of the bench."
            )
        return record
    record = _train(config, base, wanted)
    record["command"] = command
    record["trained_by"] = "genaug bench, before its base: conditions"
    weights = record.pop("_weights")

    def fill(tmp: Path) -> None:
        from safetensors.torch import save_file

        save_file(weights, str(tmp / WEIGHTS))
        (tmp / RECORD).write_text(json.dumps(record, indent=2) + "\n")

    write_folder_atomically(folder, fill)
    return record


def _differences(record: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The settings a saved base classifier's record has otherwise than ``wanted`` says."""
    return [f"{k} {record.get(k)!r} there" for k in _MATCH if record.get(k) != wanted[k]]


def _copy_from(config: BenchConfig, wanted: dict[str, Any], folder: Path) -> None:
    """Copy the base classifier of another bench folder (``pretrained_from``) into ``folder``
    when it was trained with exactly the settings this bench asks for; else one sentence."""
    source = base_folder(config.pretrained_from)
    if not (source / RECORD).is_file() or not (source / WEIGHTS).is_file():
        raise GenaugError(
            f"pretrained_from {config.pretrained_from} holds no base classifier ({source} has "
            f"no {WEIGHTS} and {RECORD}); give a bench folder that trained one, or drop it."
        )
    record = json.loads((source / RECORD).read_text())
    changed = _differences(record, wanted)
    if changed:
        raise GenaugError(
            f"the base classifier in {source} was trained with other settings "
            f"({', '.join(changed)}); give a bench of the same settings as pretrained_from, or "
            "drop it to train one here."
        )
    record["copied_from"] = str(source)

    def fill(tmp: Path) -> None:
        shutil.copyfile(source / WEIGHTS, tmp / WEIGHTS)
        (tmp / RECORD).write_text(json.dumps(record, indent=2) + "\n")

    write_folder_atomically(folder, fill)


def _train(config: BenchConfig, base: ImageDataset, wanted: dict[str, Any]) -> dict[str, Any]:
    """Train the timm model on every base class (labels = base class ids)."""
    device = resolve_device(config.device)
    channels, size = base.channels, config.image_size
    model = create_classifier(
        config.model,
        in_chans=channels,
        num_classes=base.num_classes,
        image_size=size,
        seed=PRETRAIN_SEED,
    )
    memory_format = memory_format_for(device)
    model = model.to(device=device, memory_format=memory_format).train()
    # The statistics a fine-tuned copy is normalised with (create_classifier with a weights
    # file reads them from the model's pretrained config): the same here.
    mean, std = (t.to(device) for t in input_normalisation(model, channels, True))
    recipe = config.pretrain_recipe()
    generator = None
    if recipe.generative is not None:
        generator = load_generator(_checkpoint_path(config.pretrain_generator), device=device)
        named = config.generator_settings(recipe.generative.generator).model
        family = create_generator(named, image_size=16, channels=1).family  # tiny, to compare
        if generator.family != family:
            raise GenaugError(
                f"pretrain_augment {config.pretrain_augment!r} names a {family} generator but "
                f"pretrain_generator {config.pretrain_generator} holds a {generator.family}; "
                "name the checkpoint's family there."
            )
    augment = build_pipeline(
        recipe, size, config.allow_flip(), generator=generator, seed=PRETRAIN_SEED + 1
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.pretrain_steps
    )
    autocast = autocast_for(device, config.amp)
    targets = base.targets.long()
    torch.manual_seed(PRETRAIN_SEED + 2)  # the classic transforms' draws
    started = time.perf_counter()
    for step in range(config.pretrain_steps):
        index = batch_indices(step, config.batch_size, len(base), PRETRAIN_SEED)  # (B,)
        images, labels = base.images[index], targets[index]  # (B, C, H, W) uint8, (B,)
        if augment is not None:
            augment.set_progress(step / max(config.pretrain_steps - 1, 1))
            images, labels = augment(images, labels)  # as the bench's runs do
        x = to_float_images(images.to(device, non_blocking=True))
        x = ((x - mean) / std).contiguous(memory_format=memory_format)
        with autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - started
    predictions = predict(model, base.images, mean, std, device, config.amp)
    model = model.cpu()
    return {
        **wanted,
        "classes": base.num_classes,
        "images": len(base),
        "class_names": list(base.class_names),
        "train_seconds": round(seconds, 3),
        "train_accuracy": float((predictions == targets).float().mean()),
        "final_loss": float(loss.detach()),
        "weights_fingerprint": weights_fingerprint(model),
        "device": str(device),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "_weights": {k: v.detach().contiguous() for k, v in model.state_dict().items()},
    }


class _SameChannels(logging.Filter):
    """Hides timm's note that the base weights already have the model's input channels (they
    do: the base classifier was trained on the same images); other messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "already match the model" not in record.getMessage()


_FILTER = _SameChannels()


def classifier_for(config: BenchConfig, on_base: bool, backbone: float = 1.0) -> ClassifierConfig:
    """The classifier settings of a run: the bench's, or for a ``base:`` condition the base
    classifier's weights (in ``config.out``) with ``finetune_lr`` if set; ``backbone``: the
    backbone's share of the learning rate (``finetune@backbone=...``)."""
    classifier = config.classifier()
    classifier.backbone = backbone
    if not on_base:
        return classifier
    logger = logging.getLogger("timm.models._builder")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    classifier.pretrained_file = str(base_folder(config.out) / WEIGHTS)
    if config.finetune_lr is not None:
        classifier.lr = float(config.finetune_lr)
    return classifier
