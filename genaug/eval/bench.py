"""``genaug bench``: the downstream benchmark grid, with generator caching and resume.

The grid is shots x seeds x *arms*. An arm is a condition (a recipe of
:mod:`genaug.eval.recipes`) and, for generative conditions, the data its generator was trained
on (``labeled``: the k-shot images with their labels; ``pool``: every training image, labels
hidden - the semi-supervised setting; ``checkpoint:PATH``: a given generator). Non-generative
conditions do not depend on the source and run once.

Fairness: every arm of a (shots, seed) cell trains the same timm model from the same initial
weights (``init_seed = seed``) on the same k-shot subset in the same batch order
(``data_seed = seed``), with the same optimiser, schedule and number of steps. Only the
augmentation differs. ``more-real`` arms see ``factor x k`` shots per class, which contain the k
shots of the cell (the data layer draws shots as a prefix of one permutation per class and seed).

The run folder holds ``bench_config.json``, ``runs.jsonl`` (one line per finished run: an
interrupted bench resumes where it stopped), ``generators/`` (cached generator runs, resumable
too), and the report (``summary.json``, ``summary.md``, PNG plots) from :mod:`genaug.eval.report`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genaug.data import ImageDataset, few_shot_split, load_dataset, train_test_split
from genaug.device import resolve_device
from genaug.errors import GenaugError
from genaug.eval.classifier import (
    ClassifierConfig,
    check_model_name,
    create_classifier,
    train_classifier,
)
from genaug.eval.recipes import (
    CLASSIC,
    ORDERS,
    SCHEDULES,
    Recipe,
    build_pipeline,
    flips_preserve_labels,
    parse_condition,
    split_conditions,
)
from genaug.io import atomic_write_json
from genaug.models import list_generators, load_generator
from genaug.models.base import Generator, family_class, validate_image_size

__all__ = [
    "Arm",
    "BenchConfig",
    "BenchResult",
    "GeneratorSettings",
    "build_bench_config",
    "load_bench_config",
    "parse_int_list",
    "parse_seeds",
    "plan_arms",
    "report_bench",
    "run_bench",
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
    {"shots", "seeds", "conditions", "generator_data", "generators"}
    | {"device", "out", "resume", "overwrite", "progress", "preview"}
)
_TRAINING_KEYS = ("model", "steps", "batch_size", "lr", "model_args", "conditional")


@dataclass
class GeneratorSettings:
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
        mode, p, strength, schedule, order: augmentation defaults (see
            :class:`~genaug.eval.recipes.GenerativeStep`), overridable per condition.
    """

    model: str
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    conditional: bool = True
    mode: str = "auto"
    p: float = 0.5
    strength: float = 1.0
    schedule: str = "constant"
    order: str = "generative-first"

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
        for key in ("p", "strength"):
            value = getattr(settings, key)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= 1
            ):
                raise GenaugError(f"generator {name!r}: {key} must lie in [0, 1], got {value!r}.")
        if settings.schedule not in SCHEDULES or settings.order not in ORDERS:
            raise GenaugError(
                f"generator {name!r}: schedule must be one of {', '.join(SCHEDULES)} and order "
                f"one of {', '.join(ORDERS)}."
            )
        return settings

    def training(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _TRAINING_KEYS}


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
        conditions: the recipes to compare (see :mod:`genaug.eval.recipes`).
        generator_data: ``labeled``, ``pool`` and/or ``checkpoint:PATH``.
        generators: per generator name, :class:`GeneratorSettings` as a dict.
        more_real_factor: how many times the real shots the ``more-real`` reference gets.
        hflip: whether ``flipcrop`` flips (None: yes, except for digit datasets).
        device: ``auto``, ``cpu`` or ``cuda``.
        out: the run folder; resume: continue the bench there (same settings); overwrite:
            replace it. progress: a progress bar over the grid. preview: images per condition
            in ``augmented.png`` (0: none).
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
    generators: dict[str, dict[str, Any]] = field(default_factory=dict)
    more_real_factor: int = 2
    hflip: bool | None = None
    device: str = "auto"
    out: str = "runs/bench"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    preview: int = 8

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
        if not isinstance(self.preview, int) or self.preview < 0:
            raise GenaugError(f"preview must be 0 or a positive integer, got {self.preview!r}.")
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
            f"({_first_line(exc)}); fix the file."
        ) from None
    if not isinstance(values, dict):
        raise GenaugError(f"bench config {path} must hold a mapping of settings (key: value).")
    return values


