"""Live framing hints (imaging.preview) on camera-like 640x480 frames of real faces."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imaging.decode import decode_image
from imaging.preview import HINTS, PREVIEW_LONG_SIDE, preview_check
from imaging.testing import faces


#: Frames (different people) each test checks.
FRAMES = 6


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """640x480 frames (face ~45 % of the height) of the first portraits the preview calls ready."""
    from bench.preview import frame_of

    faces.fetch()
    ready = []
    for entry in faces.portraits():
        rgb = decode_image(frame_of(entry, face_fraction=0.45), min_long_side=PREVIEW_LONG_SIDE).rgb
        if preview_check(rgb).ready:
            ready.append(rgb)
        if len(ready) == FRAMES:
            return ready
    pytest.fail("too few portraits make a ready frame")


def codes(rgb: np.ndarray) -> set[str]:
    result = preview_check(rgb)
    assert {hint.code for hint in result.hints} <= set(HINTS)
    return {hint.code for hint in result.hints}


def test_ready_frames_report_a_centred_face_box(frames):
    for rgb in frames:
        result = preview_check(rgb)
        x, y, w, h = result.face_box
        assert 0.3 < x + w / 2 < 0.7 and 0.2 < y + h / 2 < 0.8 and result.n_faces == 1
        assert result.to_dict()["ready"] is True


def test_a_dark_room_asks_for_light(frames):
    answers = [codes((rgb.astype(np.float32) * 0.18).astype(np.uint8)) for rgb in frames]
    assert all(answer & {"too_dark", "no_face"} for answer in answers), answers
    assert sum("too_dark" in answer for answer in answers) >= len(frames) // 2, answers


def test_a_far_away_face_asks_to_come_closer(frames):
    answers = [codes(_shrunk(rgb)) for rgb in frames]
    assert all(answer & {"move_closer", "no_face"} for answer in answers), answers
    assert sum("move_closer" in answer for answer in answers) >= len(frames) // 2, answers


def _shrunk(rgb: np.ndarray, scale: float = 0.4) -> np.ndarray:
    """The frame seen from further away: reduced, in the middle of a grey frame."""
    height, width = rgb.shape[:2]
    w, h = int(width * scale), int(height * scale)
    canvas = np.full_like(rgb, 128)
    y0, x0 = (height - h) // 2, (width - w) // 2
    canvas[y0:y0 + h, x0:x0 + w] = np.asarray(Image.fromarray(rgb).resize((w, h), Image.LANCZOS))
    return canvas


def test_frames_from_the_app_decode_at_preview_size():
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 960), (150, 110, 90)).save(buffer, "JPEG")
    rgb = decode_image(buffer.getvalue(), min_long_side=PREVIEW_LONG_SIDE).rgb
    assert max(rgb.shape[:2]) <= 2 * PREVIEW_LONG_SIDE
    result = preview_check(rgb)
    assert result.face_box is None and [h.code for h in result.hints] == ["no_face"]
