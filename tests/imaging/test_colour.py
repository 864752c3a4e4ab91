"""Colour space conversions and colour normalisation (ColorChecker and neutral background)."""

import colour as colour_science
import numpy as np
import pytest

from imaging import colour as cc
from imaging.colour_space import (
    density_to_linear,
    linear_to_lab,
    linear_to_srgb,
    linear_to_srgb_uint8,
    optical_density,
    srgb_to_linear,
)
from measures_fixtures import camera_capture, scene_linear

D65 = colour_science.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]


# --- colour_space ---------------------------------------------------------------------------


def test_srgb_decoding_matches_colour_science():
    values = np.arange(256, dtype=np.uint8)
    ours = srgb_to_linear(values)
    ref = colour_science.cctf_decoding(values / 255.0, function="sRGB")
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-6
    assert np.abs(srgb_to_linear(values / 255.0) - ref).max() < 1e-6


def test_srgb_round_trip():
    values = np.arange(256, dtype=np.uint8)
    assert np.array_equal(linear_to_srgb_uint8(srgb_to_linear(values)), values)
    assert linear_to_srgb(np.array([0.0, 1.0, 2.0])).tolist() == pytest.approx([0.0, 1.0, 1.0])


def test_lab_matches_colour_science():
    rng = np.random.default_rng(0)
    linear = rng.random((2000, 3)).astype(np.float32)
    ref = colour_science.XYZ_to_Lab(colour_science.sRGB_to_XYZ(linear, apply_cctf_decoding=False), D65)
    assert np.abs(linear_to_lab(linear) - ref).max() < 0.05
    image = linear.reshape(40, 50, 3)
    assert linear_to_lab(image).shape == (40, 50, 3)


def test_optical_density_and_inverse():
    linear = np.array([1.0, 0.1, 0.01, 0.0], np.float32)
    od = optical_density(linear)
    assert od.tolist() == pytest.approx([0.0, 1.0, 2.0, 4.0])
    assert density_to_linear(od[:3]).tolist() == pytest.approx(linear[:3].tolist(), rel=1e-5)


# --- reference values and the root-polynomial model ------------------------------------------


def test_reference_patches_match_published_srgb():
    # X-Rite's sRGB rendering of "dark skin" is about (115, 82, 68); "white 9.5" is near neutral
    # (post-2014 Lab D50 95.2, -1.0, 2.9) and the greys get darker along the bottom row.
    linear = cc.reference_patches_linear()
    encoded = linear_to_srgb_uint8(np.clip(linear, 0, 1))
    assert np.abs(encoded[0].astype(int) - [115, 82, 68]).max() <= 3
    white = linear_to_lab(linear[18:19].astype(np.float32))[0]
    assert white[0] > 94 and abs(white[1]) < 3 and abs(white[2]) < 4
    assert np.all(np.diff(linear[18:24, 1]) < 0)


def test_root_polynomial_equals_colour_science_finlayson_2015():
    rng = np.random.default_rng(1)
    measured = rng.uniform(0.02, 0.9, (24, 3))
    reference = measured @ np.array([[1.1, -0.05, 0.0], [0.02, 0.95, 0.05], [0.0, 0.1, 0.8]]).T
    matrix = cc.fit_root_polynomial(measured, reference)
    correction = cc.ColourCorrection("colorchecker", "root-polynomial-2", matrix)
    test_rgb = rng.uniform(0.05, 0.8, (50, 3)).astype(np.float32)
    ours = cc.apply_colour_correction(test_rgb, correction)
    theirs = colour_science.colour_correction(
        test_rgb, measured, reference, method="Finlayson 2015", degree=2, root_polynomial_expansion=True
    )
    assert np.abs(ours - np.clip(theirs, 0, 1)).max() < 1e-4


def test_root_polynomial_is_exposure_invariant():
    rng = np.random.default_rng(2)
    measured = rng.uniform(0.02, 0.6, (24, 3))
    reference = rng.uniform(0.02, 0.6, (24, 3))
    matrix = cc.fit_root_polynomial(measured, reference)
    correction = cc.ColourCorrection("colorchecker", "root-polynomial-2", matrix)
    pixel = np.array([[0.2, 0.15, 0.1]], np.float32)
    once = cc.apply_colour_correction(pixel, correction)
    assert cc.apply_colour_correction(pixel * 1.5, correction) == pytest.approx(once * 1.5, rel=1e-5)


# --- ColorChecker in a synthetic photo -------------------------------------------------------


CASTS = [((1.0, 1.0, 1.0), 1.0), ((1.25, 1.0, 0.7), 0.75), ((0.8, 1.0, 1.3), 1.25), ((1.1, 1.0, 0.85), 0.7)]


