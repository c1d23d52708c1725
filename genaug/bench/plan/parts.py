"""The parts of a bench grid: a config may name which (conditions x shots x generator data)
blocks it runs, so that one command runs a whole publication.

Without ``parts`` the grid is every condition x every shot count x every generator data (as
before). With them, it is the union of the parts' cells, each part a mapping::

    parts:
      - {name: classic, conditions: [none, flipcrop, randaugment]}       # every shot count
      - {name: long, conditions: [randaugment+vae_long@mode=neighbour], shots: [5]}
      - {name: labeled, conditions: [randaugment+gan], generator_data: [labeled]}

A part's ``shots`` and ``generator_data`` default to the config's. The config's ``shots``,
``conditions`` and ``generator_data`` stay the grid's axes: they give the report its order, and
flags that narrow them (``--shots 5``) select the parts' cells within them. A file's parts must
lie within its own axes; an axis the file leaves out is the union of its parts'. Runs are keyed
by (shots, seed, condition, generator data) alone, so a grid with parts finds the runs of the
part commands it replaces, and runs only the missing ones.
"""

from __future__ import annotations

from typing import Any

from genaug.bench.plan.recipes import BASE_PREFIX, parse_condition, split_conditions, split_start
from genaug.errors import GenaugError

__all__ = ["PART_KEYS", "condition_names", "normalise_parts", "parts_axes"]

PART_KEYS = ("name", "conditions", "shots", "generator_data")


def _label(part: Any, index: int) -> str:
    name = part.get("name") if isinstance(part, dict) else None
    return f"part {name!r}" if isinstance(name, str) and name else f"part {index + 1}"


def normalise_parts(parts: Any) -> list[dict[str, Any]]:
    """Check the ``parts`` setting's shape; return it with lists for every value given.

    ``conditions`` may be a list or a comma-separated string (inline options stay with their
    condition), ``shots`` an int or a list, ``generator_data`` a string or a list.
    """
    if parts is None:
        return []
    if not isinstance(parts, list):
        raise GenaugError(
            "parts must be a list of mappings such as {conditions: [randaugment], shots: [5]}, "
            f"got {type(parts).__name__}."
        )
    normal: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        label = _label(part, index)
        if not isinstance(part, dict):
            raise GenaugError(
                f"{label} must be a mapping with conditions (and optional shots, "
                f"generator_data, name), got {part!r}."
            )
        unknown = sorted(set(part) - set(PART_KEYS))
        if unknown:
            raise GenaugError(
                f"{label} has unknown keys {', '.join(map(str, unknown))}; use "
                f"{', '.join(PART_KEYS)}."
            )
        entry: dict[str, Any] = {}
        if "name" in part:
            if not isinstance(part["name"], str) or not part["name"].strip():
                raise GenaugError(f"{label}: name must be a non-empty string.")
            entry["name"] = part["name"].strip()
        entry["conditions"] = _strings(part.get("conditions"), label, "conditions", True)
        if "shots" in part:
            entry["shots"] = _shots(part["shots"], label)
        if "generator_data" in part:
            entry["generator_data"] = _strings(part["generator_data"], label, "generator_data")
        normal.append(entry)
    return normal


def _strings(values: Any, label: str, key: str, conditions: bool = False) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if conditions and isinstance(values, list) and all(isinstance(v, str) for v in values):
        # a YAML flow list [vae@p=1,hops=6] splits at commas: inline options rejoin
        values = split_conditions(",".join(values))
    elif isinstance(values, list) and all(isinstance(v, str) for v in values):
        values = [g for v in values for g in v.split(",")]
    if (
        not isinstance(values, list)
        or not values
        or any(not isinstance(v, str) or not v.strip() for v in values)
    ):
        raise GenaugError(f"{label}: {key} must be a non-empty list of names, got {values!r}.")
    values = [v.strip() for v in values]
    if len(set(values)) != len(values):
        raise GenaugError(f"{label} lists a {key} entry twice: {values!r}; list each once.")
    return values


def _shots(values: Any, label: str) -> list[int]:
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values]
    if (
        not isinstance(values, list)
        or not values
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values)
    ):
        raise GenaugError(
            f"{label}: shots must be a non-empty list of integers >= 1, got {values!r}."
        )
    if len(set(values)) != len(values):
        raise GenaugError(f"{label} lists a shot count twice: {values!r}; list each once.")
    return list(values)


def condition_names(conditions: list[str], generator_names: list[str]) -> list[str]:
    """The canonical spelling of each condition (``vae@p=1,mode=neighbour`` and
    ``vae@mode=neighbour,p=1`` are one condition): what run keys and parts compare."""
    split = [split_start(text) for text in conditions]  # base:CONDITION keeps its prefix
    return [
        (BASE_PREFIX if on_base else "") + parse_condition(text, generator_names).name
        for text, on_base in split
    ]


def parts_axes(
    values: dict[str, Any], generator_names: list[str], where: str = "the bench config"
) -> dict[str, Any]:
    """A config file's settings with its parts checked against its axes.

    An axis the file leaves out (``shots``, ``conditions``, ``generator_data``) becomes the
    union of its parts' values, in the order they first appear; a part naming a value its
    file's axis does not list raises, naming the part and the value.
    """
    values = dict(values)
    parts = normalise_parts(values.get("parts"))
    if not parts:
        return values
    values["parts"] = parts
    for key in ("conditions", "shots", "generator_data"):
        if key not in values:
            union: list[Any] = []
            for part in parts:
                union += [v for v in part.get(key, []) if v not in union]
            if union:
                values[key] = union
    axes = values.get("conditions")
    if isinstance(axes, str):
        axes = split_conditions(axes)
    names = set(condition_names(list(axes or []), generator_names))
    shots = values.get("shots")
    shots = [shots] if isinstance(shots, int) else list(shots or [])
    sources = values.get("generator_data")
    sources = sources.split(",") if isinstance(sources, str) else list(sources or [])
    for index, part in enumerate(parts):
        label = _label(part, index)
        for text, name in zip(
            part["conditions"], condition_names(part["conditions"], generator_names)
        ):
            if name not in names:
                raise GenaugError(
                    f"{where}: {label} names condition {text!r}, which its conditions do not "
                    "list; add it to conditions or drop it from the part."
                )
        for key, axis in (("shots", shots), ("generator_data", sources)):
            extra = [v for v in part.get(key, []) if axis and v not in axis]
            if extra:
                raise GenaugError(
                    f"{where}: {label} names {key} {', '.join(map(str, extra))}, which its "
                    f"{key} {axis} do not list; add them there or drop them from the part."
                )
    return values
