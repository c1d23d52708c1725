"""What a training run keeps on disk to resume: weights, EMA, optimizer state, RNG, step.

A checkpoint is ``checkpoints/step_NNNNNNN/`` in the run folder, written atomically:
``config.json`` + ``model.safetensors`` (the EMA generator, loadable by ``load_generator``) and
``training_state.safetensors`` + ``training_state.json`` (raw weights, optimizer tensors, RNG
states; non-tensor optimizer settings in JSON). ``checkpoints/latest`` names the newest one and is
replaced atomically after the folder is complete. Nothing is pickled.

A state with a non-finite tensor is never written. Resuming trusts a checkpoint only once it is
checked (:func:`find_resumable`): the generator checks of :mod:`genaug.models.checkpoint`, a
readable and finite training state that fits the run's model and optimizers; ``latest`` is a
hint, the newest checkpoint that passes is the truth.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genaug.errors import GenaugError
from genaug.io import atomic_write_text, write_folder_atomically
from genaug.models.base import Generator
from genaug.models.checkpoint import (
    CONFIG_NAME,
    LATEST_NAME,
    WEIGHTS_NAME,
    DamagedCheckpoint,
    check_checkpoint,
    folder_step,
    generator_config,
    nonfinite_names,
    search_run_checkpoints,
    state_tensors,
    step_folders,
    tensor_mismatch,
)
from genaug.train.health import TrainingDiverged

STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"


class EMA:
    """Exponential moving average of a generator's weights (the copy used for sampling).

    Parameters named with one of the model's ``training_only_prefixes`` (a discriminator) and all
    buffers (BatchNorm statistics) are copied rather than averaged.
    """

    def __init__(self, model: Generator, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: Generator, step: int) -> None:
        # Warm-up: average over roughly the steps seen so far early on, so the EMA is not
        # dominated by the random initialisation in short runs.
        decay = min(self.decay, (1 + step) / (10 + step))
        skip = model.training_only_prefixes
        ema_params = dict(self.model.named_parameters())
        for name, param in model.named_parameters():
            target = ema_params[name]
            if skip and name.startswith(skip):
                target.copy_(param)
            else:
                target.lerp_(param, 1.0 - decay)
        ema_buffers = dict(self.model.named_buffers())
        for name, buffer in model.named_buffers():
            ema_buffers[name].copy_(buffer)


def _optimizer_to_tensors(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Move an optimizer's tensors into ``tensors``; return the JSON-able rest."""
    state_dict = optimizer.state_dict()
    state_meta: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        meta: dict[str, Any] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensor_key = f"optim.{name}.{index}.{key}"
                tensors[tensor_key] = value.detach().to("cpu").contiguous()
                meta[key] = {"__tensor__": tensor_key}
            else:
                meta[key] = value
        state_meta[str(index)] = meta
    return {"state": state_meta, "param_groups": state_dict["param_groups"]}