def parse_int_list(text: str) -> list[int]:
    """``"1,2,5"`` -> ``[1, 2, 5]`` (for command-line flags)."""
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise GenaugError(
            f"{text!r} is not a comma-separated list of integers, e.g. 1,2,5."
        ) from None
    if not values:
        raise GenaugError(f"{text!r} holds no integers; write e.g. 1,2,5.")
    return values


def parse_seeds(text: str) -> list[int]:
    """``"10"`` -> seeds 0..9; ``"3,7"`` -> seeds 3 and 7 (for command-line flags)."""
    values = parse_int_list(text)
    if len(values) == 1 and "," not in str(text):
        if values[0] < 1:
            raise GenaugError(f"--seeds {text} asks for no seeds; give a count >= 1 or a list.")
        return list(range(values[0]))
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
    values.update({k: v for k, v in settings.items() if v is not None})
    config = BenchConfig.from_dict(values)
    if isinstance(config.conditions, str):
        config.conditions = split_conditions(config.conditions)
    names = set(list_generators()) | set(config.generators)
    used = {
        part.partition("@")[0].strip().lower()
        for condition in config.conditions
        for part in str(condition).split("+")
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


# ---------------------------------------------------------------------------- the grid's arms
@dataclass(frozen=True)
class Arm:
    """One column of the grid: a condition and, for generative ones, its generator's data."""

    recipe: Recipe
    source: str | None  # "labeled", "pool", "checkpoint:PATH" or None

    @property
    def condition(self) -> str:
        return self.recipe.name

    @property
    def source_label(self) -> str | None:
        if self.source is None:
            return None
        return "checkpoint" if self.source.startswith("checkpoint:") else self.source

    @property
    def label(self) -> str:
        """Display name, e.g. ``randaugment+vae [pool]``."""
        return self.condition + (f" [{self.source_label}]" if self.source else "")

    @property
    def key(self) -> str:
        return f"{self.condition}|{self.source or '-'}"


def _generator_family(name: str) -> str:
    """The family of a registered generator name (built tiny, once)."""
    from genaug.models import create_generator

    if name not in _FAMILY_CACHE:
        _FAMILY_CACHE[name] = create_generator(name, image_size=16, channels=1).family
    return _FAMILY_CACHE[name]


_FAMILY_CACHE: dict[str, str] = {}


def plan_arms(
    config: BenchConfig, dataset: ImageDataset, skipped: list[dict[str, str]] | None = None
) -> list[Arm]:
    """Parse the conditions and check each generative one can run with its sources.

    A (condition, source) pair that cannot run - a GAN (no encoder) from the unlabelled pool is
    unconditional and cannot make an image of a given class - raises, unless ``skipped`` is a
    list: then the pair is left out and recorded there with the reason, and only a condition
    that runs with no source at all raises.
    """
    from genaug.transforms.core import resolve_mode

    names = sorted(set(list_generators()) | set(config.generators))
    arms: list[Arm] = []
    seen: set[str] = set()
    for text in config.conditions:
        part_names = [p.partition("@")[0].strip().lower() for p in str(text).split("+")]
        defaults = {n: config.generator_settings(n).__dict__ for n in part_names if n in names}
        recipe = parse_condition(text, names, defaults)
        if recipe.name in seen:
            raise GenaugError(f"condition {recipe.name!r} is listed twice; list it once.")
        seen.add(recipe.name)
        step = recipe.generative
        if step is None:
            arms.append(Arm(recipe, None))
            continue
        settings = config.generator_settings(step.generator)
        family = _generator_family(settings.model)
        cls = family_class(family)
        reasons: list[str] = []
        for source in config.generator_data:
            if source.startswith("checkpoint:"):
                model = load_generator(source.partition(":")[2])
                if model.family != family:
                    raise GenaugError(
                        f"condition {recipe.name!r} names a {family} generator but "
                        f"{source.partition(':')[2]} holds a {model.family}; name the "
                        f"checkpoint's family ({model.family}) in the condition."
                    )
                conditional = model.conditional
                if conditional and model.num_classes != dataset.num_classes:
                    raise GenaugError(
                        f"the generator in {source.partition(':')[2]} knows {model.num_classes} "
                        f"classes but {config.data} has {dataset.num_classes}; use a generator "
                        "trained on this data."
                    )
            else:
                try:
                    validate_image_size(config.image_size)
                except GenaugError:
                    raise GenaugError(
                        f"condition {recipe.name!r} trains a {family} generator, which cannot be "
                        f"trained at {config.image_size} px; use --image-size 16, 32, 64 or 128."
                    ) from None
                conditional = source == "labeled" and settings.conditional
            mode = resolve_mode(step.mode, cls.has_encoder, conditional, family)
            if mode == "resample" and not conditional:
                why = (
                    "is trained on the unlabelled pool (unconditional)"
                    if source == "pool"
                    else "is unconditional"
                )
                reason = (
                    f"condition {recipe.name!r} cannot run with generator data {source}: a "
                    f"{family} generator has no encoder and this one {why}, so it cannot make "
                    "an image of a given class; use generator data labeled (conditional) for "
                    f"{family}, or a family with an encoder (vae, cgan)."
                )
                if skipped is None:
                    raise GenaugError(reason)
                reasons.append(reason)
                skipped.append({"arm": Arm(recipe, source).label, "reason": reason})
                continue
            arms.append(Arm(recipe, source))
        if reasons and len(reasons) == len(config.generator_data):
            raise GenaugError(reasons[0])
    return arms


# ---------------------------------------------------------------------------- run folder
def _prepare_out(config: BenchConfig) -> Path:
    out = Path(config.out)
    saved = out / CONFIG_NAME
    if out.exists() and not out.is_dir():
        raise GenaugError(f"{out} is a file, not a folder; choose another --out.")
    if out.exists() and any(out.iterdir()):
        if not saved.is_file():
            raise GenaugError(
                f"{out} holds files that are not a genaug bench, so the bench will not write "
                "there; choose another --out."
            )
        try:
            previous = json.loads(saved.read_text())
        except (OSError, json.JSONDecodeError):
            previous = None
        if config.overwrite:
            shutil.rmtree(out)
        elif not config.resume:
            raise GenaugError(
                f"{out} already holds a bench; pass --resume to continue it (same settings), "
                "--overwrite to replace it, or choose another --out."
            )
        elif not isinstance(previous, dict):
            raise GenaugError(
                f"{saved} is unreadable, so the bench there cannot be resumed; pass "
                "--overwrite to replace it."
            )
        else:
            changed = config.differences(previous)
            if changed:
                raise GenaugError(
                    f"{out} holds a bench with different settings ({', '.join(changed)}); resume "
                    "with the same settings, or pass --overwrite to replace it."
                )
            # Keep the settings of generators trained before that this config does not name.
            merged = dict(previous.get("generators") or {})
            merged.update(config.generators)
            config.generators = merged
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(saved, config.to_dict())
    return out


def read_runs(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The finished runs in a ``runs.jsonl`` by key (a torn last line is ignored)."""
    runs: dict[str, dict[str, Any]] = {}
    path = Path(path)
    if not path.is_file():
        return runs
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash: that run is done again
        if isinstance(record, dict) and "key" in record:
            runs[record["key"]] = record
    return runs


def _append_run(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        if f.tell() and not _ends_with_newline(path):
            f.write("\n")  # after a torn line, start a fresh one
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def run_key(shots: int, seed: int, arm: Arm) -> str:
    return f"{shots}|{seed}|{arm.key}"


def _stable_seed(*parts: Any) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


# ---------------------------------------------------------------------------- generators
class GeneratorCache:
    """Generators trained once per (name, source, seed[, shots]) under ``generators/``."""

    def __init__(self, root: Path, config: BenchConfig, dataset: ImageDataset) -> None:
        self.root = root
        self.config = config
        self.dataset = dataset
        self.device = resolve_device(config.device)
        self._loaded: OrderedDict[str, tuple[Generator, dict[str, Any]]] = OrderedDict()
        self._pool_data: ImageDataset | None = None

    def folder(self, name: str, source: str, seed: int, shots: int) -> Path:
        tail = f"-shots{shots}" if source == "labeled" else ""
        return self.root / f"{name}-{source}-seed{seed}{tail}"

    def _training_data(self, source: str, labeled: ImageDataset) -> ImageDataset:
        if source == "labeled":
            return labeled
        if self._pool_data is None:  # every training image (labelled shots + pool), no labels
            train_part, _ = train_test_split(
                self.dataset, self.config.test_fraction, self.config.test_seed
            )
            self._pool_data = train_part.without_labels()
        return self._pool_data

    def get(
        self, name: str, source: str, seed: int, shots: int, labeled: ImageDataset, train: bool
    ) -> tuple[Generator, dict[str, Any]] | None:
        """The generator for a run (training it if needed and ``train``), and facts about it."""
        if source.startswith("checkpoint:"):
            key = source
        else:
            key = str(self.folder(name, source, seed, shots))
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        if source.startswith("checkpoint:"):
            path = source.partition(":")[2]
            model = load_generator(path, device=self.device)
            info = {"checkpoint": str(path), "train_seconds": None, "steps": None}
        else:
            loaded = self._load_or_train(name, source, seed, shots, labeled, train)
            if loaded is None:
                return None
            model, info = loaded
        self._loaded[key] = (model, info)
        while len(self._loaded) > 4:
            self._loaded.popitem(last=False)
        return model, info

    def _load_or_train(
        self, name: str, source: str, seed: int, shots: int, labeled: ImageDataset, train: bool
    ) -> tuple[Generator, dict[str, Any]] | None:
        from genaug.train import TrainConfig
        from genaug.train import train as train_generator
        from genaug.train.loop import RUN_CONFIG, latest_step

        settings = self.config.generator_settings(name)
        folder = self.folder(name, source, seed, shots)
        facts_path = folder / "bench_generator.json"
        if facts_path.is_file():
            facts = json.loads(facts_path.read_text())
            model = load_generator(folder, device=self.device)
            return model, facts
        if not train:
            return None
        data = self._training_data(source, labeled)
        config = TrainConfig(
            model=settings.model,
            data=self.config.data,
            out=str(folder),
            image_size=self.config.image_size,
            channels=data.channels,
            steps=settings.steps,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=seed,
            device=self.config.device,
            amp=self.config.amp,
            unlabeled=source == "pool" or not settings.conditional,
            checkpoint_every=max(250, (settings.steps or 1000) // 2),
            log_every=50,
            model_args=dict(settings.model_args),
            progress=False,
        )
        done_steps = latest_step(folder) if (folder / RUN_CONFIG).is_file() else None
        if done_steps is not None:
            saved = json.loads((folder / RUN_CONFIG).read_text())
            if done_steps >= saved.get("steps", done_steps + 1):  # finished, facts not written
                facts = {
                    "folder": str(folder.relative_to(self.root.parent)),
                    "model": settings.model,
                }
                facts.update(source=source, seed=seed, images=len(data), steps=done_steps)
                facts.update(train_seconds=None, resumed=True)
                atomic_write_json(facts_path, facts)
                return load_generator(folder, device=self.device), facts
            config.resume = True  # an interrupted training run goes on where it stopped
        elif folder.exists():
            shutil.rmtree(folder)  # a folder without a checkpoint holds nothing worth keeping
        started = time.perf_counter()
        result = train_generator(config, dataset=data)
        facts = {
            "folder": str(folder.relative_to(self.root.parent)),
            "model": settings.model,
            "source": source,
            "seed": seed,
            "images": len(data),
            "steps": result.steps,
            "train_seconds": round(time.perf_counter() - started, 3),
            "resumed": config.resume,
        }
        atomic_write_json(facts_path, facts)
        return result.model.eval(), facts


# ---------------------------------------------------------------------------- running
@dataclass
class BenchResult:
    """What :func:`run_bench` returns."""

    out: Path
    summary: dict[str, Any]
    files: dict[str, str]
    ran: int  # runs done by this call
    reused: int  # runs found finished in runs.jsonl


def _run_one(
    config: BenchConfig,
    arm: Arm,
    shots: int,
    seed: int,
    split: Any,
    more_real: Any,
    cache: GeneratorCache,
) -> dict[str, Any]:
    recipe = arm.recipe
    labeled = more_real if recipe.more_real else split.labeled
    generator, facts = None, None
    if recipe.generative is not None:
        got = cache.get(recipe.generative.generator, arm.source, seed, shots, split.labeled, True)
        generator, facts = got
    augment_seed = _stable_seed(seed, shots, arm.key)
    pipeline = build_pipeline(
        recipe, config.image_size, config.allow_flip(), generator, seed=augment_seed + 1
    )
    result = train_classifier(
        config.classifier(),
        labeled.images,
        labeled.targets,
        split.test.images,
        split.test.targets,
        split.test.num_classes,
        augment=pipeline,
        init_seed=seed,
        data_seed=seed,
        augment_seed=augment_seed,
    )
    return {
        "key": run_key(shots, seed, arm),
        "shots": shots,
        "seed": seed,
        "condition": arm.condition,
        "source": arm.source_label,
        "source_spec": arm.source,
        "arm": arm.label,
        "kind": recipe.kind,
        "generative": recipe.generative.settings() if recipe.generative else None,
        "accuracy": result.accuracy,
        "macro_f1": result.macro_f1,
        "train_seconds": round(result.train_seconds, 3),
        "augment_seconds": round(result.augment_seconds, 3),
        "augment_ms_per_step": round(1000 * result.augment_seconds / result.steps, 3),
        "steps": result.steps,
        "train_images": result.train_images,
        "test_images": len(split.test),
        "subset_fingerprint": _subset_fingerprint(split.labeled),
        "train_fingerprint": _subset_fingerprint(labeled),
        "init_fingerprint": result.init_fingerprint,
        "generator": facts,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _subset_fingerprint(dataset: ImageDataset) -> str:
    """A short hash of a labelled subset's images and targets (equal subsets <-> equal hash)."""
    import hashlib

    digest = hashlib.sha1(dataset.images.numpy().tobytes())
    digest.update(dataset.targets.numpy().tobytes())
    return digest.hexdigest()[:16]


def _check_shots(config: BenchConfig, dataset: ImageDataset, arms: list[Arm]) -> None:
    """Every shot count (and its more-real multiple) fits every class: else one sentence."""
    needs_more = any(arm.recipe.more_real for arm in arms)
    for shots in config.shots:
        few_shot_split(dataset, shots, config.seeds[0], config.test_fraction, config.test_seed)
        if needs_more:
            more = shots * config.more_real_factor
            try:
                few_shot_split(
                    dataset, more, config.seeds[0], config.test_fraction, config.test_seed
                )
            except GenaugError as exc:
                raise GenaugError(
                    f"the more-real reference needs {config.more_real_factor} x {shots} = {more} "
                    f"shots per class, but {str(exc)[0].lower()}{str(exc)[1:]}"
                ) from None


def run_bench(config: BenchConfig, command: str | None = None) -> BenchResult:
    """Run (or resume) a benchmark grid and write its report; returns the summary.

    Example: ``run_bench(BenchConfig(shots=[1, 5], seeds=[0, 1, 2], out="runs/bench"))``.
    Raises :class:`GenaugError` for bad settings before any run starts.
    """
    config = dataclasses.replace(config).validate()
    check_model_name(config.model)
    dataset = load_dataset(config.data, image_size=config.image_size, channels=config.channels)
    if dataset.num_classes < 2:
        raise GenaugError(f"{config.data} has fewer than two classes; a classifier needs two.")
    skipped: list[dict[str, str]] = []
    arms = plan_arms(config, dataset, skipped)
    _check_shots(config, dataset, arms)
    create_classifier(  # a model that cannot take the images fails here, before any run
        config.model,
        in_chans=dataset.channels,
        num_classes=dataset.num_classes,
        image_size=config.image_size,
        pretrained_file=config.pretrained_file,
    )
    used = {a.recipe.generative.generator for a in arms if a.recipe.generative is not None}
    for name in sorted(used):  # record every generator's resolved settings
        config.generators[name] = dataclasses.asdict(config.generator_settings(name))
    out = _prepare_out(config)
    runs_path = out / RUNS_NAME
    done = read_runs(runs_path)
    grid = [(k, s, arm) for k in config.shots for s in config.seeds for arm in arms]
    reused = sum(run_key(k, s, arm) in done for k, s, arm in grid)
    cache = GeneratorCache(out / GENERATORS_DIR, config, dataset)
    ran = 0
    bar = tqdm(total=len(grid), initial=reused, disable=not config.progress, desc="bench")
    try:
        for shots in config.shots:
            for seed in config.seeds:
                todo = [arm for arm in arms if run_key(shots, seed, arm) not in done]
                if not todo:
                    continue
                split = few_shot_split(dataset, shots, seed, config.test_fraction, config.test_seed)
                more_real = None
                if any(arm.recipe.more_real for arm in todo):
                    more_real = few_shot_split(
                        dataset,
                        shots * config.more_real_factor,
                        seed,
                        config.test_fraction,
                        config.test_seed,
                    ).labeled
                for arm in todo:
                    bar.set_postfix_str(f"{shots}-shot seed {seed} {arm.label}")
                    record = _run_one(config, arm, shots, seed, split, more_real, cache)
                    _append_run(runs_path, record)
                    done[record["key"]] = record
                    ran += 1
                    bar.update(1)
    finally:
        bar.close()
    summary, files = _write_report(out, config, arms, dataset, done, cache, command, skipped)
    return BenchResult(out=out, summary=summary, files=files, ran=ran, reused=reused)


def report_bench(out: str | os.PathLike, command: str | None = None) -> BenchResult:
    """Write the report of a bench folder from the runs finished so far (no training)."""
    out = Path(out)
    saved = out / CONFIG_NAME
    if not saved.is_file():
        raise GenaugError(f"{out} holds no genaug bench ({CONFIG_NAME} is missing).")
    config = BenchConfig.from_dict(json.loads(saved.read_text())).validate()
    dataset = load_dataset(config.data, image_size=config.image_size, channels=config.channels)
    skipped: list[dict[str, str]] = []
    arms = plan_arms(config, dataset, skipped)
    cache = GeneratorCache(out / GENERATORS_DIR, config, dataset)
    summary, files = _write_report(
        out, config, arms, dataset, read_runs(out / RUNS_NAME), cache, command, skipped
    )
    return BenchResult(out=out, summary=summary, files=files, ran=0, reused=0)


def _write_report(
    out: Path,
    config: BenchConfig,
    arms: list[Arm],
    dataset: ImageDataset,
    done: dict[str, dict[str, Any]],
    cache: GeneratorCache,
    command: str | None,
    skipped: list[dict[str, str]],
) -> tuple[dict[str, Any], dict[str, str]]:
    from genaug.eval.report import write_report

    grid = [(k, s, arm) for k in config.shots for s in config.seeds for arm in arms]
    records = [done[run_key(k, s, a)] for k, s, a in grid if run_key(k, s, a) in done]
    preview = _preview_rows(config, arms, dataset, cache) if config.preview else []
    return write_report(
        out,
        config=config.to_dict(),
        arms=[{"arm": a.label, "condition": a.condition, "source": a.source_label} for a in arms],
        records=records,
        expected_runs=len(grid),
        preview=preview,
        command=command,
        skipped=skipped,
    )


def _preview_rows(
    config: BenchConfig, arms: list[Arm], dataset: ImageDataset, cache: GeneratorCache
) -> list[tuple[str, torch.Tensor]]:
    """A few training images per arm after augmentation (first shot count, first seed)."""
    from genaug.train.loop import batch_indices

    shots, seed = config.shots[0], config.seeds[0]
    split = few_shot_split(dataset, shots, seed, config.test_fraction, config.test_seed)
    rows: list[tuple[str, torch.Tensor]] = []
    state = torch.random.get_rng_state()
    try:
        for arm in arms:
            labeled = split.labeled
            if arm.recipe.more_real:
                labeled = few_shot_split(
                    dataset,
                    shots * config.more_real_factor,
                    seed,
                    config.test_fraction,
                    config.test_seed,
                ).labeled
            generator = None
            if arm.recipe.generative is not None:
                got = cache.get(
                    arm.recipe.generative.generator, arm.source, seed, shots, split.labeled, False
                )
                if got is None:  # not trained yet (a partial report): leave the arm out
                    continue
                generator = got[0]
            index = batch_indices(0, config.preview, len(labeled), seed)
            images, labels = labeled.images[index], labeled.targets[index]
            augment_seed = _stable_seed(seed, shots, arm.key)
            pipeline = build_pipeline(
                arm.recipe, config.image_size, config.allow_flip(), generator, augment_seed + 1
            )
            torch.manual_seed(augment_seed)
            if pipeline is not None:  # show the generated share at its largest
                warmup = arm.recipe.generative and arm.recipe.generative.schedule == "warmup"
                pipeline.set_progress(1.0 if warmup else 0.0)
                images, labels = pipeline(images, labels)
            rows.append((arm.label, images))
    finally:
        torch.random.set_rng_state(state)
    return rows