@pytest.mark.parametrize("gains,exposure", CASTS)
def test_colorchecker_correction_restores_patches_and_skin(gains, exposure):
    scene, face_mask, skin_box = scene_linear(with_chart=True)
    photo = camera_capture(scene, gains, exposure)
    correction = cc.estimate_colour_correction(photo, face_mask)
    assert correction.reference == "colorchecker"
    # Patches: read back from the photo, corrected, compared with the reference values.
    corners = cc.detect_colorchecker_patches(photo)
    measured = cc.read_patch_colours(photo, corners)
    unclipped = measured.max(axis=1) < cc.PATCH_CLIP_LIMIT
    corrected = cc.apply_colour_correction(measured.astype(np.float32), correction)
    residual = cc.delta_e00(corrected, cc.reference_patches_linear())[unclipped]
    assert residual.max() < 2.0, residual
    # Skin: mean cheek colour after correction vs the true scene colour.
    truth = scene[skin_box].reshape(-1, 3).mean(axis=0)
    skin = cc.apply_colour_correction(photo, correction)[skin_box].reshape(-1, 3).mean(axis=0)
    assert cc.delta_e00(skin[None], truth[None])[0] < 2.0
    # Without correction the same skin is visibly off (the test would catch a no-op).
    if gains != (1.0, 1.0, 1.0):
        raw = srgb_to_linear(photo)[skin_box].reshape(-1, 3).mean(axis=0)
        assert cc.delta_e00(raw[None], truth[None])[0] > 4.0


def test_chart_detection_is_not_fooled_by_a_face():
    scene, face_mask, _ = scene_linear(with_chart=False)
    photo = camera_capture(scene)
    assert cc.detect_colorchecker_patches(photo) is None
    assert cc.estimate_colour_correction(photo, face_mask).reference == "neutral-background"


def test_implausible_chart_fit_is_refused():
    scene, face_mask, _ = scene_linear(with_chart=True)
    photo = camera_capture(scene, (1.2, 1.0, 0.8))
    corners = cc.detect_colorchecker_patches(photo)
    assert corners is not None
    # The same detection with the patch order scrambled must not pass the residual check.
    rng = np.random.default_rng(0)
    measured = cc.read_patch_colours(photo, corners[rng.permutation(24)])
    matrix = cc.fit_root_polynomial(measured, cc.reference_patches_linear())
    fitted = cc.apply_colour_correction(
        measured.astype(np.float32), cc.ColourCorrection("colorchecker", "root-polynomial-2", matrix)
    )
    residual = cc.delta_e00(fitted, cc.reference_patches_linear())
    assert residual.mean() > cc.MAX_MEAN_DELTA_E00 or residual.max() > cc.MAX_PATCH_DELTA_E00


def test_wrong_chart_is_detected_but_its_fit_refused():
    order = np.random.default_rng(0).permutation(24)
    scene, face_mask, _ = scene_linear(with_chart=True, chart_order=order)
    photo = camera_capture(scene, (1.1, 1.0, 0.9))
    correction = cc.estimate_colour_correction(photo, face_mask)
    assert correction.reference == "neutral-background"
    refused = correction.details["colorchecker"]
    assert refused["reason"] == "colorchecker_fit_rejected"
    assert refused["delta_e00_mean"] > cc.MAX_MEAN_DELTA_E00


def test_upside_down_chart_is_still_read_in_reference_order():
    scene, face_mask, skin_box = scene_linear(with_chart=True, chart_upside_down=True)
    photo = camera_capture(scene, (1.2, 1.0, 0.8), 0.8)
    correction = cc.estimate_colour_correction(photo, face_mask)
    assert correction.reference == "colorchecker"
    assert correction.details["delta_e00_mean"] < 1.0


def test_exclude_mask_must_match_the_image():
    photo = camera_capture(scene_linear(with_chart=False)[0])
    with pytest.raises(ValueError):
        cc.estimate_colour_correction(photo, np.zeros((10, 10), bool))


# --- Neutral background ----------------------------------------------------------------------


@pytest.mark.parametrize("gains", [(1.25, 1.0, 0.7), (0.8, 1.0, 1.3)])
def test_neutral_background_removes_cast_without_using_skin(gains):
    scene, face_mask, skin_box = scene_linear(with_chart=False)
    photo = camera_capture(scene, gains)
    correction = cc.estimate_colour_correction(photo, face_mask)
    assert correction.reference == "neutral-background"
    assert correction.details["gains"] == pytest.approx([1 / gains[0], 1.0, 1 / gains[2]], rel=0.06)
    truth = scene[skin_box].reshape(-1, 3).mean(axis=0)
    raw = srgb_to_linear(photo)[skin_box].reshape(-1, 3).mean(axis=0)
    fixed = cc.apply_colour_correction(photo, correction)[skin_box].reshape(-1, 3).mean(axis=0)
    # White balance only (the simulated camera's cross-talk remains): within 3, from > 6.
    assert cc.delta_e00(raw[None], truth[None])[0] > 6.0
    assert cc.delta_e00(fixed[None], truth[None])[0] < 3.0


def test_no_neutral_background_gives_none():
    scene, _, _ = scene_linear(with_chart=False)
    photo = camera_capture(scene)
    everything = np.ones(photo.shape[:2], bool)
    correction = cc.estimate_colour_correction(photo, everything)
    assert correction.reference == "none"
    assert correction.details["reason"] == "too_few_neutral_pixels"
    linear = cc.apply_colour_correction(photo, correction)
    assert np.array_equal(linear, srgb_to_linear(photo))


def test_saturated_background_is_refused_as_neutral():
    rng = np.random.default_rng(3)
    photo = np.zeros((300, 400, 3), np.uint8)
    photo[..., 0] = 220
    photo[..., 1] = rng.integers(20, 40, (300, 400))
    photo[..., 2] = 30
    correction = cc.estimate_colour_correction(photo)
    assert correction.reference == "none"


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError):
        cc.estimate_colour_correction(np.zeros((10, 10), np.uint8))
