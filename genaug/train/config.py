"""The training run configuration: one dataclass, written into the run folder as run_config.json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from genaug.errors import GenaugError

# Fields that may differ between a run and its resumption.
RESUMABLE_CHANGES = frozenset(
    {"steps", "resume", "overwrite", "device", "progress", "out", "checkpoint_every", "log_every"}
    | {"keep_checkpoints", "sync_batchnorm", "resume_from"}
)


@dataclass
class TrainConfig:
    """Everything a training run needs; blank (None) fields take the family's defaults.

    Attributes:
        model: registered generator name ("vae", "test_vae", ...).
        data: dataset spec ("digits", "imagefolder:PATH", "mnist:ROOT", ...).
        out: run folder (checkpoints, stats.jsonl, sample grids, loss curve).
        image_size: generator resolution, a power of two in [16, 128].
        channels: 1 or 3; None keeps the data's own channel count.
        steps: optimisation steps; None = the family's default budget.
        batch_size: images per step; None = the family's default.
        lr: learning rate; None = the family's default.
        seed: seeds model init, data order and training noise (deterministic on CPU).
        device: "auto" (CUDA if present), "cpu" or "cuda".
        amp: bf16 autocast on CUDA (ignored on CPU).
        unlabeled: train unconditionally, ignoring the labels.
        augment: augmentation of every real training batch, for every family: a comma-separated
            list of ``translation`` (shift by up to 1/8 of the side), ``color`` and ``cutout``
            (the DiffAugment operations), or "" (off). With a few dozen images the generator
            then learns their shifted and re-lit variants too; its samples show them as well.
        resume: continue from the newest checkpoint in ``out`` that passes the checks (a damaged
            newer one is skipped with a notice and set aside in ``checkpoints/set_aside/``).
        overwrite: replace a different run already in ``out``.
        checkpoint_every: steps between checkpoints (and per-class sample grids).
        log_every: steps between stats.jsonl lines and progress-bar updates.
        ema_decay: decay of the exponential moving average of the generator weights.
        keep_checkpoints: how many recent checkpoints to keep on disk.
        model_args: extra generator arguments (latent_dim, width, beta, ...).
        progress: show a tqdm progress bar.
        sync_batchnorm: under torchrun on CUDA, turn BatchNorm into ``nn.SyncBatchNorm`` so
            batch statistics come from the global batch, not each process's slice. No effect in
            one process; refused for several CPU processes. Checkpoints are unchanged, so a
            resumed run may switch it.
        resume_from: continue from the checkpoint of this step (implies ``resume``); newer
            checkpoints are set aside in ``checkpoints/set_aside/``, never deleted.
    """

    model: str = "vae"
    data: str = "digits"
    out: str = "runs/genaug"
    image_size: int = 32
    channels: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    unlabeled: bool = False
    augment: str = ""
    resume: bool = False
    overwrite: bool = False
    checkpoint_every: int = 500
    log_every: int = 50
    ema_decay: float = 0.999
    keep_checkpoints: int = 2
    model_args: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    sync_batchnorm: bool = False
    resume_from: int | None = None

    def validate(self) -> TrainConfig:
        """Raise a clear error for values no run can use; return self."""
        names = ("steps", "batch_size", "checkpoint_every", "log_every", "keep_checkpoints")
        for name in (*names, "resume_from"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise GenaugError(f"{name} must be a positive integer, got {value!r}.")
        if self.lr is not None and not self.lr > 0:
            raise GenaugError(f"lr must be positive, got {self.lr!r}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise GenaugError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}.")
        if self.channels not in (None, 1, 3):
            raise GenaugError(f"channels must be 1 or 3, got {self.channels!r}.")
        from genaug.models.diffaugment import parse_policy

        if not isinstance(self.augment, str):
            raise GenaugError(
                f"augment must be a string such as 'translation', got {self.augment!r}."
            )
        parse_policy(self.augment)  # an unknown operation: one sentence now, not mid-training
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def differences(self, other: TrainConfig) -> list[str]:
        """Names of the fields that differ and would change what the run is."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs.get(k))


def parse_model_args(items: list[str]) -> dict[str, Any]:
    """``["beta=3", "critic=runs/x"]`` -> ``{"beta": 3, "critic": "runs/x"}`` (YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise GenaugError(f"--model-arg takes KEY=VALUE (e.g. beta=3), not {item!r}.")
        value = yaml.safe_load(text) if text.strip() else None
        if isinstance(value, (dict, list)):
            raise GenaugError(
                f"--model-arg {key} takes a number, true/false or text, not {text!r}."
            )
        out[key.strip()] = text if isinstance(value, str) else value  # text as written
    return out
