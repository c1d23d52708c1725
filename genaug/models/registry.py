"""Registry of generator builders: ``@register`` a builder, ``create_generator(name)`` to build.

Builders are small functions returning a configured :class:`~genaug.models.base.Generator`, like
timm's model entrypoints. ``test_*`` variants are tiny and keep CPU tests fast.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any

from genaug.errors import GenaugError
from genaug.models.base import Generator

_BUILDERS: dict[str, Callable[..., Generator]] = {}


def register(fn: Callable[..., Generator]) -> Callable[..., Generator]:
    """Register a generator builder under its function name; a duplicate name raises."""
    name = fn.__name__
    if name in _BUILDERS:
        raise ValueError(f"A generator named {name!r} is already registered; pick another name.")
    _BUILDERS[name] = fn
    return fn


def list_generators(pattern: str | None = None) -> list[str]:
    """Names of the registered generators, sorted, those matching ``pattern`` when given.

    ``pattern`` is an fnmatch pattern, as timm's ``list_models`` takes (``"*vae*"``,
    ``"test_*"``, ``"[cd]gan"``); a plain word without ``*?[`` keeps the names containing it
    (``"vae"`` is ``"*vae*"``). Example: ``list_generators("*vae*")``.
    """
    names = sorted(_BUILDERS)
    if pattern is None:
        return names
    if not any(char in pattern for char in "*?["):
        pattern = f"*{pattern}*"
    return [name for name in names if fnmatch.fnmatchcase(name, pattern)]


def create_generator(name: str, **overrides: Any) -> Generator:
    """Build a registered generator, e.g. ``create_generator("vae", image_size=32, num_classes=10)``.

    Overrides that are ``None`` are dropped, so blank CLI flags never clobber a builder's defaults.
    """
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, list(_BUILDERS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise GenaugError(
            f"Unknown generator {name!r}; choose one of: {', '.join(list_generators())}.{hint}"
        )
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    try:
        return _BUILDERS[name](**kwargs)
    except TypeError as exc:  # an argument the family does not take
        if "unexpected keyword argument" not in str(exc):
            raise
        bad = str(exc).rsplit("argument", 1)[-1].strip(" '")
        raise GenaugError(
            f"generator {name!r} takes no argument {bad!r}; see its family's docstring for the "
            "ones it takes."
        ) from None
