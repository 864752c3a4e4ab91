"""Region placement on the real-face set: on every face the chin region is skin below the lower
lip, and the cheeks and nose stay above the upper lip.

Checked against the face mesh's outlines of the lips (FaceMesh landmarks), which region placement
does not read (it reads the inner lips' midpoints and the lower lip's lowest point). With templates
fixed at one face's proportions (before 2026.12.8), 15 of the 33 faces had more than 5 % of their
chin region on the lower lip (all of it on a talking face); placed for each face's lips and chin,
none has any.
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging.align import to_canonical
from imaging.face import detect_face, detect_face_boxes, face_mesh
from imaging.geometry import apply_affine
from imaging.regions import region_masks
from imaging.testing import faces

#: FaceMesh's outer contours of the lower and the upper lip, from one mouth corner to the other.
OUTER_LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
OUTER_UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
#: Largest share of a region that may lie on the lips (under 1 %: a pixel row of the outline).
MAX_SHARE_ON_LIPS = 0.01


def _share_beyond(mask: np.ndarray, outline: np.ndarray, above: bool) -> float:
    """Share (0..1) of ``mask``'s pixels above (or below) ``outline`` in the columns it spans."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return float("nan")
    order = np.argsort(outline[:, 0])
    line_x, line_y = outline[order, 0], outline[order, 1]
    line = np.interp(xs, line_x, line_y)
    beyond = (ys < line) if above else (ys > line)
    return float((beyond & (xs >= line_x.min()) & (xs <= line_x.max())).mean())


def lip_shares(rgb: np.ndarray) -> tuple[float, float]:
    """(share of the chin region above the lower lip's outline, share of the cheeks and nose below
    the upper lip's outline); NaN when no face or an empty region."""
    geometry = detect_face(rgb)
    boxes = detect_face_boxes(rgb)
    if geometry is None or not boxes:
        return float("nan"), float("nan")
    points = face_mesh(rgb, boxes[0]).points[:, :2]
    canonical = to_canonical(rgb, geometry)
    masks = region_masks(canonical)
    lower, upper = (apply_affine(canonical.to_canonical, points[list(lip)]) for lip in (OUTER_LOWER_LIP, OUTER_UPPER_LIP))
    mid_face = masks["left_cheek"] | masks["right_cheek"] | masks["nose"]
    return _share_beyond(masks["chin"], lower, above=True), _share_beyond(mid_face, upper, above=False)


@pytest.fixture(scope="module")
def shares() -> dict[str, tuple[float, float]]:
    faces.fetch()
    return {entry.id: lip_shares(faces.load(entry.id)) for entry in faces.portraits()}


def test_no_region_holds_a_lip(shares):
    assert len(shares) >= 30 and all(np.isfinite(v).all() for v in shares.values())
    chin_on_lip = {face: round(v[0], 3) for face, v in shares.items() if v[0] > MAX_SHARE_ON_LIPS}
    mid_face_on_lip = {face: round(v[1], 3) for face, v in shares.items() if v[1] > MAX_SHARE_ON_LIPS}
    assert not chin_on_lip, chin_on_lip
    assert not mid_face_on_lip, mid_face_on_lip
