"""Generator checkpoints: a folder with ``config.json`` and ``model.safetensors``. No pickle.

``config.json`` holds the family, every constructor argument, the class names, the format version
and a description of the training data. Folders are written under a temporary name and renamed,
so a crash never leaves half a checkpoint, and a state with a non-finite tensor is never written.

A checkpoint is trusted only once checked: ``config.json`` readable, its format version accepted,
weights that load, fit the config and are finite. In a training run folder,
``checkpoints/latest`` is a hint: the newest ``checkpoints/step_*`` that passes the checks is the
one used, with a notice naming what was skipped (:func:`search_run_checkpoints`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genaug.errors import GenaugError, notice
from genaug.io import os_errors_as_sentences, write_folder_atomically
from genaug.models.base import Generator, family_class

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
LATEST_NAME = "latest"  # in a run folder's checkpoints/: the name of the newest checkpoint
STEP_FOLDER = re.compile(r"step_(\d+)")

T = TypeVar("T")


class DamagedCheckpoint(GenaugError):
    """A checkpoint file that is missing, unreadable or does not fit: names the file and why."""

    def __init__(self, file: Path, problem: str, fix: str = "restore it or use another checkpoint"):
        self.file, self.problem = file, problem
        super().__init__(f"{file} {problem}; {fix}.")


class NewerCheckpoint(GenaugError):
    """A checkpoint in a format newer than this genaug reads: never skipped silently.

    ``older`` is, in a run folder, the newest older checkpoint this genaug reads (or None).
    """

    def __init__(self, config_path: Path, version: int, older: Path | None = None):
        self.config_path, self.version, self.older = config_path, version, older
        alternative = f", or use {older}" if older is not None else ""
        super().__init__(
            f"{config_path} has format version {version}, newer than this genaug reads "
            f"({FORMAT_VERSION}); upgrade genaug to load it{alternative}."
        )


# ----------------------------------------------------------------------------- writing
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


def nonfinite_names(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity, in order."""
    return [
        name
        for name, tensor in tensors.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def save_generator(
    model: Generator, directory: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """Save ``model`` to the folder ``directory`` (config.json + model.safetensors), atomically.

    A model with a non-finite weight is refused (nothing is written). An OS error (full disk,
    read-only folder) is one sentence. Example: ``save_generator(vae, "checkpoints/digits-vae")``.
    """
    config = generator_config(model, extra)
    tensors = state_tensors(model)
    bad = nonfinite_names(tensors)
    if bad:
        raise GenaugError(
            f"The {model.family} generator has {len(bad)} non-finite tensors (first: {bad[0]}), "
            f"so it was not saved to {directory}; its training diverged, so train it again."
        )

    def fill(tmp: Path) -> None:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")

    with os_errors_as_sentences(f"save the generator to {directory}"):
        return write_folder_atomically(directory, fill)


# ----------------------------------------------------------------------------- checking
def _read_config(directory: Path) -> dict[str, Any]:
    """``directory/config.json``, checked: readable JSON of a known family, accepted format."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise DamagedCheckpoint(path, "is missing, so the checkpoint is incomplete")
    try:
        config = json.loads(path.read_text())
    except OSError as exc:
        raise DamagedCheckpoint(path, f"cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedCheckpoint(path, f"is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or "family" not in config or "model_args" not in config:
        raise DamagedCheckpoint(path, "does not describe a genaug generator (no family/model_args)")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DamagedCheckpoint(path, f"has no valid format version (found {version!r})")
    if version > FORMAT_VERSION:
        raise NewerCheckpoint(path, version)
    family_class(config["family"])  # unknown family -> clear error
    return config


def _build(directory: Path, config: dict[str, Any]) -> Generator:
    """An untrained generator of the family and arguments ``config`` names."""
    from genaug.version import __version__

    cls = family_class(config["family"])
    try:
        # Arguments added since the checkpoint was written take the value their absence means.
        return cls(**{**cls.legacy_args, **config["model_args"]})
    except (TypeError, GenaugError) as exc:
        raise DamagedCheckpoint(
            directory / CONFIG_NAME,
            f"has model arguments that a {config['family']} generator of genaug {__version__} "
            f"refuses ({exc}); the file says genaug {config.get('genaug_version')} wrote it",
            "load it with that version, or restore the file",
        ) from None


def _load_weights(directory: Path, model: Generator) -> None:
    """Load ``model.safetensors`` into ``model`` once it is readable, fits and is finite."""
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise DamagedCheckpoint(weights, "is missing, so the checkpoint is incomplete")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DamagedCheckpoint(weights, f"is unreadable or truncated ({exc})") from None
    mismatch = tensor_mismatch(tensors, model.state_dict())
    if mismatch:
        raise DamagedCheckpoint(weights, f"does not match its config.json ({mismatch})")
    bad = nonfinite_names(tensors)
    if bad:
        raise DamagedCheckpoint(
            weights,
            f"holds {len(bad)} non-finite tensors (first: {bad[0]}): training had diverged",
        )
    model.load_state_dict(tensors)


def tensor_mismatch(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str:
    """What keeps ``tensors`` from loading as ``expected`` (missing, unexpected, shapes), or ''."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing, first {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, first {unexpected[0]}")
    if shapes:
        k = shapes[0]
        parts.append(
            f"{len(shapes)} of another shape, first {k}: {tuple(tensors[k].shape)} instead of "
            f"{tuple(expected[k].shape)}"
        )
    return "; ".join(parts)


def check_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, Any], Generator]:
    """Check one checkpoint folder and return its config and its generator (CPU, weights loaded).

    Raises :class:`DamagedCheckpoint` naming the file and what is wrong with it, or
    :class:`NewerCheckpoint` for a format this genaug does not read.
    """
    directory = Path(directory)
    config = _read_config(directory)
    model = _build(directory, config)
    _load_weights(directory, model)
    model.class_names = list(config.get("class_names") or model.class_names)
    model.data_description = dict(config.get("data") or {})
    return config, model


