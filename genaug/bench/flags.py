"""Command-line values of ``genaug bench``: comma-separated integer lists and seed counts."""

from __future__ import annotations

from genaug.errors import GenaugError

__all__ = ["parse_int_list", "parse_seeds"]


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
