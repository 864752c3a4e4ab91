"""The redness reference region on the real-face set: the chin when a fringe hides the forehead,
a follow-up measured against its baseline's reference region whatever its own forehead shows, and
registration that a change of hair does not disturb."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imaging.analysis import analyze, baseline_reference_from
from imaging.geometry import CANONICAL_PX_PER_MM
from imaging.measures import MIN_REFERENCE_AREA_MM2
from imaging.testing import faces, synthetic

#: The fringe, in inter-ocular distances from the eye midpoint: across, and above the eye line
#: (the forehead template spans ~0.33-0.89 IOD above it; the brows sit just under its lower edge).
FRINGE_HALF_WIDTH_IOD = 1.0
FRINGE_ABOVE_EYES_IOD = (0.3, 1.5)
#: A shorter fringe, over the upper two thirds of the forehead only.
SHORT_FRINGE_ABOVE_EYES_IOD = (0.5, 1.5)
#: Dark brown hair (sRGB), with strands so it is not a flat colour.
HAIR_SRGB = (52, 38, 30)


def with_fringe(rgb: np.ndarray, entry: faces.FaceImage,
                above_eyes_iod: tuple[float, float] = FRINGE_ABOVE_EYES_IOD) -> np.ndarray:
    """``rgb`` with dark hair drawn over the forehead, following the eye line's roll."""
    right, left = np.asarray(entry.eye_right, float), np.asarray(entry.eye_left, float)
    across = left - right
    iod = float(np.hypot(*across))
    across /= iod
    up = np.array([across[1], -across[0]])  # perpendicular, towards the top of the head
    mid = (right + left) / 2
    low, high = above_eyes_iod
    corners = [mid + iod * (sx * FRINGE_HALF_WIDTH_IOD * across + h * up)
               for sx, h in ((-1, low), (1, low), (1, high), (-1, high))]
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    strands = 1.0 + 0.25 * np.sin(np.arange(rgb.shape[1]) * 2 * np.pi / max(3.0, iod / 40))[None, :, None]
    hair = np.clip(np.asarray(HAIR_SRGB, float)[None, None] * strands, 0, 255)
    out = rgb.copy()
    out[mask.astype(bool)] = np.broadcast_to(hair, rgb.shape)[mask.astype(bool)].astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def analysed() -> list[tuple[str, object, object, object, object]]:
    """Per portrait: the plain photo alone (a baseline), the fringed photo (a baseline), the plain
    photo as the fringed one's follow-up, and a short fringe as the plain one's follow-up."""
    faces.fetch()
    out = []
    for entry in faces.portraits():
        rgb = faces.load(entry.id)
        plain = synthetic.to_png(rgb)
        fringed = analyze(synthetic.to_png(with_fringe(rgb, entry)))
        if fringed.canonical is None:
            continue
        follow_up = analyze(plain, baseline=baseline_reference_from(fringed))
        alone = analyze(plain)
        short = analyze(synthetic.to_png(with_fringe(rgb, entry, SHORT_FRINGE_ABOVE_EYES_IOD)),
                        baseline=baseline_reference_from(alone))
        out.append((entry.id, alone, fringed, follow_up, short))
    return out


def measured_area_mm2(result, region: str) -> float:
    """Measured (unclipped) skin of a region, mm^2."""
    return result.regions[region]["pixel_count"] / CANONICAL_PX_PER_MM**2


def test_a_fringe_makes_the_chin_the_reference_on_every_face(analysed):
    assert len(analysed) >= 30, "faces were not found"
    for face_id, _, fringed, _, _ in analysed:
        assert measured_area_mm2(fringed, "forehead") < MIN_REFERENCE_AREA_MM2, face_id  # the fringe hides it
        if measured_area_mm2(fringed, "chin") < MIN_REFERENCE_AREA_MM2:
            # A beard leaves too little chin skin: no reference, so no redness anywhere.
            assert fringed.redness_reference is None, face_id
            assert fringed.metrics["redness"] is None and fringed.metrics["delta_a_star"] is None, face_id
            assert all(entry["redness"] is None for entry in fringed.regions.values()), face_id
            continue
        assert fringed.redness_reference == "chin", face_id
        assert fringed.regions["chin"]["redness"] is None, face_id  # the reference has no value
        assert fringed.regions["chin"]["delta_a_star"] == 0.0, face_id
        for region in ("left_cheek", "right_cheek", "nose"):
            assert np.isfinite(fringed.regions[region]["redness"]), (face_id, region)
        assert np.isfinite(fringed.metrics["redness"]), face_id
    chin = [face_id for face_id, _, fringed, _, _ in analysed if fringed.redness_reference == "chin"]
    assert len(chin) >= len(analysed) - 2, sorted(set(f for f, *_ in analysed) - set(chin))
    # Without the fringe the forehead is the reference, except where a hat already hides it.
    forehead = [face_id for face_id, plain, _, _, _ in analysed if plain.redness_reference == "forehead"]
    assert len(forehead) >= len(analysed) - 2, sorted(set(f for f, *_ in analysed) - set(forehead))


