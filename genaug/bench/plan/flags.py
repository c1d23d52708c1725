"""How a bench setting reads on the command line, declared beside its field of
:class:`~genaug.bench.plan.config.BenchConfig`: ``field(..., metadata=flag("help"))`` gives the
field a flag (``image_size`` -> ``--image-size``), ``metadata=FILE_ONLY`` says it is set in a
config file only. The parsers of comma-separated values are here too.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genaug.errors import GenaugError

__all__ = [
    "FILE_ONLY",
    "Flag",
    "fields_without_flag",
    "flag",
    "parse_comma_list",
    "parse_int_list",
    "parse_seeds",
    "positive_int",
]


@dataclass(frozen=True)
class Flag:
    """A setting's flag.

    Attributes:
        help: the one line ``--help`` shows.
        type: argparse's conversion of the text (``str`` as given).
        parse: turns the text into the setting after parsing (a GenaugError is one sentence).
        switch: ``True``: a bare ``--NAME`` sets True; ``False``: a bare ``--no-NAME`` sets False.
        choices: the values allowed.
    """

    help: str
    type: Callable[[str], Any] = str
    parse: Callable[[Any], Any] | None = None
    switch: bool | None = None
    choices: tuple[Any, ...] | None = None

    def option(self, name: str) -> str:
        """The flag's spelling for field ``name``."""
        dashed = name.replace("_", "-")
        return f"--no-{dashed}" if self.switch is False else f"--{dashed}"

    def add_to(self, parser: argparse.ArgumentParser, name: str) -> None:
        """Declare the flag on ``parser``; absent, it leaves the setting alone (None)."""
        if self.switch is None:
            parser.add_argument(
                self.option(name), dest=name, type=self.type, choices=self.choices, help=self.help
            )
        else:
            action = "store_true" if self.switch else "store_false"
            parser.add_argument(
                self.option(name), dest=name, action=action, default=None, help=self.help
            )


def flag(help: str, type: Callable[[str], Any] = str, **options: Any) -> dict[str, Flag]:
    """The ``metadata`` of a field with a flag (see :class:`Flag` for the options)."""
    return {"flag": Flag(help, type, **options)}


#: The ``metadata`` of a field that is set in a config file only (a mapping, a list of them).
FILE_ONLY: dict[str, Any] = {"file_only": True}


def fields_without_flag(cls: type) -> list[str]:
    """The fields of dataclass ``cls`` with neither a flag nor the file-only mark."""
    return [
        f.name
        for f in dataclasses.fields(cls)
        if not isinstance(f.metadata.get("flag"), Flag) and not f.metadata.get("file_only")
    ]


def positive_int(text: str) -> int:
    """argparse's conversion of a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def parse_comma_list(text: str) -> list[str]:
    """``"labeled,pool"`` -> ``["labeled", "pool"]``."""
    return str(text).split(",")


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
