"""Quality gate: every problem code is triggered by a photo made to have it; a good photo passes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capture_helpers import detect, truth_geometry
from imaging.testing import synthetic
from imaging.decode import decode_image
from imaging.quality import CHECKS, MESSAGES, THRESHOLDS, assess_quality, quality_gate


@pytest.fixture(scope="module")
def phone_photo() -> synthetic.SyntheticPhoto:
    """The 12 MP test portrait with a phone camera's edge sharpness (the plain upscaled
    astronaut is, rightly, blurred for a gate that judges blur relative to the face)."""
    return synthetic.sharp_phone_photo()


@pytest.fixture(scope="module")
def phone_jpeg(phone_photo) -> bytes:
    return synthetic.to_jpeg(phone_photo.rgb)


def gate(photo: synthetic.SyntheticPhoto, baseline_geometry=None, quality: int = 92):
    return quality_gate(synthetic.to_jpeg(photo.rgb, quality=quality), baseline_geometry)


@pytest.fixture(scope="module")
def good_report(phone_jpeg):
    return quality_gate(phone_jpeg)


def test_good_photo_passes_with_every_check_reported(good_report):
    assert good_report.ok, good_report.codes
    assert good_report.problems == []
    expected = {"face_count", "face_score", "face_width_fraction", "face_outside_fraction",
                "blur_percent_of_face_width", "highlight_lightness", "skin_lightness_low", "skin_lightness_high",
                "skin_clipped_fraction", "glare_fraction", "left_right_light_ratio", "top_bottom_light_ratio",
                "skin_hue_deg", "skin_chroma", "highlight_chroma", "yaw_deg", "pitch_deg", "roll_deg"}
    assert set(good_report.checks) == expected
    for name, check in good_report.checks.items():
        assert check.passed, name
        assert np.isfinite(check.value) and check.threshold is not None
    as_json = json.loads(json.dumps(good_report.to_dict()))
    assert as_json["ok"] is True and set(as_json["checks"]) == expected


@pytest.mark.parametrize("variant", ["exposure_+30%", "exposure_-30%", "white_balance_shift", "jpeg_q70",
                                     "rotated_6", "rescaled_0.7", "noise", "landscape", "heic_small"])
def test_ordinary_recapture_variation_passes(phone_photo, variant):
    if variant == "heic_small":
        small = synthetic.rescale(phone_photo, 0.25)
        report = quality_gate(synthetic.to_heic(small.rgb, quality=90))
    else:
        photo = {
            "exposure_+30%": lambda p: synthetic.exposure(p, 1.3),
            "exposure_-30%": lambda p: synthetic.exposure(p, 0.7),
            "white_balance_shift": lambda p: synthetic.white_balance(p, (1.1, 1.0, 0.9)),
            "jpeg_q70": lambda p: p,
            "rotated_6": lambda p: synthetic.rotate(p, 6),
            "rescaled_0.7": lambda p: synthetic.rescale(p, 0.7),
            "noise": lambda p: synthetic.gaussian_noise(p, 4),
            "landscape": lambda p: synthetic.sharp_phone_photo(synthetic.PHONE_LANDSCAPE, iod_fraction=0.12),
        }[variant](phone_photo)
        report = gate(photo, quality=70 if variant == "jpeg_q70" else 92)
    assert report.ok, (variant, report.codes)


# Each problem code, and a photo made to have it.
BAD_PHOTOS = {
    "no_face": lambda p: p.with_rgb(np.broadcast_to(np.array([150, 140, 130], np.uint8), p.rgb.shape).copy()),
    "multiple_faces": synthetic.add_second_face,
    "face_too_small": lambda p: synthetic.sharp_phone_photo(iod_fraction=0.05),
    "face_cut_off": lambda p: synthetic.cut_off(p, 0.0, "bottom"),
    "blurred": lambda p: synthetic.blur(p, 0.015),
    "underexposed": lambda p: synthetic.exposure(p, 0.1),
    "overexposed": lambda p: synthetic.exposure(p, 3.0),
    # A ramp to 0.3 is a nuisance the measures must survive (issue 11); half that is refused.
    "uneven_lighting": lambda p: synthetic.one_sided_light(p, 0.15),
    "coloured_lighting": lambda p: synthetic.white_balance(p, (0.7, 1.0, 1.5)),
    "glare": lambda p: synthetic.glare_spots(p, 8),
    "head_turned": lambda p: synthetic.turn_head(p, 45),
}


@pytest.mark.parametrize("code", list(BAD_PHOTOS))
def test_each_problem_is_triggered_by_a_photo_made_to_have_it(phone_photo, code):
    report = gate(BAD_PHOTOS[code](phone_photo))
    assert not report.ok
    assert code in report.codes, report.codes
    problem = next(p for p in report.problems if p.code == code)
    assert problem.message == MESSAGES[code] and problem.threshold is not None
    assert isinstance(problem.value, float)


@pytest.mark.parametrize("cast", [(0.8, 1.3, 0.8), (1.6, 1.0, 0.5)])
def test_green_and_orange_light_are_coloured_lighting(phone_photo, cast):
    assert "coloured_lighting" in gate(synthetic.white_balance(phone_photo, cast)).codes


def _bright_things(coloured_share: float, coloured_lab=(72.0, 20.0, 32.0)) -> np.ndarray:
    """A photo whose brightest unclipped 3 % (the rest is dark) is ``coloured_share`` of a coloured
    thing (default: lit skin, chroma ~38) and the rest neutral grey of the same L*, before a
    clipped white wall."""
    import cv2

    n = 100_000
    n_bright = 3 * n // 100
    n_coloured = int(round(coloured_share * n_bright))
    lab = np.zeros((n, 3), np.float32)
    lab[:, 0] = 30.0
    lab[:n_bright, 0] = coloured_lab[0]
    lab[:n_coloured, 1:] = coloured_lab[1:]
    rgb = cv2.cvtColor(lab.reshape(1, n, 3), cv2.COLOR_Lab2RGB).reshape(n, 3)
    rgb = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    wall = np.full((n // 2, 3), 255, np.uint8)
    return np.concatenate([rgb, wall]).reshape(300, 500, 3)


def test_highlights_that_are_mostly_skin_before_a_clipped_wall_are_not_a_coloured_light():
    from imaging.quality import NEUTRAL_HIGHLIGHT_SHARE, NEUTRAL_LIGHT_CHROMA, highlight_chroma

    limit = THRESHOLDS["highlight_chroma_max"]
    # The coloured bright pixels are the photo's top rows (see _bright_things): there the head.
    head, elsewhere = (0.0, 0.0, 1.0, 0.1), (0.0, 0.5, 1.0, 1.0)
    mostly_skin = _bright_things(1.0 - 1.3 * NEUTRAL_HIGHLIGHT_SHARE)
    # A dark face exposed for the face: its lit skin is most of the brightest unclipped pixels,
    # yet a fifth of them are white things that stayed white: the light is white.
    assert highlight_chroma(_bright_things(1.0), head) > limit  # the skin alone reads coloured
    assert highlight_chroma(mostly_skin, head) <= NEUTRAL_LIGHT_CHROMA
    # The same photo with the coloured highlights off the subject (a wall under a lamp while
    # daylight keeps other things white), or with no face to place them: coloured.
    assert highlight_chroma(mostly_skin, elsewhere) > limit
    assert highlight_chroma(mostly_skin) > limit
    # A few neutral things under a coloured light (objects of the complementary colour) do not count.
    assert highlight_chroma(_bright_things(1.0 - 0.5 * NEUTRAL_HIGHLIGHT_SHARE), head) > limit
    # A reading within the limit is kept: a blue light can make skin itself neutral, and the
    # neutral share must not turn a tinted light into white light (nor a painted face into no_face).
    tinted = highlight_chroma(_bright_things(0.7, coloured_lab=(72.0, 15.0, 25.0)), head)
    assert NEUTRAL_LIGHT_CHROMA < tinted <= limit


def _painted_face(photo: synthetic.SyntheticPhoto, rgb=(70, 120, 200)) -> synthetic.SyntheticPhoto:
    """The photo with its face (ellipse inside the face box) painted one flat-ish colour, keeping
    the shading: a mask or body paint."""
    import cv2

    x, y, w, h = (int(v) for v in photo.face_box)
    mask = np.zeros(photo.rgb.shape[:2], np.uint8)
    cv2.ellipse(mask, (x + w // 2, y + h // 2), (int(0.45 * w), int(0.55 * h)), 0, 0, 360, 1, -1)
    shade = photo.rgb.astype(np.float32).mean(axis=2, keepdims=True) / 160.0
    painted = np.clip(shade * np.float32(rgb), 0, 255).astype(np.uint8)
    return photo.with_rgb(np.where(mask[..., None] > 0, painted, photo.rgb))


def test_a_face_without_skin_colour_under_white_light_is_no_face(phone_photo):
    painted = _painted_face(phone_photo)
    report = gate(painted)
    assert report.codes == ["no_face"], report.codes
    assert report.problems[0].message == MESSAGES["no_face"]
    assert not report.checks["skin_hue_deg"].passed and report.checks["skin_hue_deg"].code == "no_face"
    # The same paint under a coloured light: the light may explain the colour, so coloured_lighting.
    tinted = gate(synthetic.white_balance(painted, (1.6, 1.0, 0.5)))
    assert "coloured_lighting" in tinted.codes and "no_face" not in tinted.codes, tinted.codes
    # And skin under white light is skin.
    assert "no_face" not in gate(phone_photo).codes


def test_roll_and_pitch_trigger_head_turned(phone_photo):
    assert "head_turned" in gate(synthetic.rotate(phone_photo, 20)).codes
    # The mesh's pitch does not follow a 2-D cylinder warp (not a real nod); a nod is caught
    # against the baseline by the eye-mouth foreshortening (test_baseline_comparison).


def test_shadowed_upper_face_is_uneven_lighting(phone_photo):
    # Checked with the true geometry: a strong vertical fall-off also defeats detection.
    shaded = synthetic.one_sided_light(phone_photo, 0.3, axis="y", lit_side="end")
    decoded = decode_image(synthetic.to_jpeg(shaded.rgb), min_long_side=1000)
    report = assess_quality(decoded, truth_geometry(shaded).scaled(decoded.scale))
    assert report.checks["top_bottom_light_ratio"].passed is False
    assert "uneven_lighting" in report.codes


def test_blur_measure_rises_monotonically_with_blur(phone_photo):
    values = [gate(synthetic.blur(phone_photo, s)).checks["blur_percent_of_face_width"].value
              for s in (0.0, 0.005, 0.011, 0.02)]
    assert values == sorted(values)
    # sigma = 0.5 % of the face width (0.011 IOD) fails; the sharp photo passes.
    assert values[0] <= THRESHOLDS["blur_percent_of_face_width"] < values[2]


def test_blur_measure_does_not_depend_on_photo_size(phone_photo):
    full = gate(phone_photo).checks["blur_percent_of_face_width"].value
    smaller = gate(synthetic.rescale(phone_photo, 0.6)).checks["blur_percent_of_face_width"].value
    assert abs(full - smaller) < 0.25 * THRESHOLDS["blur_percent_of_face_width"]


def test_baseline_comparison(phone_photo):
    baseline = detect(phone_photo)
    same = gate(synthetic.shift(phone_photo, 60, -40), baseline_geometry=baseline)
    assert same.ok, same.codes
    assert {"pose_change_deg", "framing_scale_change", "framing_offset"} <= set(same.checks)
    closer = synthetic.rescale(phone_photo, 1.5)
    h, w = phone_photo.rgb.shape[:2]
    offset_y = (closer.rgb.shape[0] - h) // 2
    offset_x = (closer.rgb.shape[1] - w) // 2
    cropped = synthetic.shift(closer, -offset_x, -offset_y)
    cropped = cropped.with_rgb(cropped.rgb[:h, :w])
    assert "framing_differs_from_baseline" in gate(cropped, baseline_geometry=baseline).codes
    moved = synthetic.shift(phone_photo, -700, 0)
    assert "framing_differs_from_baseline" in gate(moved, baseline_geometry=baseline).codes
    turned = synthetic.turn_head(phone_photo, 25)
    assert "pose_differs_from_baseline" in gate(turned, baseline_geometry=baseline).codes
    nodded = synthetic.turn_head(phone_photo, pitch_degrees=-30)
    assert "pose_differs_from_baseline" in gate(nodded, baseline_geometry=baseline).codes


def test_thresholds_and_messages_cover_every_code():
    codes = {"no_face", "multiple_faces", "face_too_small", "face_cut_off", "blurred", "underexposed",
             "overexposed", "uneven_lighting", "coloured_lighting", "glare", "head_turned",
             "pose_differs_from_baseline", "framing_differs_from_baseline", "expression_differs_from_baseline",
             "smoothing_filter"}
    assert set(MESSAGES) == codes
    assert {spec.code for spec in CHECKS.values()} | {"no_face"} == codes
    assert all(spec.threshold in THRESHOLDS for spec in CHECKS.values() if spec.threshold)
    assert all(isinstance(v, (float, tuple)) for v in THRESHOLDS.values())


def test_readme_thresholds_table_is_generated_from_code():
    from pathlib import Path

    from imaging.quality import thresholds_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert thresholds_table() in readme
