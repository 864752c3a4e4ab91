"""Mask helpers and masked filters (imaging.masks)."""

import cv2
import numpy as np
import pytest

from imaging.masks import fill_outside, gaussian_blur, mask_bbox, masked_gaussian, robust_sd


def test_mask_bbox_grows_by_the_margin_within_the_array_and_is_empty_for_an_empty_mask():
    mask = np.zeros((20, 30), bool)
    mask[5:8, 2:10] = True
    assert mask_bbox(mask) == (slice(5, 8), slice(2, 10))
    assert mask_bbox(mask, 3) == (slice(2, 11), slice(0, 13))
    rows, cols = mask_bbox(np.zeros((20, 30), bool))
    assert rows.start == rows.stop and cols.start == cols.stop


def test_robust_sd_estimates_a_normal_sd_and_ignores_outliers():
    values = np.random.default_rng(0).normal(0.0, 2.0, 100_000)
    assert robust_sd(values) == pytest.approx(2.0, rel=0.02)
    values[:1000] = 1e6
    assert robust_sd(values) == pytest.approx(2.0, rel=0.04)
    assert np.isnan(robust_sd(np.array([])))


def test_robust_sd_along_an_axis_equals_the_sd_of_each_column():
    values = np.random.default_rng(1).normal(0.0, 1.0, (5000, 3)) * np.array([1.0, 3.0, 0.5])
    per_channel = robust_sd(values, axis=0)
    assert per_channel.shape == (3,)
    assert per_channel == pytest.approx([robust_sd(values[:, c]) for c in range(3)])


def test_gaussian_blur_of_a_large_sigma_is_close_to_the_exact_blur():
    values = np.random.default_rng(2).random((300, 400)).astype(np.float32)
    values = cv2.GaussianBlur(values, (0, 0), 3.0)
    exact = cv2.GaussianBlur(values, (0, 0), 16.0)
    fast = gaussian_blur(values, 16.0)
    inner = (slice(50, -50), slice(50, -50))
    assert np.abs(fast - exact)[inner].max() < 0.01 * np.ptp(values)


def test_masked_gaussian_and_fill_outside_do_not_pull_in_values_from_outside_the_mask():
    values = np.full((100, 100), 0.3, np.float32)
    mask = np.zeros((100, 100), bool)
    mask[:, :50] = True
    values[:, 50:] = 5.0  # e.g. dark hair next to skin
    blurred = masked_gaussian(values, mask, 8.0)
    assert np.allclose(blurred[:, :50], 0.3, atol=1e-5)
    filled = fill_outside(values, mask, px_per_mm=4.0)
    assert np.array_equal(filled[mask], values[mask])
    assert np.allclose(filled[:, 50:60], 0.3, atol=1e-5)
