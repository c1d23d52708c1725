"""Benchmark statistics: they match scipy (and hand-computed values) on known numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from genaug.bench.report.statistics import error_rate_reduction, paired_comparison, summarize

A = [0.81, 0.78, 0.90, 0.85, 0.70, 0.88, 0.79, 0.83, 0.86, 0.77]
B = [0.76, 0.77, 0.84, 0.80, 0.71, 0.80, 0.74, 0.81, 0.80, 0.75]


def test_summary_matches_scipy_t_interval():
    s = summarize(A)
    assert s.n == 10
    assert s.mean == pytest.approx(np.mean(A))
    assert s.std == pytest.approx(np.std(A, ddof=1))
    low, high = scipy_stats.t.interval(0.95, 9, loc=np.mean(A), scale=scipy_stats.sem(A))
    assert (s.low, s.high) == pytest.approx((low, high))


def test_summary_of_one_value_has_no_interval():
    s = summarize([0.5])
    assert s.mean == 0.5 and math.isnan(s.std) and math.isnan(s.low)
    assert s.to_dict()["low"] is None  # JSON-safe
    with pytest.raises(ValueError):
        summarize([])


def test_paired_comparison_matches_scipy():
    c = paired_comparison(A, B)
    diff = np.subtract(A, B)
    assert c.n == 10
    assert c.mean_difference == pytest.approx(diff.mean())
    assert c.p_t == pytest.approx(scipy_stats.ttest_rel(A, B).pvalue)
    assert c.p_wilcoxon == pytest.approx(scipy_stats.wilcoxon(A, B).pvalue)
    low, high = scipy_stats.t.interval(0.95, 9, loc=diff.mean(), scale=scipy_stats.sem(diff))
    assert (c.low, c.high) == pytest.approx((low, high))
    assert (c.wins, c.losses) == (9, 1)


def test_paired_t_test_by_hand():
    # differences 1..5: mean 3, sd sqrt(2.5), t = 3 / (sqrt(2.5) / sqrt(5)) = 4.2426, df 4
    c = paired_comparison([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert c.p_t == pytest.approx(0.013236, abs=1e-5)
    assert c.p_wilcoxon == pytest.approx(0.0625)  # exact: 2 / 2**5, the smallest possible


def test_paired_edge_cases():
    same = paired_comparison([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert same.p_t == 1.0 and same.p_wilcoxon == 1.0 and same.mean_difference == 0.0
    single = paired_comparison([0.5], [0.4])
    assert math.isnan(single.p_t) and single.to_dict()["p_t"] is None
    constant = paired_comparison([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])  # every pair +0.1
    assert constant.p_t < 1e-6
    with pytest.raises(ValueError):
        paired_comparison([0.1, 0.2], [0.1])


def test_error_rate_reduction():
    assert error_rate_reduction(0.9, 0.8) == pytest.approx(0.5)  # 20% errors -> 10%
    assert error_rate_reduction(0.7, 0.8) == pytest.approx(-0.5)
    assert math.isnan(error_rate_reduction(1.0, 1.0))
