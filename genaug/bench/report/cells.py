"""Table cells of the bench's Markdown: percentages, intervals, signed paired differences and
p-values (accuracies are fractions in, percentages or percentage points out)."""

from __future__ import annotations

from typing import Any

__all__ = ["interval", "p_value", "pct", "signed", "versus"]


def pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"


def interval(stats: dict[str, Any] | None, bounded: bool = False) -> str:
    """``mean [low, high]`` in %; ``bounded``: an accuracy, so the interval is clipped to
    [0, 100] (a t-interval over few seeds can reach past it)."""
    if not stats:
        return "-"
    mean = pct(stats.get("mean", stats.get("mean_difference")))
    if stats.get("low") is None:
        return mean
    low, high = stats["low"], stats["high"]
    if bounded:
        low, high = max(0.0, low), min(1.0, high)
    return f"{mean} [{pct(low)}, {pct(high)}]"


def signed(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "-"
    text = interval(stats)
    return text if text.startswith("-") else "+" + text


def versus(stats: dict[str, Any] | None) -> str:
    """A paired difference with its t-test p, or ``-``."""
    return "-" if not stats else f"{signed(stats)}, p {p_value(stats.get('p_t'))}"


def p_value(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
