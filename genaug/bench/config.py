"""Settings of a ``genaug bench`` grid: :class:`BenchConfig`, per-generator settings, and
reading them from YAML/JSON files and command-line flags."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genaug.bench.classifier import ClassifierConfig
from genaug.bench.episodic import check_episodic_settings, episodes_setting
from genaug.bench.flags import parse_int_list, parse_seeds
from genaug.bench.parts import normalise_parts, parts_axes
from genaug.bench.pretrain import check_pretrain_settings, split_start
from genaug.bench.recipes import (
    CLASSIC,
    ORDERS,
    SCHEDULES,
    AugmentSettings,
    flips_preserve_labels,
    split_conditions,
)
from genaug.errors import GenaugError, first_line
from genaug.models import list_generators
from genaug.transforms.checks import SPACES, WALKS

__all__ = [
    "BenchConfig",
    "GeneratorSettings",
    "build_bench_config",
    "load_bench_config",
    "parse_int_list",
    "parse_seeds",
]

CONFIG_NAME = "bench_config.json"
RUNS_NAME = "runs.jsonl"
GENERATORS_DIR = "generators"
SOURCES = ("labeled", "pool")
DEFAULT_CONDITIONS = [
    "none",
    *CLASSIC,
    "vae",
    *(f"{c}+vae" for c in CLASSIC),
    "more-real",
]
# Fields that may differ between a bench and its resumption: the grid's axes (runs are keyed by
# shots, seed, condition and source, so a grid may grow or shrink) and where/how it runs.
AXES_AND_RUNTIME = frozenset(
    {"shots", "seeds", "conditions", "generator_data", "generators", "parts"}
    # The base classifier's settings: its record is checked instead.
    | {"pretrain_data", "pretrain_steps", "pretrain_augment", "pretrain_generator"}
    | {"pretrained_from"}
    | {"device", "out", "resume", "overwrite", "progress", "preview", "workers"}
)


@dataclass(frozen=True, kw_only=True)
class GeneratorSettings(AugmentSettings):
    """How the generator named in conditions is trained, and its augmentation defaults.

    A condition names a registered generator (``vae``) or a key of ``BenchConfig.generators``
    whose ``model`` is registered: ``{"vae_beta4": {"model": "vae", "model_args": {"beta": 4}}}``
    makes ``randaugment+vae_beta4`` a condition beside ``randaugment+vae``.

    Attributes:
        model: registered generator name to train (defaults to the name used in conditions).
        steps, batch_size, lr: training budget (None: the family's defaults).
        model_args: extra generator arguments (latent_dim, width, beta...).
        conditional: for the ``labeled`` source, condition the generator on the shot labels
            (a ``pool`` generator is always unconditional: the pool's labels are never used).
        train_augment: the generator's own training augmentation (``translation``, ``color``,
            ``cutout``, comma-separated; "" off): see ``TrainConfig.augment``.
        The :class:`~genaug.bench.recipes.AugmentSettings` fields (mode, p, strength, schedule,
        order, k, hops, guide, detail, walk, space, jitter, backtrack) are the augmentation
        defaults, overridable per condition.
    """

    model: str
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    conditional: bool = True
    train_augment: str = ""

    @classmethod
    def from_dict(cls, name: str, values: dict[str, Any] | None) -> GeneratorSettings:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GenaugError(
                f"generator settings for {name!r} have unknown keys {', '.join(unknown)}; "
                f"use {', '.join(sorted(known))}."
            )
        values.setdefault("model", name)
        settings = cls(**values)
        for key in ("p", "strength", "detail", "jitter"):
            value = getattr(settings, key)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= 1
            ):
                raise GenaugError(f"generator {name!r}: {key} must lie in [0, 1], got {value!r}.")
        from genaug.models.diffaugment import parse_policy

        if not isinstance(settings.train_augment, str):
            raise GenaugError(
                f"generator {name!r}: train_augment must be a string such as 'translation', "
                f"got {settings.train_augment!r}."
            )
        parse_policy(settings.train_augment)
        for key in ("guide", "backtrack"):
            if not isinstance(getattr(settings, key), bool):
                raise GenaugError(
                    f"generator {name!r}: {key} must be true or false, got "
                    f"{getattr(settings, key)!r}."
                )
        for key, options in (("walk", WALKS), ("space", SPACES)):
            if getattr(settings, key) not in options:
                raise GenaugError(
                    f"generator {name!r}: {key} must be one of {', '.join(options)}, got "
                    f"{getattr(settings, key)!r}."
                )
        if settings.schedule not in SCHEDULES or settings.order not in ORDERS:
            raise GenaugError(
                f"generator {name!r}: schedule must be one of {', '.join(SCHEDULES)} and order "
                f"one of {', '.join(ORDERS)}."
            )
        return settings


@dataclass
class BenchConfig:
    """A benchmark grid; blank fields take the defaults below. Saved as ``bench_config.json``.

    Attributes:
        data: dataset spec (``digits``, ``imagefolder:PATH``, ``mnist:ROOT``...).
        image_size, channels: what the images are loaded as (channels None: native).
        test_fraction, test_seed: the fixed real test set (the same for every seed).
        shots: labelled images per class, one grid axis.
        seeds: the seeds (each one: its own k-shot subset, init and generator).
        model, pretrained_file, steps, batch_size, lr, weight_decay, label_smoothing, amp:
            the timm classifier and its training (see :class:`ClassifierConfig`).
        conditions: the recipes to compare (see :mod:`genaug.bench.recipes`).
        generator_data: ``labeled``, ``pool`` and/or ``checkpoint:PATH``.
        parts: optional (conditions x shots x generator data) blocks whose union is the grid,
            each ``{conditions, shots?, generator_data?, name?}`` (see
            :mod:`genaug.bench.parts`); empty: every condition x shots x generator data.
        generators: per generator name, :class:`GeneratorSettings` as a dict.
        pool_per_seed: True (the published benchmarks): the ``pool`` source trains one
            generator per seed (``generators/NAME-pool-seedS``, seeded by S), so each seed's
            interval includes the generator's training noise. False: one pool generator per
            name, trained once (seed 0, ``generators/NAME-pool-shared``) and used by every
            seed - the pool is the same images for every seed (the whole training part, labels
            hidden), so this saves ``len(seeds) - 1`` trainings; the intervals then hold for
            that one generator. ``labeled`` generators stay per (seed, shots).
        more_real_factor: how many times the real shots the ``more-real`` reference gets.
        hflip: whether ``flipcrop`` flips (None: yes, except for digit datasets).
        ways, queries: the episodic protocol (ways None: off), seeds = episode numbers; see
            :mod:`genaug.bench.episodic`. pretrain_data, pretrain_steps, pretrain_augment,
            pretrain_generator, pretrained_from, finetune_lr: the base classifier of ``base:``
            conditions (:mod:`~.pretrain`).
        device: ``auto``, ``cpu`` or ``cuda``.
        out: the run folder; resume: continue the bench there (same settings); overwrite:
            replace it. progress: a progress bar over the grid. preview: images per condition
            in ``augmented.png`` (0: none). workers: classifier runs in parallel CPU
            processes, one thread each (:mod:`genaug.bench.workers`; results do not change).
    """

    data: str = "digits"
    image_size: int = 32
    channels: int | None = None
    test_fraction: float = 0.3
    test_seed: int = 0
    shots: list[int] = field(default_factory=lambda: [1, 2, 5, 10])
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    model: str = "resnet10t"
    pretrained_file: str | None = None
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    amp: bool = True
    conditions: list[str] = field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    generator_data: list[str] = field(default_factory=lambda: ["pool"])
    parts: list[dict[str, Any]] = field(default_factory=list)
    generators: dict[str, dict[str, Any]] = field(default_factory=dict)
    pool_per_seed: bool = True
    more_real_factor: int = 2
    hflip: bool | None = None
    ways: int | None = None
    queries: int | None = None
    pretrain_data: str | None = None
    pretrain_steps: int = 2000
    pretrain_augment: str = "randaugment"
    pretrain_generator: str | None = None
    pretrained_from: str | None = None
    finetune_lr: float | None = None
    device: str = "auto"
    out: str = "runs/bench"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    preview: int = 8
    workers: int = 1

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BenchConfig:
        if not isinstance(values, dict):
            raise GenaugError(
                f"a bench config must be a mapping of settings, got {type(values).__name__}."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GenaugError(
                f"unknown bench setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        return cls(**values)

    def classifier(self) -> ClassifierConfig:
        return ClassifierConfig(
            model=self.model,
            pretrained_file=self.pretrained_file,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            label_smoothing=self.label_smoothing,
            device=self.device,
            amp=self.amp,
        )

    def generator_settings(self, name: str) -> GeneratorSettings:
        return GeneratorSettings.from_dict(name, self.generators.get(name))

    def allow_flip(self) -> bool:
        return flips_preserve_labels(self.data) if self.hflip is None else bool(self.hflip)

    # ------------------------------------------------------------------ checks
    def validate(self) -> BenchConfig:
        """Raise one clear sentence for values no bench can use; return self."""

        def int_list(name: str, minimum: int) -> list[int]:
            values = getattr(self, name)
            if isinstance(values, int) and not isinstance(values, bool):
                values = [values]
            if (
                not isinstance(values, (list, tuple))
                or not values
                or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values)
            ):
                raise GenaugError(
                    f"{name} must be a non-empty list of integers >= {minimum}, got {values!r}."
                )
            if len(set(values)) != len(values):
                raise GenaugError(f"{name} lists a value twice: {values!r}; list each once.")
            return list(values)

        self.shots = int_list("shots", 1)
        self.seeds = int_list("seeds", 0)
        self.classifier().validate()
        if isinstance(self.conditions, str):
            self.conditions = split_conditions(self.conditions)
        if not self.conditions:
            raise GenaugError("conditions is empty; name at least one (e.g. none,randaugment).")
        if isinstance(self.generator_data, str):
            self.generator_data = [g for g in self.generator_data.split(",") if g.strip()]
        for source in self.generator_data:
            if source not in SOURCES and not str(source).startswith("checkpoint:"):
                raise GenaugError(
                    f"unknown generator data {source!r}; use labeled, pool or checkpoint:PATH."
                )
        if len(set(self.generator_data)) != len(self.generator_data):
            raise GenaugError(f"generator_data lists a source twice: {self.generator_data!r}.")
        if not isinstance(self.generators, dict):
            raise GenaugError("generators must map generator names to their settings.")
        for name, values in self.generators.items():
            GeneratorSettings.from_dict(name, values)
        self.parts = normalise_parts(self.parts)
        if not isinstance(self.pool_per_seed, bool):
            raise GenaugError(f"pool_per_seed must be true or false, got {self.pool_per_seed!r}.")
        if (
            isinstance(self.more_real_factor, bool)
            or not isinstance(self.more_real_factor, int)
            or self.more_real_factor < 2
        ):
            raise GenaugError(
                f"more_real_factor must be an integer >= 2, got {self.more_real_factor!r}."
            )
        if not 0.0 < float(self.test_fraction) < 1.0:
            raise GenaugError(f"test_fraction must lie in (0, 1), got {self.test_fraction!r}.")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise GenaugError(f"workers must be an integer >= 1, got {self.workers!r}.")
        if not isinstance(self.preview, int) or self.preview < 0:
            raise GenaugError(f"preview must be 0 or a positive integer, got {self.preview!r}.")
        check_episodic_settings(self)
        check_pretrain_settings(self)
        return self

    def differences(self, previous: dict[str, Any]) -> list[str]:
        """Settings that differ from a saved config and change what a finished run measured."""
        mine = self.to_dict()
        changed = sorted(
            k for k in mine if k not in AXES_AND_RUNTIME and mine[k] != previous.get(k, mine[k])
        )
        saved = previous.get("generators") or {}
        for name in sorted(set(self.generators) & set(saved)):
            try:
                before = GeneratorSettings.from_dict(name, saved[name])
            except GenaugError:
                changed.append(f"generators.{name}")
                continue
            if before != self.generator_settings(name):
                changed.append(f"generators.{name}")
        return changed


def load_bench_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read bench settings from a YAML or JSON file (a mapping of BenchConfig fields)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise GenaugError(f"cannot read bench config {path} ({exc.strerror or exc}).") from None
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as exc:  # yaml and json raise their own error types
        raise GenaugError(
            f"bench config {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'} "
            f"({first_line(exc)}); fix the file."
        ) from None
    if not isinstance(values, dict):
        raise GenaugError(f"bench config {path} must hold a mapping of settings (key: value).")
    return values


def build_bench_config(
    config_file: str | os.PathLike | None = None,
    generator_steps: int | None = None,
    generative: dict[str, Any] | None = None,
    **settings: Any,
) -> BenchConfig:
    """A BenchConfig from an optional YAML/JSON file, overridden by the non-None ``settings``.

    ``generator_steps`` and ``generative`` (mode, p, strength, ...) apply to every generator
    the conditions name. This is what ``genaug bench`` calls.
    """
    values = load_bench_config(config_file) if config_file else {}
    values = episodes_setting(values, f"bench config {config_file}")  # episodes: the seeds
    if values.get("parts"):  # checked against the file's own axes, before flags narrow them
        named = values.get("generators") if isinstance(values.get("generators"), dict) else {}
        known = sorted(set(list_generators()) | set(named))
        values = parts_axes(values, known, f"bench config {config_file}")
    values.update({k: v for k, v in settings.items() if v is not None})
    config = BenchConfig.from_dict(values)
    if isinstance(config.conditions, str):
        config.conditions = split_conditions(config.conditions)
    names = set(list_generators()) | set(config.generators)
    used = {
        part.partition("@")[0].strip().lower()
        for condition in config.conditions
        for part in split_start(str(condition))[0].split("+")
    } & names
    extra = {k: v for k, v in (generative or {}).items() if v is not None}
    if generator_steps is not None:
        extra["steps"] = generator_steps
    if extra:
        generators = {k: dict(v or {}) for k, v in config.generators.items()}
        for name in sorted(used):
            generators.setdefault(name, {}).update(extra)
        config.generators = generators
    return config
