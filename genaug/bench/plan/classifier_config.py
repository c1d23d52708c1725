"""How a bench's timm classifier is built and trained: :class:`ClassifierConfig`, the same for
every condition of a grid (:meth:`BenchConfig.classifier <genaug.bench.plan.config.BenchConfig.classifier>`
gives it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from genaug.errors import GenaugError

__all__ = ["ClassifierConfig"]


@dataclass
class ClassifierConfig:
    """How a classifier is built and trained; the same for every condition of a benchmark.

    Attributes:
        model: a timm model name (``timm.list_models()``), created with ``pretrained=False``.
        pretrained_file: local weights (``.safetensors`` / ``.pth``) to start from instead;
            the classifier head and the input channels are adapted by timm.
        steps: optimiser steps (the budget every condition gets).
        batch_size: images per step.
        lr: peak learning rate of the one-cycle schedule (AdamW).
        weight_decay: AdamW weight decay.
        label_smoothing: cross-entropy label smoothing.
        device: ``auto``, ``cpu`` or ``cuda``.
        amp: bf16 autocast on CUDA (ignored on the CPU).
        backbone: the backbone's learning rate as a share of ``lr`` (the head's), in (0, 1].
        fused_adamw: AdamW's update as one fused kernel instead of one pass per operation
            (``foreach``). The same arithmetic, equal up to float rounding (so not bit-identical
            to runs made without it); on a CPU it makes resnet10t's step several times cheaper
            (``benchmarks/optimizer_step.py``). Off by default: published grids reproduce.
    """

    model: str = "resnet10t"
    pretrained_file: str | None = None
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    device: str = "auto"
    amp: bool = True
    backbone: float = 1.0
    fused_adamw: bool = False

    def validate(self) -> ClassifierConfig:
        """Raise one clear sentence for values no classifier can use; return self."""
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GenaugError(f"classifier {name} must be a positive integer, got {value!r}.")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise GenaugError(f"classifier lr must be a positive number, got {self.lr!r}.")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise GenaugError(f"weight_decay must be 0 or more, got {self.weight_decay!r}.")
        if not (isinstance(self.label_smoothing, (int, float)) and 0 <= self.label_smoothing < 1):
            raise GenaugError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing!r}.")
        if not (isinstance(self.backbone, (int, float)) and 0 < self.backbone <= 1):
            raise GenaugError(f"backbone must lie in (0, 1], got {self.backbone!r}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)
