"""The columns of a bench grid: conditions paired with the data their generator trains on,
and the grid's cells (which arms run at which shot count)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from genaug.bench.plan.config import BenchConfig
from genaug.bench.plan.parts import condition_names
from genaug.bench.plan.recipes import BASE_PREFIX, Recipe, parse_condition, split_start
from genaug.data import ImageDataset
from genaug.errors import GenaugError
from genaug.models import list_generators, load_generator
from genaug.models.base import family_class, validate_image_size

__all__ = ["Arm", "Grid", "plan_arms", "plan_grid"]


@dataclass(frozen=True)
class Arm:
    """One column of the grid: a condition and, for generative ones, its generator's data."""

    recipe: Recipe
    source: str | None  # "labeled", "pool", "checkpoint:PATH" or None
    base: bool = False  # the classifier starts from the base-pretrained one (``base:``)

    @property
    def condition(self) -> str:
        return (BASE_PREFIX if self.base else "") + self.recipe.name

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
    for written in config.conditions:
        text, on_base = split_start(written)  # base:CONDITION: from the base classifier
        part_names = [p.partition("@")[0].strip().lower() for p in str(text).split("+")]
        defaults = {n: config.generator_settings(n).__dict__ for n in part_names if n in names}
        recipe = parse_condition(text, names, defaults)
        condition = Arm(recipe, None, on_base).condition
        if condition in seen:
            raise GenaugError(f"condition {condition!r} is listed twice; list it once.")
        seen.add(condition)
        if recipe.learner.written and not on_base:
            raise GenaugError(
                f"condition {condition!r}: the {recipe.learner.name} learner starts from the "
                f"base-pretrained classifier; write base:{condition}."
            )
        step = recipe.generative
        if step is None:
            arms.append(Arm(recipe, None, on_base))
            continue
        settings = config.generator_settings(step.generator)
        family = _generator_family(settings.model)
        cls = family_class(family)
        if cls.feature_space:  # a hallucinator: used by the learner, on the base features
            arms += _feature_arms(config, recipe, on_base, family)
            continue
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
                skipped.append({"arm": Arm(recipe, source, on_base).label, "reason": reason})
                continue
            arms.append(Arm(recipe, source, on_base))
        if reasons and len(reasons) == len(config.generator_data):
            raise GenaugError(reasons[0])
    return arms


def _feature_arms(config: BenchConfig, recipe: Recipe, on_base: bool, family: str) -> list[Arm]:
    """The arms of a feature-space generator: base: conditions, checkpoint sources only."""
    if not on_base:
        raise GenaugError(
            f"condition {recipe.name!r}: a {family} makes features of the base classifier; "
            f"write base:{recipe.name}."
        )
    sources = [s for s in config.generator_data if s.startswith("checkpoint:")]
    if not sources:
        raise GenaugError(
            f"condition {recipe.name!r}: a {family} is trained with genaug train on the base "
            "classes; give it as generator data checkpoint:PATH."
        )
    for source in sources:
        model = load_generator(source.partition(":")[2])
        if model.family != family:
            raise GenaugError(
                f"condition {recipe.name!r} names a {family} but {source.partition(':')[2]} "
                f"holds a {model.family}; name the checkpoint's family in the condition."
            )
    return [Arm(recipe, source, on_base) for source in sources]


@dataclass(frozen=True)
class Grid:
    """The arms of a bench in display order, and per shot count the arms it runs."""

    arms: list[Arm]
    cells: dict[int, list[Arm]]

    def runs(self, seeds: list[int]) -> list[tuple[int, int, Arm]]:
        """Every (shots, seed, arm) of the grid, shot counts outermost."""
        return [(k, s, arm) for k, arms in self.cells.items() for s in seeds for arm in arms]


def plan_grid(
    config: BenchConfig, dataset: ImageDataset, skipped: list[dict[str, str]] | None = None
) -> Grid:
    """The grid's cells: every arm at every shot count, or with ``config.parts`` the union of
    the parts' cells within the config's axes (see :mod:`genaug.bench.plan.parts`).

    ``skipped`` is as in :func:`plan_arms`, per part. Raises when the axes select no cell.
    """
    if not config.parts:
        arms = plan_arms(config, dataset, skipped)
        return Grid(arms, {k: list(arms) for k in config.shots})
    names = sorted(set(list_generators()) | set(config.generators))
    order = {n: i for i, n in enumerate(condition_names(list(config.conditions), names))}
    sources = {s: i for i, s in enumerate(config.generator_data)}
    picked: dict[str, Arm] = {}
    shots_of: dict[str, set[int]] = {}
    notes: list[dict[str, str]] = []
    for part in config.parts:
        wanted = [
            text
            for text, name in zip(part["conditions"], condition_names(part["conditions"], names))
            if name in order
        ]
        part_sources = [
            s for s in part.get("generator_data", config.generator_data) if s in sources
        ]
        part_shots = [k for k in part.get("shots", config.shots) if k in config.shots]
        if not wanted or not part_shots:
            continue
        sub = dataclasses.replace(config, conditions=wanted, generator_data=part_sources, parts=[])
        for arm in plan_arms(sub, dataset, notes):
            picked.setdefault(arm.key, arm)
            shots_of.setdefault(arm.key, set()).update(part_shots)
    if skipped is not None:
        skipped += [n for i, n in enumerate(notes) if n not in notes[:i]]
    if not picked:
        raise GenaugError(
            f"no cell of the grid's parts lies within shots {config.shots}, conditions "
            f"{', '.join(config.conditions)} and generator data {config.generator_data}; "
            "select values some part names."
        )
    arms = sorted(picked.values(), key=lambda a: (order[a.condition], sources.get(a.source, -1)))
    cells = {k: [a for a in arms if k in shots_of[a.key]] for k in config.shots}
    return Grid(arms, cells)
