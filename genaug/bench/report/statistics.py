"""Statistics of a benchmark grid (scipy): intervals, paired differences and their tests.

Accuracies are fractions in [0, 1]. A *paired* comparison takes two conditions measured on the
same seeds (same k-shot subset, same classifier initialisation), so the per-seed differences
carry the comparison and the seed-to-seed spread of the subsets cancels out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "PairedComparison",
    "Summary",
    "error_rate_reduction",
    "paired_comparison",
    "summarize",
]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and t-based confidence interval of some values."""

    n: int
    mean: float
    std: float  # ddof=1; nan for a single value
    low: float  # the interval's bounds; nan when n < 2
    high: float

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` over paired values: mean difference, its interval and two tests.

    ``p_t`` is the two-sided paired t-test, ``p_wilcoxon`` the two-sided Wilcoxon signed-rank
    test (exact for small samples). Both are nan when fewer than two pairs exist; when every
    difference is zero both are 1.0 (no evidence of any difference).
    """

    n: int
    mean_difference: float
    low: float
    high: float
    p_t: float
    p_wilcoxon: float
    wins: int  # pairs where a > b
    losses: int  # pairs where a < b

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}


def _finite_or_none(value: float | int) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _as_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty; statistics need at least one value.")
    return array


def summarize(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Summary:
    """Mean, std (ddof=1) and the ``confidence`` t-interval of the mean of ``values``."""
    array = _as_array(values, "values")
    n, mean = array.size, float(array.mean())
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    std = float(array.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
) -> PairedComparison:
    """Compare paired values ``a[i]`` and ``b[i]`` (same seed): the statistics of ``a - b``."""
    a, b = _as_array(a, "a"), _as_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}.")
    diff = a - b
    summary = summarize(diff, confidence)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    if diff.size < 2:
        p_t = p_w = math.nan
    elif not np.any(diff):
        p_t = p_w = 1.0
    else:
        with warnings.catch_warnings():
            # Near-constant differences make scipy warn of precision loss (t is huge, p ~ 0);
            # zero differences make the Wilcoxon test warn that it drops them. Both are expected.
            warnings.simplefilter("ignore")
            p_t = float(scipy_stats.ttest_rel(a, b).pvalue)
            if math.isnan(p_t):  # identical non-zero differences: a sure difference
                p_t = 0.0
            p_w = float(scipy_stats.wilcoxon(a, b).pvalue)
    return PairedComparison(
        n=int(diff.size),
        mean_difference=summary.mean,
        low=summary.low,
        high=summary.high,
        p_t=p_t,
        p_wilcoxon=p_w,
        wins=wins,
        losses=losses,
    )


def error_rate_reduction(accuracy: float, baseline_accuracy: float) -> float:
    """Share of the baseline's errors removed: ``(err_base - err) / err_base`` (nan if no errors).

    0.2 means the condition makes 20% fewer errors than the baseline; negative means more.
    """
    base_error = 1.0 - baseline_accuracy
    if base_error <= 0:
        return math.nan
    return (base_error - (1.0 - accuracy)) / base_error
