"""Reading bench settings: a YAML or JSON file, overridden by command-line values
(:func:`build_bench_config`, what ``genaug bench`` calls). In a file, ``episodes`` is the
episodic name of the seeds axis."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genaug.bench.plan.config import BenchConfig
from genaug.bench.plan.parts import parts_axes
from genaug.bench.plan.recipes import split_conditions, split_start
from genaug.errors import GenaugError, first_line
from genaug.models import list_generators

__all__ = ["build_bench_config", "episodes_as_seeds", "episodes_setting", "load_bench_config"]


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


def episodes_as_seeds(value: Any) -> list[int] | None:
    """The ``episodes`` setting as the grid's seeds: ``30`` -> episodes 0..29, a list as is
    (None: None)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise GenaugError(f"episodes must be a count >= 1 or a list, got {value!r}.")
        return list(range(value))
    if isinstance(value, list) and value:
        return list(value)  # BenchConfig.validate checks the values as seeds
    raise GenaugError(
        f"episodes must be a count (30: episodes 0-29) or a list of episode numbers, got {value!r}."
    )


def episodes_setting(values: dict[str, Any], where: str) -> dict[str, Any]:
    """A config file's settings with ``episodes`` (the episodic name of the seeds axis) turned
    into ``seeds``; both at once are refused."""
    if "episodes" not in values:
        return values
    if "seeds" in values:
        raise GenaugError(
            f"{where} sets both seeds and episodes; in an episodic bench the episodes are the "
            "seeds, so keep one."
        )
    values = dict(values)
    values["seeds"] = episodes_as_seeds(values.pop("episodes"))
    return values
