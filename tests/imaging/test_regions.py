"""Region masks: placement, exclusions, and robustness to the changes we measure."""

from __future__ import annotations

import numpy as np
import pytest

from capture_helpers import truth_geometry
from imaging.testing import synthetic
from imaging.align import CanonicalFace, to_canonical
from imaging.catalogue import REGION_NAMES
from imaging.geometry import CANONICAL_PX_PER_MM, canonical_shape
from imaging.regions import region_masks, region_outlines, template_mask
from imaging.testing.skin_edits import add_fine_lines, add_haemoglobin, add_melanin_spots


@pytest.fixture(scope="module")
def canonical(phone_photo) -> CanonicalFace:
    return to_canonical(phone_photo.rgb, truth_geometry(phone_photo))


@pytest.fixture(scope="module")
def masks(canonical):
    return region_masks(canonical)


def _with_rgb(face: CanonicalFace, rgb: np.ndarray) -> CanonicalFace:
    return CanonicalFace(rgb, face.valid, face.to_canonical, face.to_image, face.source_size, face.scale)


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
