"""Device selection and the mixed-precision policy, in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from genaug.errors import GenaugError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; ``"cuda"`` without a GPU is a clear error."""
    if isinstance(spec, torch.device):
        return spec
    spec = str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GenaugError(
                f"Device {spec!r} was asked for but no CUDA GPU is visible; use --device cpu or auto."
            )
        return torch.device(spec)
    if spec == "cpu":
        return torch.device("cpu")
    raise GenaugError(f"Unknown device {spec!r}; use one of {', '.join(DEVICE_CHOICES)}.")


def autocast_for(
    device: torch.device, enabled: bool = True
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts: bf16 on CUDA when ``enabled``, a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def memory_format_for(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (faster convolutions with bf16), contiguous elsewhere."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format
