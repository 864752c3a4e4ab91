"""Cohort statistics against independent computations (scipy, exact binomial enumeration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from backend.services.cohort_stats import (
    ChangeObservation,
    mean_t_interval,
    median_order_statistic_interval,
    summarise_changes,
    wilcoxon_p,
)

CHANGES = [-3.1, -1.2, -4.8, 0.7, -2.2, -5.5, -0.4, -2.9, -3.7, 1.1, -2.0]


def enumerated_median_interval(values: list[float]) -> tuple[float, float]:
    """Widest-j symmetric order statistics with exact coverage >= 95 %, by direct summation."""
    n = len(values)
    ordered = sorted(values)
    best = None
    for j in range(1, n // 2 + 1):
        # P(x_(j) <= median < x_(n+1-j)) = P(j <= B <= n - j), B ~ Bin(n, 1/2)
        coverage = sum(math.comb(n, i) for i in range(j, n - j + 1)) / 2 ** n
        if coverage >= 0.95:
            best = j
    assert best is not None
    return ordered[best - 1], ordered[n - best]


def test_mean_interval_matches_scipy_t_interval() -> None:
    mean, low, high = mean_t_interval(CHANGES)
    expected = stats.t.interval(0.95, len(CHANGES) - 1, loc=np.mean(CHANGES), scale=stats.sem(CHANGES))
    assert mean == pytest.approx(np.mean(CHANGES))
    assert (low, high) == pytest.approx(expected)


def test_median_interval_matches_exact_enumeration() -> None:
    median, low, high = median_order_statistic_interval(CHANGES)
    assert median == pytest.approx(np.median(CHANGES))
    assert (low, high) == enumerated_median_interval(CHANGES)
    assert low <= median <= high


def test_median_interval_undefined_below_six() -> None:
    assert median_order_statistic_interval([1.0, 2.0, 3.0, 4.0, 5.0])[1:] == (None, None)
    assert median_order_statistic_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])[1:] == (1.0, 6.0)


def test_wilcoxon_matches_scipy_and_needs_two_nonzero_changes() -> None:
    assert wilcoxon_p(CHANGES) == pytest.approx(stats.wilcoxon(CHANGES).pvalue)
    assert wilcoxon_p([0.0, 0.0, 2.0]) is None


def test_summaries_group_by_measure_region_milestone_and_count_mdc_share() -> None:
    observations = [ChangeObservation(f"P-{i}", "redness", "all_skin", "1_month", 30, c, abs(c) > 2.77)
                    for i, c in enumerate(CHANGES)]
    observations += [ChangeObservation("P-0", "redness", "all_skin", "3_months", 90, -1.0, None)]
    summaries = summarise_changes(observations)
    assert [(s.milestone, s.n) for s in summaries] == [("1_month", len(CHANGES)), ("3_months", 1)]
    first = summaries[0]
    assert first.share_exceeding_mdc == pytest.approx(sum(abs(c) > 2.77 for c in CHANGES) / len(CHANGES))
    assert summaries[1].share_exceeding_mdc is None and summaries[1].mean_ci_low is None
    with pytest.raises(ValueError):
        summarise_changes(observations + observations[:1])


@pytest.mark.parametrize("n", [6, 7, 9, 12, 17, 25, 40, 71])
def test_median_interval_matches_enumeration_for_many_sizes(n: int) -> None:
    values = list(np.random.default_rng(n).normal(size=n))
    assert median_order_statistic_interval(values)[1:] == enumerated_median_interval(values)