def test_a_follow_up_keeps_its_baselines_reference(analysed):
    for face_id, _, fringed, follow_up, _ in analysed:
        if fringed.redness_reference is None:
            # No reference at baseline, none at the follow-up: a series never mixes regions.
            assert follow_up.redness_reference is None and follow_up.metrics["redness"] is None, face_id
            continue
        # Its own forehead is visible, yet it is measured against the chin, as its baseline was.
        assert follow_up.redness_reference == "chin", face_id
        assert follow_up.regions["chin"]["redness"] is None, face_id


def test_a_fringe_does_not_disturb_registration(analysed):
    """The same photo, registered onto its copy with a fringe: what differs is left out of the match
    (imaging.align.OUTLIER_SD), so it registers and the cheeks read the same contrast against the
    same chin (MDC95 of all-skin redness: ~0.7 centi-OD). Matching the fringe too, 10 of 32 faces
    failed to register and 9 moved by 1.4-8.5 centi-OD."""
    off = {}
    for face_id, _, fringed, follow_up, _ in analysed:
        assert follow_up.registration is not None and follow_up.registration["converged"], face_id
        if fringed.redness_reference is None:
            continue
        off[face_id] = max(abs(follow_up.regions[r]["redness"] - fringed.regions[r]["redness"])
                           for r in ("left_cheek", "right_cheek", "nose"))
    assert len(off) >= len(analysed) - 2
    assert max(off.values()) < 1.5, off
    assert sum(value > 0.5 for value in off.values()) <= 1, {k: v for k, v in off.items() if v > 0.5}


#: Faces on which the short fringe is not seen as something in front of the skin: the test's brown
#: hair is within OCCLUSION_OD of this dark, dimly lit skin, so hair is averaged into the
#: reference. A face newly going wrong fails the test; one that becomes right is reported.
KNOWN_UNDETECTED_FRINGE = {"john_salley_dark"}
#: Faces whose fill-in is off by a little more than the test's 1 centi-OD though the fringe is seen:
#: `ethan_taylor` (type VI) reads its cheeks and nose 1.15 higher under the short fringe; with the
#: skin-colour sample (imaging.regions.skin_reference) 4 px higher, as placed before 2026.12.8, 0.87.
#: A face newly going wrong still fails the test; one that becomes right is reported.
KNOWN_FILL_IN_RESIDUAL = {"ethan_taylor"}


def test_a_follow_up_with_part_of_its_reference_hidden_reads_the_same_redness(analysed):
    """A short fringe at a follow-up hides the upper forehead; the lower part's mean differs from
    the whole forehead's (the cheeks moved by up to 40 centi-OD), and the baseline's own difference between
    the two fills it in (imaging.measures.reference_fill_in), so the unchanged cheeks read the same."""
    wrong, hidden, compared = set(), 0, 0
    for face_id, plain, _, _, short in analysed:
        if plain.redness_reference != "forehead":
            continue
        assert short.redness_reference == "forehead", face_id  # the baseline's, kept
        assert short.registration["converged"], face_id
        share = short.masks["forehead"].sum() / plain.masks["forehead"].sum()
        hidden += share < 0.9
        if short.metrics["redness"] is None:  # too little forehead left to be a reference
            assert short.regions["forehead"]["pixel_count"] / CANONICAL_PX_PER_MM**2 < MIN_REFERENCE_AREA_MM2
            continue
        compared += 1
        if any(abs(short.regions[r]["redness"] - plain.regions[r]["redness"]) > 1.0
               for r in ("left_cheek", "right_cheek", "nose")):
            wrong.add(face_id)
    assert hidden >= len(analysed) - 5, hidden  # the fringe hid part of most foreheads: not vacuous
    assert compared >= len(analysed) - 4, compared
    known = KNOWN_UNDETECTED_FRINGE | KNOWN_FILL_IN_RESIDUAL
    assert wrong <= known, sorted(wrong - known)
    assert wrong == known, f"now right, remove from the lists: {sorted(known - wrong)}"
