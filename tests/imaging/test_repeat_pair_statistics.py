"""Repeatability of repeat-capture pairs: ICC(2,1) with its CI, SEM, MDC95, Bland-Altman.

Expected values are computed by hand (the sums are written out below) and the interval by an
independent formulation (pingouin's / Shrout & Fleiss's F_j form) and by the published values of
Shrout & Fleiss's example (ICC(2,1) 0.290, 95 % CI [0.019, 0.761], as R's psych::ICC reports).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from imaging.reliability import icc_2_1, icc_2_1_confidence_interval, repeat_pair_statistics

#: Shrout & Fleiss (1979) Table 1: 6 targets x 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
                         dtype=float)

FIRST = [10.0, 12.0, 14.0, 16.0, 18.0]
SECOND = [11.0, 12.0, 15.0, 15.0, 19.0]


def shrout_fleiss_interval(x: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The ICC(2,1) interval as Shrout & Fleiss (and pingouin) write it, with F_j = JMS / EMS."""
    n, k = x.shape
    grand, rows, cols = x.mean(), x.mean(axis=1), x.mean(axis=0)
    bms = k * ((rows - grand) ** 2).sum() / (n - 1)
    jms = n * ((cols - grand) ** 2).sum() / (k - 1)
    ems = (((x - grand) ** 2).sum() - k * ((rows - grand) ** 2).sum() - n * ((cols - grand) ** 2).sum()) \
        / ((n - 1) * (k - 1))
    icc = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    fj = jms / ems
    vn = (k - 1) * (n - 1) * (k * icc * fj + n * (1 + (k - 1) * icc) - k * icc) ** 2
    vd = (n - 1) * k ** 2 * icc ** 2 * fj ** 2 + (n * (1 + (k - 1) * icc) - k * icc) ** 2
    v = vn / vd
    f_upper = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f_lower = stats.f.ppf(1 - alpha / 2, v, n - 1)
    low = n * (bms - f_upper * ems) / (f_upper * (k * jms + (k * n - k - n) * ems) + n * bms)
    high = n * (f_lower * bms - ems) / (k * jms + (k * n - k - n) * ems + n * f_lower * bms)
    return low, high


def test_icc_and_interval_reproduce_shrout_and_fleiss():
    assert icc_2_1(SHROUT_FLEISS) == pytest.approx(0.290, abs=0.0005)
    low, high = icc_2_1_confidence_interval(SHROUT_FLEISS)
    assert (low, high) == pytest.approx((0.019, 0.761), abs=0.0005)
    assert (low, high) == pytest.approx(shrout_fleiss_interval(SHROUT_FLEISS), rel=1e-9)


def test_pair_statistics_match_the_hand_computation():
    result = repeat_pair_statistics(FIRST, SECOND)
    # d = second - first = [1, 0, 1, -1, 1]: sum d^2 = 4, mean 0.4, SD(d)^2 = 3.2 / 4 = 0.8.
    assert result.n_pairs == 5
    assert result.within_subject_sd == pytest.approx(math.sqrt(4 / 10))
    assert result.bias == pytest.approx(0.4)
    assert (result.loa_low, result.loa_high) == pytest.approx((0.4 - 1.96 * math.sqrt(0.8), 0.4 + 1.96 * math.sqrt(0.8)))
    # Grand mean 14.2; MSR = 2 * 38.8 / 4 = 19.4; MSC = 5 * 0.08 / 1 = 0.4; SST = 79.6, SSE = 1.6, MSE = 0.4.
    assert result.icc == pytest.approx((19.4 - 0.4) / (19.4 + 0.4 + 2 * (0.4 - 0.4) / 5))
    sem = math.sqrt(79.6 / 9) * math.sqrt(1 - 19.0 / 19.8)
    assert result.sem == pytest.approx(sem)
    assert result.mdc95 == pytest.approx(1.96 * math.sqrt(2) * sem)
    low, high = shrout_fleiss_interval(np.column_stack([FIRST, SECOND]))
    assert (result.icc_ci_low, result.icc_ci_high) == pytest.approx((low, high), rel=1e-9)
    assert result.icc_ci_low < result.icc < result.icc_ci_high


def test_too_few_pairs_give_nan_not_errors():
    none = repeat_pair_statistics([], [])
    assert none.n_pairs == 0 and math.isnan(none.icc)
    one = repeat_pair_statistics([1.0], [1.5])
    assert one.n_pairs == 1 and one.bias == pytest.approx(0.5) and math.isnan(one.icc) and math.isnan(one.mdc95)
    identical = repeat_pair_statistics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert identical.icc == pytest.approx(1.0) and identical.mdc95 == pytest.approx(0.0)
    assert math.isnan(identical.icc_ci_low)  # no error variance: no F interval
    with pytest.raises(ValueError):
        repeat_pair_statistics([1.0, 2.0], [1.0])
