"""What a training run keeps on disk to resume: weights, EMA, optimizer state, RNG, step.

A checkpoint is ``checkpoints/step_NNNNNNN/`` in the run folder, written atomically:
``config.json`` + ``model.safetensors`` (the EMA generator, loadable by ``load_generator``) and
``training_state.safetensors`` + ``training_state.json`` (raw weights, optimizer tensors, RNG
states; non-tensor optimizer settings in JSON). ``checkpoints/latest`` names the newest one and is
replaced atomically after the folder is complete. Nothing is pickled.
"""

from __future__ import annotations

import copy
import json
import shutil
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
    generator_config,
    state_tensors,
)

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
) -> Path:
    """Write ``checkpoints/step_NNNNNNN`` atomically, point ``latest`` at it, prune old ones."""
    checkpoints = run_dir / "checkpoints"
    name = f"step_{step:07d}"
    tensors = {f"model.{k}": v for k, v in state_tensors(model).items()}
    meta: dict[str, Any] = {"step": step, "optimizers": {}}
    for opt_name, optimizer in optimizers.items():
        meta["optimizers"][opt_name] = _optimizer_to_tensors(opt_name, optimizer, tensors)
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and model.device.type == "cuda":
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    config = generator_config(ema.model, {"step": step})
    ema_tensors = state_tensors(ema.model)

    def fill(tmp: Path) -> None:
        save_file(ema_tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        save_file(tensors, str(tmp / STATE_TENSORS), metadata={"format": "pt"})
        (tmp / STATE_JSON).write_text(json.dumps(meta, indent=2) + "\n")

    folder = write_folder_atomically(checkpoints / name, fill)
    atomic_write_text(checkpoints / LATEST_NAME, name + "\n")
    finished = sorted(p for p in checkpoints.glob("step_*") if p.is_dir())
    for old in finished[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    latest = run_dir / "checkpoints" / LATEST_NAME
    if not latest.is_file():
        return None
    folder = run_dir / "checkpoints" / latest.read_text().strip()
    return folder if folder.is_dir() else None


def load_training_checkpoint(
    folder: Path,
    model: Generator,
    ema: EMA,
    optimizers: dict[str, torch.optim.Optimizer],
) -> int:
    """Restore weights, EMA, optimizers and RNG from ``folder``; return the step it was taken at."""
    try:
        meta = json.loads((folder / STATE_JSON).read_text())
        tensors = load_file(str(folder / STATE_TENSORS), device="cpu")
        ema_tensors = load_file(str(folder / WEIGHTS_NAME), device="cpu")
    except (OSError, SafetensorError, json.JSONDecodeError, ValueError) as exc:
        raise GenaugError(
            f"The checkpoint {folder} cannot be read ({exc}); delete it to resume from the "
            "previous one, or start over with --overwrite."
        ) from None
    device = model.device
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.model.load_state_dict(ema_tensors)
    except RuntimeError as exc:  # e.g. a run begun by an older genaug (no class head)
        first = str(exc).strip().splitlines()[0].strip().rstrip(":")
        raise GenaugError(
            f"The checkpoint {folder} does not fit the model this genaug builds ({first}); it was "
            "written by another genaug version, so start over with --overwrite."
        ) from None
    ema.model.to(device)
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(_optimizer_from_tensors(meta["optimizers"][name], tensors))
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and device.type == "cuda":
        torch.cuda.set_rng_state_all(cuda_states)
    return int(meta["step"])
