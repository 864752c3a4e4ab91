"""Region masks: placement, exclusions, and robustness to the changes we measure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from capture_helpers import truth_geometry
from imaging.testing import faces, synthetic
from imaging.align import CanonicalFace, to_canonical
from imaging.catalogue import REGION_NAMES
from imaging.analysis import BaselineReference, analyze, baseline_reference_from
from imaging.geometry import CANONICAL_EYES, CANONICAL_PX_PER_MM, canonical_shape
from imaging.regions import (
    CHIN_HEIGHT_LIMITS,
    MAX_MOUTH_GAP,
    REGION_TEMPLATES,
    TEMPLATE_CHIN_TIP_Y,
    TEMPLATE_MOUTH_Y,
    LowerFace,
    region_masks,
    region_outlines,
    region_template,
    template_mask,
)
from imaging.testing.skin_edits import add_fine_lines, add_haemoglobin, add_melanin_spots


@pytest.fixture(scope="module")
def canonical(phone_photo) -> CanonicalFace:
    return to_canonical(phone_photo.rgb, truth_geometry(phone_photo))


@pytest.fixture(scope="module")
def masks(canonical):
    return region_masks(canonical)


def _with_rgb(face: CanonicalFace, rgb: np.ndarray) -> CanonicalFace:
    return replace(face, rgb=rgb)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_masks_have_expected_keys_shapes_and_sizes(masks):
    assert list(masks) == [*REGION_NAMES, "skin"]
    for name in REGION_NAMES:
        mask = masks[name]
        assert mask.dtype == bool and mask.shape == canonical_shape()
        # This subject's fringe hides most of the forehead template: only the band above the brows is skin.
        least = 0.1 if name == "forehead" else 0.5
        assert mask.sum() > least * template_mask(name, mask.shape).sum(), name
    union = np.zeros(canonical_shape(), bool)
    for name in REGION_NAMES:
        assert not (masks[name] & union).any(), "regions overlap"
        union |= masks[name]
    assert np.array_equal(masks["skin"], union)
    # Cheeks are almost all skin on this face; subject's left cheek is on the image's right.
    for cheek in ("left_cheek", "right_cheek"):
        assert masks[cheek].sum() > 0.85 * template_mask(cheek, canonical_shape()).sum()
    assert np.nonzero(masks["left_cheek"])[1].mean() > 384 > np.nonzero(masks["right_cheek"])[1].mean()


def test_features_are_excluded(masks, canonical):
    skin = masks["skin"]
    for (x, y) in ((256, 384), (512, 384), (384, 640), (250, 305)):  # eyes, mouth, right brow
        assert not skin[y - 10 : y + 10, x - 10 : x + 10].any()


def test_hair_over_the_forehead_is_excluded(masks, canonical):
    # This subject's fringe covers the top of the forehead template: dark hair must go.
    from imaging.regions import canonical_lab

    lightness = canonical_lab(canonical.rgb)[..., 0]
    forehead = masks["forehead"]
    template = template_mask("forehead", forehead.shape)
    cheek_l = np.median(lightness[masks["right_cheek"]])
    dark_hair = template & (lightness < cheek_l - 30)
    assert dark_hair.sum() > 1000  # the test is not vacuous
    assert (forehead & dark_hair).sum() < 0.02 * dark_hair.sum()


def test_glare_and_outside_pixels_are_excluded(phone_photo):
    shiny = synthetic.glare_spots(phone_photo, 8)
    face = to_canonical(shiny.rgb, truth_geometry(shiny))
    masks = region_masks(face)
    white = face.rgb.min(axis=2) >= 250
    assert white.sum() > 500
    assert not (masks["skin"] & white).any()
    cut = synthetic.cut_off(phone_photo, 0.0, "bottom")
    face = to_canonical(cut.rgb, truth_geometry(cut))
    masks = region_masks(face)
    assert not (masks["skin"] & ~face.valid).any()
    assert masks["chin"].sum() < 0.5 * template_mask("chin", canonical_shape()).sum()


def _linear(rgb: np.ndarray) -> np.ndarray:
    return synthetic.srgb_to_linear(rgb)


@pytest.mark.parametrize("edit", ["red_patch", "brown_spots", "fine_lines"])
def test_measured_changes_leave_the_cheek_mask_nearly_unchanged(canonical, masks, edit):
    cheek = masks["left_cheek"]
    linear = _linear(canonical.rgb)
    if edit == "red_patch":
        patch = np.zeros_like(cheek)
        ys, xs = np.nonzero(cheek)
        cy, cx = int(ys.mean()), int(xs.mean())
        patch[cy - 45 : cy + 45, cx - 55 : cx + 55] = True  # ~27 x 22 mm erythema
        edited = add_haemoglobin(linear, patch & cheek, 0.2)
    elif edit == "brown_spots":
        edited = add_melanin_spots(linear, cheek, n=12, diameter_mm=3.0, density=0.3, px_per_mm=CANONICAL_PX_PER_MM)
    else:
        edited = add_fine_lines(linear, cheek, n=8, depth=0.15, px_per_mm=CANONICAL_PX_PER_MM)
    rgb = synthetic.linear_to_srgb(edited)
    assert np.abs(rgb.astype(int) - canonical.rgb.astype(int)).max() > 25  # a visible change
    after = region_masks(_with_rgb(canonical, rgb))
    assert _iou(after["left_cheek"], cheek) > 0.97
    assert _iou(after["skin"], masks["skin"]) > 0.97


def test_placement_is_identical_for_registered_photos(canonical, masks):
    # Same canonical pixels -> same masks (placement is a template, not a per-photo fit).
    again = region_masks(_with_rgb(canonical, canonical.rgb.copy()))
    for name in masks:
        assert np.array_equal(again[name], masks[name])


def test_region_outlines_are_closed_contours(masks):
    outlines = region_outlines(masks)
    assert set(outlines) == set(masks)
    for name in REGION_NAMES:
        largest = outlines[name][0]
        assert largest.ndim == 2 and largest.shape[1] == 2 and len(largest) >= 4
        ys, xs = np.nonzero(masks[name])
        assert xs.min() <= largest[:, 0].min() + 1 and largest[:, 0].max() <= xs.max() + 1


def test_half_scale_masks_match_full_scale(phone_photo, masks):
    half = to_canonical(phone_photo.rgb, truth_geometry(phone_photo), scale=0.5)
    half_masks = region_masks(half)
    import cv2

    for name in ("left_cheek", "right_cheek", "nose", "chin"):
        up = cv2.resize(half_masks[name].astype(np.uint8), (768, 1024), interpolation=cv2.INTER_NEAREST).astype(bool)
        assert _iou(up, masks[name]) > 0.85, name


#: The canonical eye line (imaging.geometry.CANONICAL_EYES) and a mouth centre placed for a stretch.
EYE_LINE_Y = CANONICAL_EYES[0][1]


def mouth_for(stretch: float) -> float:
    return EYE_LINE_Y + stretch * (TEMPLATE_MOUTH_Y - EYE_LINE_Y)


@pytest.mark.parametrize("mouth_y, gap, stretch", [
    (TEMPLATE_MOUTH_Y, 0.0, 1.0),
    (mouth_for(1.2), 0.0, 1.2),
    (mouth_for(0.9), 0.0, 0.9),
    (mouth_for(1.2) + 30.0, 60.0, 1.2),  # an open mouth: the upper lip places the mid-face
    (mouth_for(1.2), float("nan"), 1.2),  # a gap not measured reads closed
    (mouth_for(1.0) + 100.0, 200.0, 1.0),  # a yawn: the upper lip stays where it is
    (2000.0, 0.0, 1.0),  # a mouth far off was misplaced: the templates as drawn
    (100.0, 0.0, 1.0),
    (float("nan"), 0.0, 1.0),
    (None, 0.0, 1.0),
])
def test_the_mid_face_stretches_to_the_upper_lip(mouth_y, gap, stretch):
    assert LowerFace.at(mouth_y, gap).stretch == pytest.approx(stretch)


def test_the_lip_zone_grows_with_the_gap_up_to_a_limit():
    closed = LowerFace.at(TEMPLATE_MOUTH_Y, 0.0).mouth_zone()
    open_ = LowerFace.at(TEMPLATE_MOUTH_Y + 20.0, 40.0).mouth_zone()
    yawn = LowerFace.at(TEMPLATE_MOUTH_Y + 100.0, 200.0).mouth_zone()
    assert open_[0][1] == pytest.approx(TEMPLATE_MOUTH_Y + 20.0)
    assert open_[1][1] == pytest.approx(closed[1][1] + 20.0)
    assert yawn[1][1] == pytest.approx(closed[1][1] + MAX_MOUTH_GAP / 2)


def test_templates_below_the_eye_line_follow_the_lips_and_the_chin():
    face = LowerFace.at(mouth_for(1.25) + 10.0, 20.0, lip_edge_y=760.0, chin_tip_y=900.0)  # upper lip at 1.25
    assert np.array_equal(region_template("forehead", face), np.asarray(REGION_TEMPLATES["forehead"], float))
    nose, drawn_nose = region_template("nose", face), np.asarray(REGION_TEMPLATES["nose"], float)
    assert np.array_equal(nose[:, 0], drawn_nose[:, 0])
    assert np.allclose(nose[:, 1] - EYE_LINE_Y, 1.25 * (drawn_nose[:, 1] - EYE_LINE_Y))
    # The chin spans from the lower lip's edge to the template's margin above the chin's tip.
    chin, drawn_chin = region_template("chin", face), np.asarray(REGION_TEMPLATES["chin"], float)
    assert np.array_equal(chin[:, 0], drawn_chin[:, 0])
    assert chin[:, 1].min() == pytest.approx(760.0)
    assert chin[:, 1].max() == pytest.approx(900.0 - (TEMPLATE_CHIN_TIP_Y - drawn_chin[:, 1].max()))
    mask = template_mask("chin", canonical_shape(), face=face)
    assert np.nonzero(mask)[0].min() == pytest.approx(760, abs=1)
    # A chin tip the mesh put on the lip neither collapses the region nor sends it down the neck.
    squashed = region_template("chin", LowerFace.at(mouth_for(1.0), 0.0, lip_edge_y=700.0, chin_tip_y=710.0))
    height = np.ptp(drawn_chin[:, 1])
    assert np.ptp(squashed[:, 1]) == pytest.approx(CHIN_HEIGHT_LIMITS[0] * height)
    # Without the lower lip's edge and the chin's tip (stored before 2026.12.8): placed as on the template face.
    old = region_template("chin", LowerFace.at(mouth_for(1.0), 0.0))
    assert np.allclose(old, drawn_chin)


def test_the_canonical_face_carries_the_lower_face(phone_photo, canonical):
    # The eyes are at y=384, 256 px apart: a point lies its distance from the photo's eye line
    # (in IODs) x 256 px below.
    right, left = (np.asarray(p, float) for p in (phone_photo.right_eye, phone_photo.left_eye))
    across = left - right
    iod = float(np.hypot(*across))

    def in_canonical(point) -> tuple[float, float]:
        offset = np.asarray(point, float) - (right + left) / 2
        along = float(across @ offset) / iod**2
        below = float(across[0] * offset[1] - across[1] * offset[0]) / iod**2
        return 384.0 + 256 * along, EYE_LINE_Y + 256 * below

    assert canonical.mouth == pytest.approx(in_canonical(phone_photo.mouth), abs=0.5)


def test_registration_moves_the_landmarks_with_the_face(medium_photo):
    # A follow-up placed 6 px off by its eyes is registered onto its baseline: its landmarks move
    # with the correction, onto the baseline's.
    geometry = truth_geometry(medium_photo)
    baseline = to_canonical(medium_photo.rgb, replace(geometry, chin=(np.nan, np.nan)))
    shifted = replace(geometry, right_eye=tuple(np.add(geometry.right_eye, (0.0, 6.0))),
                      left_eye=tuple(np.add(geometry.left_eye, (0.0, 6.0))))
    placed = to_canonical(medium_photo.rgb, shifted)
    registered = to_canonical(medium_photo.rgb, shifted, baseline=baseline)
    assert registered.registration is not None and registered.registration.converged
    assert abs(placed.mouth[1] - baseline.mouth[1]) > 5.0
    assert registered.mouth == pytest.approx(baseline.mouth, abs=1.0)


def test_a_baseline_reference_gives_its_follow_ups_the_baselines_own_regions():
    # A follow-up's regions are the baseline's (analysis.follow_up_masks of
    # BaselineReference.region_masks): they must be the masks the baseline's own analysis measured,
    # placed for its lips and chin, also once the reference was stored and read back.
    faces.fetch(image_ids=["nicolas_cage"])
    result = analyze(synthetic.to_png(faces.load("nicolas_cage")))
    reference = baseline_reference_from(result)
    stored = BaselineReference.from_bytes(reference.to_bytes())
    assert LowerFace.of(result.canonical).stretch > 1.2  # a long lower face: the placement is exercised
    for kept in (reference, stored):
        face = kept.canonical_face()
        for name in ("mouth", "lower_lip", "chin"):
            assert getattr(face, name) == pytest.approx(getattr(result.canonical, name)), name
        for name, mask in kept.region_masks.items():
            assert np.array_equal(mask, result.masks[name]), name