def _optimizer_from_tensors(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """The optimizer's state_dict back from JSON ``meta`` and ``tensors`` (KeyError: damaged)."""
    state = {}
    for index, entries in meta["state"].items():
        state[int(index)] = {
            key: tensors[value["__tensor__"]]
            if isinstance(value, dict) and "__tensor__" in value
            else value
            for key, value in entries.items()
        }
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_checkpoint(
    run_dir: Path,
    step: int,
    model: Generator,
    ema: EMA,
    optimizers: dict[str, torch.optim.Optimizer],
    keep: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``checkpoints/step_NNNNNNN`` atomically, point ``latest`` at it, prune old ones.

    ``extra`` (JSON) is kept in ``training_state.json`` and given back on resume. A state with a
    non-finite tensor is refused with :class:`TrainingDiverged` and nothing is written.
    """
    checkpoints = run_dir / "checkpoints"
    name = f"step_{step:07d}"
    tensors = {f"model.{k}": v for k, v in state_tensors(model).items()}
    meta: dict[str, Any] = {"step": step, "optimizers": {}, **(extra or {})}
    for opt_name, optimizer in optimizers.items():
        meta["optimizers"][opt_name] = _optimizer_to_tensors(opt_name, optimizer, tensors)
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and model.device.type == "cuda":
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    config = generator_config(ema.model, {"step": step})
    ema_tensors = state_tensors(ema.model)
    bad = nonfinite_names(tensors) + nonfinite_names(ema_tensors)
    if bad:
        raise TrainingDiverged(
            f"At step {step} {len(bad)} tensors of the training state are not finite (first: "
            f"{bad[0]}), so no checkpoint was written; {kept_sentence(run_dir)}. Lower --lr and "
            "start again in another --out."
        )

    def fill(tmp: Path) -> None:
        save_file(ema_tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        save_file(tensors, str(tmp / STATE_TENSORS), metadata={"format": "pt"})
        (tmp / STATE_JSON).write_text(json.dumps(meta, indent=2) + "\n")

    folder = write_folder_atomically(checkpoints / name, fill)
    atomic_write_text(checkpoints / LATEST_NAME, name + "\n")
    for old in step_folders(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint folder of a run that passes the generator checks, or None."""
    return search_run_checkpoints(run_dir, check_checkpoint, quiet=True)[0]


def kept_sentence(run_dir: Path) -> str:
    """ "the checkpoint of step N is kept" (the newest that passes the checks), or that none is."""
    folder = latest_checkpoint(run_dir)
    if folder is None:
        return "no checkpoint was written yet"
    return f"the checkpoint of step {folder_step(folder)} is kept ({folder})"


@dataclass
class ResumePoint:
    """A checked checkpoint to resume from, read once."""

    folder: Path
    meta: dict[str, Any]  # training_state.json
    tensors: dict[str, torch.Tensor]  # training_state.safetensors
    ema_model: Generator  # the checkpoint's generator (model.safetensors), on the CPU


def find_resumable(
    run_dir: Path,
    model: Generator,
    optimizers: dict[str, torch.optim.Optimizer],
    step: int | None = None,
) -> tuple[ResumePoint | None, list[str]]:
    """The checkpoint to resume from: the one of ``step``, or the newest that passes the checks;
    and the newer ones skipped (``"step_NNNNNNN (problem)"``, a notice said so).

    Returns ``(None, skipped)`` when no checkpoint passes. A checkpoint whose own generator is
    sound but was built with other arguments than this genaug builds the run with (another
    genaug version's defaults) raises a :class:`GenaugError` saying so.
    """
    if step is None:
        folder, point, skipped = search_run_checkpoints(
            run_dir, lambda f: _check_training_folder(f, model, optimizers)
        )
        return point, skipped
    folder = run_dir / "checkpoints" / f"step_{step:07d}"
    if not folder.is_dir():
        steps = ", ".join(str(folder_step(f)) for f in step_folders(run_dir)) or "none"
        raise GenaugError(
            f"--resume-from {step}: {run_dir} has no checkpoint of step {step} (steps it has: "
            f"{steps}); choose one of those."
        )
    return _check_training_folder(folder, model, optimizers), []


def _check_training_folder(
    folder: Path, model: Generator, optimizers: dict[str, torch.optim.Optimizer]
) -> ResumePoint:
    """Read and check everything a resume restores from ``folder``; DamagedCheckpoint if not."""
    config, ema_model = check_checkpoint(folder)
    built = dict(ema_model.config)
    differ = sorted(
        k for k in set(built) | set(model.config) if built.get(k) != model.config.get(k)
    )
    if differ:
        key = differ[0]
        raise GenaugError(
            f"{folder / CONFIG_NAME} is sound but was built with {key}={built.get(key)!r} where "
            f"this genaug builds the run with {key}={model.config.get(key)!r}; genaug "
            f"{config.get('genaug_version')} wrote it, so resume with that version, or start a "
            "new run in another --out."
        )
    meta_path, tensors_path = folder / STATE_JSON, folder / STATE_TENSORS
    try:
        meta = json.loads(meta_path.read_text())
        step = int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedCheckpoint(meta_path, f"is unreadable or incomplete ({exc!r})") from None
    if step != folder_step(folder):
        raise DamagedCheckpoint(meta_path, f"says step {step}, not the folder's")
    try:
        tensors = load_file(str(tensors_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DamagedCheckpoint(tensors_path, f"is unreadable or truncated ({exc})") from None
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    problem = tensor_mismatch(weights, model.state_dict())
    bad = nonfinite_names(tensors)
    if problem or bad or "rng.cpu" not in tensors:
        why = problem or (f"non-finite tensors, first {bad[0]}" if bad else "no RNG state")
        raise DamagedCheckpoint(tensors_path, f"does not fit the run's model ({why})")
    for name, optimizer in optimizers.items():
        if not _optimizer_fits(meta.get("optimizers", {}).get(name), tensors, optimizer):
            raise DamagedCheckpoint(meta_path, f"holds no usable state of the {name} optimizer")
    return ResumePoint(folder, meta, tensors, ema_model)


def _optimizer_fits(
    meta: Any, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer
) -> bool:
    """Whether the saved optimizer state rebuilds and has the optimizer's parameter groups."""
    try:
        saved = _optimizer_from_tensors(meta, tensors)
        sizes = [len(group["params"]) for group in saved["param_groups"]]
    except (KeyError, TypeError, AttributeError):
        return False
    return sizes == [len(group["params"]) for group in optimizer.param_groups]


def restore_training_state(
    point: ResumePoint,
    model: Generator,
    ema: EMA,
    optimizers: dict[str, torch.optim.Optimizer],
) -> int:
    """Restore weights, EMA, optimizers and RNG from a checked checkpoint; return its step."""
    tensors, meta = point.tensors, point.meta
    device = model.device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.model.load_state_dict(point.ema_model.state_dict())
    ema.model.to(device)
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(_optimizer_from_tensors(meta["optimizers"][name], tensors))
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and device.type == "cuda":
        torch.cuda.set_rng_state_all(cuda_states)
    return int(meta["step"])


def set_aside_newer(run_dir: Path, point: ResumePoint) -> list[Path]:
    """Move the step folders newer than ``point`` (damaged, or left by ``--resume-from``) into
    ``checkpoints/set_aside/`` and point ``latest`` at ``point``; return where they went."""
    moved = []
    aside = run_dir / "checkpoints" / "set_aside"
    for folder in step_folders(run_dir):
        if folder_step(folder) > folder_step(point.folder):
            aside.mkdir(exist_ok=True)
            target, n = aside / folder.name, 1
            while target.exists():
                target, n = aside / f"{folder.name}-{n}", n + 1
            folder.rename(target)
            moved.append(target)
    atomic_write_text(run_dir / "checkpoints" / LATEST_NAME, point.folder.name + "\n")
    return moved