# ----------------------------------------------------------------------------- run folders
def step_folders(run_dir: str | os.PathLike) -> list[Path]:
    """A run's ``checkpoints/step_*`` folders, oldest first (temporary folders are ignored)."""
    checkpoints = Path(run_dir) / "checkpoints"
    if not checkpoints.is_dir():
        return []
    found = [p for p in checkpoints.iterdir() if STEP_FOLDER.fullmatch(p.name) and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def folder_step(folder: Path) -> int:
    """The step a ``step_NNNNNNN`` folder was taken at."""
    return int(folder.name.split("_")[1])


def search_run_checkpoints(
    run_dir: str | os.PathLike, check: Callable[[Path], T], quiet: bool = False
) -> tuple[Path | None, T | None, list[str]]:
    """The newest ``step_*`` folder of a run that passes ``check``, what check returned for it,
    and the newer folders skipped, each as ``"step_NNNNNNN (file problem)"``.

    ``check`` raises :class:`DamagedCheckpoint` for a folder not to use. ``checkpoints/latest`` is only
    a hint: when it names a missing folder, that is said too. Unless ``quiet``, skipping anything
    gives one notice. Only a :class:`DamagedCheckpoint` is skipped: a :class:`NewerCheckpoint`
    is raised (naming the newest older checkpoint this genaug reads) rather than going back past
    it silently, and other errors pass.
    """
    run_dir = Path(run_dir)
    skipped: list[str] = []
    newer: NewerCheckpoint | None = None
    for folder in reversed(step_folders(run_dir)):
        try:
            value = check(folder)
        except NewerCheckpoint as exc:
            newer = newer or exc
            continue
        except DamagedCheckpoint as exc:
            skipped.append(f"{folder.name} ({exc.file.name} {exc.problem})")
            continue
        if newer is not None:
            raise NewerCheckpoint(newer.config_path, newer.version, older=folder)
        hint = _latest_hint(run_dir, folder)
        if (skipped or hint) and not quiet:
            what = "; ".join(skipped + ([hint] if hint else []))
            notice(f"using {folder} of the run {run_dir}: skipped {what}.")
        return folder, value, skipped
    if newer is not None:
        raise newer
    return None, None, skipped


def _latest_hint(run_dir: Path, chosen: Path) -> str | None:
    """A note when ``checkpoints/latest`` names a missing folder other than ``chosen``."""
    latest = run_dir / "checkpoints" / LATEST_NAME
    try:
        name = latest.read_text().strip()
    except OSError:
        return None
    if name == chosen.name or (latest.parent / name).is_dir():
        return None
    return f"checkpoints/{LATEST_NAME} names {name!r}, which is missing"


def _resolve(path: str | os.PathLike) -> tuple[Path, dict[str, Any], Generator]:
    """A checkpoint folder, or a run folder's newest good checkpoint, checked."""
    path = Path(path)
    if not path.exists():
        raise GenaugError(f"No checkpoint at {path}: the folder does not exist; check the path.")
    if (path / CONFIG_NAME).is_file() or (path / WEIGHTS_NAME).exists():
        return (path, *check_checkpoint(path))
    folder, found, skipped = search_run_checkpoints(path, check_checkpoint)
    if folder is not None and found is not None:
        return (folder, *found)
    if skipped:
        raise GenaugError(
            f"{path} holds no usable checkpoint ({'; '.join(skipped)}); restore one of them, "
            "or train again."
        )
    if (path / "checkpoints").is_dir() or (path / "run_config.json").is_file():
        raise GenaugError(
            f"{path} is a training run without a checkpoint yet; wait for its first checkpoint "
            "or train it further with `genaug train --resume`."
        )
    raise GenaugError(
        f"{path} is not a genaug checkpoint: expected {CONFIG_NAME} and {WEIGHTS_NAME} in it "
        "(or a training run folder with checkpoints/); point to the folder `genaug train` wrote."
    )


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a training run folder (its newest good checkpoint), checked."""
    return _resolve(path)[0]


def read_generator_config(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's config.json (accepts a run folder), once the checkpoint is checked;
    for ``"diffusers:PATH"`` (a user's pipeline folder) what the checked folder says."""
    if _is_pipeline_spec(path):
        from genaug.models.pipeline import pipeline_spec_config

        return pipeline_spec_config(str(path))
    return _resolve(path)[1]


def _is_pipeline_spec(path: Any) -> bool:
    return isinstance(path, str) and path.startswith("diffusers:")


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a generator saved by :func:`save_generator` or written by ``genaug train``.

    Example: ``model = load_generator("runs/digits-vae", device="cuda")``. The model comes back in
    eval mode. Nothing is unpickled: weights come from safetensors, the rest from JSON. A run
    folder gives its newest checkpoint that passes the checks (with a notice of what it skipped).
    ``"diffusers:PATH"`` loads a user's local diffusers pipeline folder with default settings
    (:func:`genaug.models.pipeline.load_pipeline` takes class names and prompts).
    """
    if _is_pipeline_spec(path):
        from genaug.models.pipeline import load_pipeline

        return load_pipeline(str(path)[len("diffusers:") :], device=device)
    folder, _, model = _resolve(path)
    model.name_or_path = str(folder)  # where it came from: transforms pickle it by this path
    return model.to(device).eval()
