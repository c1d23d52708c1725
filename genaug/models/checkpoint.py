"""Generator checkpoints: a folder with ``config.json`` and ``model.safetensors``. No pickle.

``config.json`` holds the family, every constructor argument, the class names, the format version
and a description of the training data. Folders are written under a temporary name and renamed,
so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genaug.errors import GenaugError
from genaug.io import write_folder_atomically
from genaug.models.base import Generator, family_class

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
LATEST_NAME = "latest"  # in a run folder's checkpoints/: the name of the newest checkpoint


def generator_config(model: Generator, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON description of ``model`` that :func:`load_generator` rebuilds it from."""
    from genaug.version import __version__

    return {
        "format_version": FORMAT_VERSION,
        "genaug_version": __version__,
        "family": model.family,
        "model_args": dict(model.config),
        "class_names": list(model.class_names),
        "data": dict(model.data_description),
        **(extra or {}),
    }


def state_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state as contiguous CPU tensors, ready for safetensors."""
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def save_generator(
    model: Generator, directory: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """Save ``model`` to the folder ``directory`` (config.json + model.safetensors), atomically.

    Example: ``save_generator(vae, "checkpoints/digits-vae")``.
    """
    config = generator_config(model, extra)
    tensors = state_tensors(model)

    def fill(tmp: Path) -> None:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")

    return write_folder_atomically(directory, fill)


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a training run folder (its newest checkpoint), -> checkpoint folder."""
    path = Path(path)
    if not path.exists():
        raise GenaugError(f"No checkpoint at {path}: the folder does not exist; check the path.")
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).exists():
        return path
    latest = path / "checkpoints" / LATEST_NAME
    if latest.is_file():
        candidate = path / "checkpoints" / latest.read_text().strip()
        if candidate.is_dir():
            return candidate
    if (path / CONFIG_NAME).is_file():
        raise GenaugError(
            f"{path / WEIGHTS_NAME} is missing; the checkpoint is incomplete, save it again."
        )
    raise GenaugError(
        f"{path} is not a genaug checkpoint: expected {CONFIG_NAME} and {WEIGHTS_NAME} in it "
        "(or a training run folder with checkpoints/); point to the folder `genaug train` wrote."
    )


def read_generator_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint's config.json (accepts a run folder too)."""
    directory = resolve_checkpoint_dir(path)
    config_path = directory / CONFIG_NAME
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenaugError(
            f"{config_path} is not valid JSON ({exc.__class__.__name__}); restore it or retrain."
        ) from None
    if not isinstance(config, dict) or "family" not in config or "model_args" not in config:
        raise GenaugError(
            f"{config_path} does not describe a genaug generator (no family / model_args)."
        )
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise GenaugError(
            f"{config_path} has format version {version!r}, newer than this genaug reads "
            f"({FORMAT_VERSION}); upgrade genaug to load it."
        )
    family_class(config["family"])  # unknown family -> clear error
    return config


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a generator saved by :func:`save_generator` or written by ``genaug train``.

    Example: ``model = load_generator("runs/digits-vae", device="cuda")``. The model comes back in
    eval mode. Nothing is unpickled: weights come from safetensors, the rest from JSON.
    """
    directory = resolve_checkpoint_dir(path)
    config = read_generator_config(directory)
    cls = family_class(config["family"])
    try:
        # Arguments added since the checkpoint was written take the value their absence means.
        model = cls(**{**cls.legacy_args, **config["model_args"]})
    except TypeError as exc:
        raise GenaugError(
            f"{directory / CONFIG_NAME} has model arguments that a {config['family']} generator "
            f"does not take ({exc}); it was written by another genaug version."
        ) from None
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise GenaugError(f"{weights} is missing; the checkpoint is incomplete, save it again.")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise GenaugError(
            f"{weights} is unreadable or truncated ({exc}); restore it or retrain."
        ) from None
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # shape mismatch
        first = str(exc).strip().splitlines()[-1].strip()
        raise GenaugError(
            f"{weights} does not match its config.json ({first}); the checkpoint is corrupt."
        ) from None
    if missing or unexpected:
        raise GenaugError(
            f"{weights} does not match its config.json (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}); the checkpoint is corrupt."
        )
    model.class_names = list(config.get("class_names") or model.class_names)
    model.data_description = dict(config.get("data") or {})
    return model.to(device).eval()
