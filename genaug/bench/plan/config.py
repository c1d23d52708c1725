"""Settings of a ``genaug bench`` grid: :class:`BenchConfig`, saved as ``bench_config.json``.

Each field declares its command-line flag beside it (:mod:`genaug.bench.plan.flags`), or that it
is set in a config file only; reading files and flags is :mod:`genaug.bench.plan.files`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from genaug.bench.plan.classifier_config import ClassifierConfig
from genaug.bench.plan.flags import (
    FILE_ONLY,
    flag,
    parse_comma_list,
    parse_int_list,
    parse_seeds,
    positive_int,
)
from genaug.bench.plan.generators import GeneratorSettings
from genaug.bench.plan.parts import normalise_parts
from genaug.bench.plan.recipes import (
    CLASSIC,
    Recipe,
    flips_preserve_labels,
    parse_condition,
    split_conditions,
    split_start,
)
from genaug.errors import GenaugError
from genaug.models import list_generators

__all__ = ["CONFIG_NAME", "GENERATORS_DIR", "RUNS_NAME", "BenchConfig"]

# What a bench folder holds (besides its report).
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
        conditions: the recipes to compare (see :mod:`genaug.bench.plan.recipes`).
        generator_data: ``labeled``, ``pool`` and/or ``checkpoint:PATH``.
        parts: optional (conditions x shots x generator data) blocks whose union is the grid,
            each ``{conditions, shots?, generator_data?, name?}`` (see
            :mod:`genaug.bench.plan.parts`); empty: every condition x shots x generator data.
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
            :mod:`genaug.bench.plan.splits`. pretrain_data, pretrain_steps, pretrain_augment,
            pretrain_generator, pretrained_from, finetune_lr: the base classifier of ``base:``
            conditions (:mod:`genaug.bench.learn.base_classifier`).
        device: ``auto``, ``cpu`` or ``cuda``.
        out: the run folder; resume: continue the bench there (same settings); overwrite:
            replace it. progress: a progress bar over the grid. preview: images per condition
            in ``augmented.png`` (0: none). workers: classifier runs in parallel CPU
            processes, one thread each (:mod:`genaug.bench.run.workers`; results do not change).
    """

    data: str = field(default="digits", metadata=flag("digits | imagefolder:PATH | mnist:ROOT ..."))
    image_size: int = field(default=32, metadata=flag("pixels (default 32)", positive_int))
    channels: int | None = field(
        default=None, metadata=flag("default: the data's own", int, choices=(1, 3))
    )
    test_fraction: float = field(default=0.3, metadata=flag("real test share (default 0.3)", float))
    test_seed: int = field(default=0, metadata=flag("test split (or episode stream) seed", int))
    shots: list[int] = field(
        default_factory=lambda: [1, 2, 5, 10],
        metadata=flag("labelled images per class, e.g. 1,2,5,10", parse=parse_int_list),
    )
    seeds: list[int] = field(
        default_factory=lambda: list(range(10)),
        metadata=flag("a count (10: seeds 0-9) or a list (3,7)", parse=parse_seeds),
    )
    model: str = field(default="resnet10t", metadata=flag("timm classifier (default resnet10t)"))
    pretrained_file: str | None = field(
        default=None, metadata=flag("local weights for the timm model")
    )
    steps: int = field(default=300, metadata=flag("classifier steps (default 300)", positive_int))
    batch_size: int = field(
        default=32, metadata=flag("classifier batch (default 32)", positive_int)
    )
    lr: float = field(default=2e-3, metadata=flag("classifier peak lr (default 2e-3)", float))
    weight_decay: float = field(default=0.05, metadata=flag("AdamW weight decay", float))
    label_smoothing: float = field(default=0.0, metadata=flag("cross-entropy smoothing", float))
    amp: bool = field(default=True, metadata=flag("no bf16 autocast on CUDA", switch=False))
    fused_adamw: bool = field(
        default=False,
        metadata=flag("AdamW as one fused kernel (several x faster on a CPU)", switch=True),
    )
    conditions: list[str] = field(
        default_factory=lambda: list(DEFAULT_CONDITIONS),
        metadata=flag("comma list, e.g. none,randaugment,vae,randaugment+vae@p=0.3"),
    )
    generator_data: list[str] = field(
        default_factory=lambda: ["pool"],
        metadata=flag(
            "labeled, pool and/or checkpoint:PATH, comma-separated", parse=parse_comma_list
        ),
    )
    parts: list[dict[str, Any]] = field(default_factory=list, metadata=FILE_ONLY)
    generators: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=FILE_ONLY)
    pool_per_seed: bool = field(default=True, metadata=FILE_ONLY)
    more_real_factor: int = field(default=2, metadata=flag("default 2", positive_int))
    hflip: bool | None = field(default=None, metadata=FILE_ONLY)
    ways: int | None = field(
        default=None, metadata=flag("episodic: classes per episode", positive_int)
    )
    queries: int | None = field(
        default=None, metadata=flag("episodic: test images per class", positive_int)
    )
    pretrain_data: str | None = field(
        default=None, metadata=flag("base classes for base:CONDITION conditions")
    )
    pretrain_steps: int = field(default=2000, metadata=flag("base classifier steps", positive_int))
    pretrain_augment: str = field(
        default="randaugment", metadata=flag("the base classifier's augmentation")
    )
    pretrain_generator: str | None = field(
        default=None, metadata=flag("checkpoint:PATH of a generator in pretrain_augment")
    )
    pretrained_from: str | None = field(
        default=None, metadata=flag("a bench folder whose base classifier to copy")
    )
    finetune_lr: float | None = field(
        default=None, metadata=flag("peak lr of base: fine-tunes (default: lr)", float)
    )
    device: str = field(default="auto", metadata=flag("auto (CUDA if present), cpu or cuda"))
    out: str = field(default="runs/bench", metadata=flag("run folder (default: runs/bench)"))
    resume: bool = field(default=False, metadata=flag("continue the bench in --out", switch=True))
    overwrite: bool = field(default=False, metadata=flag("replace the bench in --out", switch=True))
    progress: bool = field(default=True, metadata=flag("hide the progress bar", switch=False))
    preview: int = field(default=8, metadata=flag("images per condition in augmented.png", int))
    workers: int = field(
        default=1,
        metadata=flag(
            "classifier runs in parallel CPU processes, one thread each (default 1)", int
        ),
    )

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        """The settings as saved in ``bench_config.json``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BenchConfig:
        """The config of a dict of settings; one sentence for a key that is no setting."""
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
        """The classifier settings every run of the grid shares."""
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
            fused_adamw=self.fused_adamw,
        )

    def generator_settings(self, name: str) -> GeneratorSettings:
        """The settings of generator ``name`` (defaults for a name ``generators`` omits)."""
        return GeneratorSettings.from_dict(name, self.generators.get(name))

    def allow_flip(self) -> bool:
        """Whether ``flipcrop`` flips images (``hflip``, else what the dataset allows)."""
        return flips_preserve_labels(self.data) if self.hflip is None else bool(self.hflip)

    def pretrain_recipe(self) -> Recipe:
        """The recipe of ``pretrain_augment`` (a generator in it takes ``generators``'
        defaults for its name, as in a condition)."""
        return parse_condition(str(self.pretrain_augment), list_generators(), self.generators)

    # ------------------------------------------------------------------ checks
    def validate(self) -> BenchConfig:
        """Raise one clear sentence for values no bench can use; return self."""
        self.shots = _int_list(self.shots, "shots", 1)
        self.seeds = _int_list(self.seeds, "seeds", 0)
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
        self._check_episodes()
        self._check_pretraining()
        return self

    def _check_episodes(self) -> None:
        """Refuse ``ways`` / ``queries`` values no episode can use (one sentence)."""
        for key, low in (("ways", 2), ("queries", 1)):
            value = getattr(self, key)
            if value is not None and (type(value) is not int or value < low):
                raise GenaugError(
                    f"{key} must be a whole number >= {low} (or unset), got {value!r}."
                )
        if self.queries is not None and self.ways is None:
            raise GenaugError(
                "queries sets the test images per class of an episode; set ways too (e.g. --ways 20)."
            )

    def _check_pretraining(self) -> None:
        """Refuse pretraining settings no bench can use, and ``base:`` conditions without base
        data (one sentence)."""
        steps = self.pretrain_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise GenaugError(f"pretrain_steps must be a positive integer, got {steps!r}.")
        if self.finetune_lr is not None and not (
            isinstance(self.finetune_lr, (int, float)) and self.finetune_lr > 0
        ):
            raise GenaugError(f"finetune_lr must be a positive number, got {self.finetune_lr!r}.")
        recipe = self.pretrain_recipe()
        if recipe.more_real:
            raise GenaugError(
                "pretrain_augment takes none or classic augmentations (e.g. randaugment), not "
                "more-real."
            )
        if recipe.generative is not None and not self.pretrain_generator:
            raise GenaugError(
                f"pretrain_augment {self.pretrain_augment!r} uses a generator; set "
                "pretrain_generator to its checkpoint (e.g. checkpoint:runs/base/pairvae)."
            )
        if recipe.generative is None and self.pretrain_generator:
            raise GenaugError(
                f"pretrain_generator is set but pretrain_augment {self.pretrain_augment!r} uses "
                "no generator; name it there (e.g. randaugment+pairvae) or drop pretrain_generator."
            )
        on_base = [c for c in self.conditions if split_start(c)[1]]
        if on_base and not self.pretrain_data:
            raise GenaugError(
                f"condition {on_base[0]!r} starts from a classifier pretrained on base classes; "
                "set pretrain_data to the base classes' data (e.g. omniglot:PATH@ALPHABET)."
            )

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


def _int_list(values: Any, name: str, minimum: int) -> list[int]:
    """A setting's list of distinct integers >= ``minimum`` (a lone integer: a list of one)."""
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
