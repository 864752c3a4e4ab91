"""Overlays: valid PNGs, fixed colour scales, same regions on before/after."""

import cv2
import numpy as np
import pytest

from imaging import overlays
from imaging.measures import compute_maps
from imaging.testing import skin_edits
from measures_fixtures import PX_PER_MM, canonical_face_linear, canonical_face_uint8, region_masks

MASKS = region_masks()


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _maps(linear):
    return compute_maps(linear, MASKS["skin"], PX_PER_MM)


def test_all_overlays_are_pngs_of_the_expected_size():
    linear = canonical_face_linear()
    result = overlays.render_all(canonical_face_uint8(), linear, MASKS, _maps(linear))
    assert set(result) == {"redness", "pigment_spots", "wrinkles", "regions"}
    h, w = linear.shape[:2]
    for name in ("redness", "pigment_spots", "wrinkles"):
        assert _decode(result[name]).shape == (h, w + overlays.LEGEND_WIDTH, 3)
    assert _decode(result["regions"]).shape == (h, w, 3)


def test_png_has_no_metadata_chunks():
    linear = canonical_face_linear()
    png = overlays.regions_overlay(canonical_face_uint8(), MASKS)
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf"):
        assert chunk not in png
    assert len(png) < 3_000_000 and linear is not None


def test_redness_scale_is_fixed_across_photos():
    face = canonical_face_linear()
    redder = skin_edits.add_haemoglobin(face, MASKS["skin"], 0.15)
    a = _decode(overlays.redness_overlay(face, _maps(face), MASKS))
    b = _decode(overlays.redness_overlay(redder, _maps(redder), MASKS))
    w = face.shape[1]
    # Same legend (colour bar and labels) whatever the photo: the scale is not per-image.
    assert np.array_equal(a[:, w:], b[:, w:])
    # Inside the reddened skin the map differs, outside the skin the photo is untouched.
    skin, outside = MASKS["skin"], ~cv2.dilate(MASKS["skin"].astype(np.uint8), np.ones((9, 9))).astype(bool)
    assert np.abs(a[:, :w][skin].astype(int) - b[:, :w][skin].astype(int)).mean() > 5
    assert np.array_equal(a[:, :w][outside], b[:, :w][outside])


def test_heat_layer_maps_equal_values_to_equal_colours():
    photo = np.full((10, 10, 3), 128, np.uint8)
    values = np.full((10, 10), 0.5, np.float32)
    mask = np.ones((10, 10), bool)
    one = overlays.heat_layer(photo, values, mask, overlays.REDNESS_RANGE, cv2.COLORMAP_HOT)
    values2 = values.copy()
    values2[0, 0] = 5.0  # an outlier elsewhere must not rescale the map
    two = overlays.heat_layer(photo, values2, mask, overlays.REDNESS_RANGE, cv2.COLORMAP_HOT)
    assert np.array_equal(one[1:, 1:], two[1:, 1:])
    below = overlays.heat_layer(photo, np.zeros((10, 10), np.float32), mask, overlays.REDNESS_RANGE, cv2.COLORMAP_HOT)
    assert np.array_equal(below, photo)  # below the scale: photo shows through


def test_spots_and_lines_are_drawn():
    face = canonical_face_linear()
    edited = skin_edits.add_fine_lines(
        skin_edits.add_melanin_spots(face, MASKS["skin"], 30, 3.0, 0.25, PX_PER_MM, seed=1),
        MASKS["skin"], 30, 0.15, PX_PER_MM, seed=1,
    )
    maps = _maps(edited)
    wrinkles = _decode(overlays.wrinkle_overlay(edited, maps, MASKS))
    w = face.shape[1]
    line_px = (wrinkles[:, :w] == overlays._LINE_COLOUR).all(axis=2)
    assert line_px[maps.texture["wrinkles"]].mean() > 0.95
    pigment = _decode(overlays.pigment_overlay(edited, maps, MASKS))
    assert (pigment[:, :w] == overlays._SPOT_COLOUR).all(axis=2).sum() > 200


def test_before_after_pair_side_by_side_with_same_regions():
    before = canonical_face_uint8()
    after = skin_edits.add_haemoglobin(canonical_face_linear(None), MASKS["skin"], 0.1)
    pair = _decode(overlays.before_after_pair(before, after, MASKS))
    h, w = before.shape[:2]
    assert pair.shape == (h, 2 * w + 8, 3)
    left, right = pair[:, :w], pair[:, w + 8 :]
    outline = (left == overlays._REGION_COLOURS["forehead"]).all(axis=2)
    assert outline.sum() > 100
    assert np.array_equal(outline[40:], (right == overlays._REGION_COLOURS["forehead"]).all(axis=2)[40:])
    with pytest.raises(ValueError):
        overlays.before_after_pair(before, before[:100], MASKS)


def test_render_all_adds_before_after_with_a_baseline_and_computes_maps():
    class Canonical:  # any object with an ``rgb`` array, like imaging.align.CanonicalFace
        rgb = canonical_face_uint8()

    result = overlays.render_all(Canonical(), canonical_face_linear(), MASKS, baseline_canonical=Canonical())
    assert set(result) == {"redness", "pigment_spots", "wrinkles", "regions", "before_after"}
    h, w = Canonical.rgb.shape[:2]
    assert _decode(result["before_after"]).shape == (h, 2 * w + 8, 3)
