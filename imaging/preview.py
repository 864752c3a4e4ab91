"""Live framing hints for a camera preview: a fast subset of the quality gate on a small frame.

The phone sends a downscaled frame (about 640x480 JPEG) a few times a second while the
patient frames the photo; the answer must come back in well under a frame budget (p50 <= 100
ms on two cores; ``bench/preview.py`` measures it). So this module runs only the face
detector (:func:`imaging.face.detect_face`, whose pose it reports) and cheap pixel statistics
on the face box, and words the result as directions ("move closer", "turn a little to your
left", "face the window"). It uses the gate's own thresholds
(:data:`imaging.quality.THRESHOLDS`): a frame the preview calls ready is likely, not certain,
to pass the full gate, which still judges the photo itself after upload.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.colour_space import srgb_luminance
from imaging.quality import MESSAGES, THRESHOLDS

import cv2  # noqa: E402

#: Longest side the preview works at: larger frames are reduced first (cost grows with area).
PREVIEW_LONG_SIDE = 640
#: Face centre farther than this (fraction of the frame's short side) from the frame centre
#: (where the app draws its oval) asks the patient to centre.
CENTRE_TOLERANCE = 0.12
#: The oval asks for a face at least this wide (fraction of the frame's short side): well
#: above the gate's ``face_width_fraction`` minimum, so a photo taken now is not too small.
OVAL_FACE_FRACTION = 0.35
#: Face box wider than this fraction of the frame's short side asks the patient to move back.
FACE_WIDTH_MAX = 0.8

HINTS = {
    "no_face": MESSAGES["no_face"],
    "multiple_faces": MESSAGES["multiple_faces"],
    "move_closer": "Move a little closer so your face fills the oval.",
    "move_back": "Move the phone a little further away.",
    "centre_face": "Centre your face in the oval.",
    "turn_left": "Turn your head a little to your left.",
    "turn_right": "Turn your head a little to your right.",
    "level_head": "Keep your head level.",
    "chin_level": "Keep your chin level and look straight into the camera.",
    "too_dark": "Too dark: face a window or a bright, even light.",
    "too_bright": "Too bright: move out of direct sunlight.",
    "face_the_light": "One side of your face is in shadow: face the window.",
}


@dataclass(frozen=True)
class Hint:
    """One direction for the patient (``code`` is stable; ``message`` is what the app shows)."""

    code: str
    message: str


@dataclass(frozen=True)
class PreviewCheck:
    """What the preview found in one frame.

    Attributes
    ----------
    face_box : (x, y, width, height) or None
        Fractions of the frame's width and height (0..1), for drawing.
    yaw_deg, pitch_deg, roll_deg : float or None
        Pose as :class:`imaging.face.FaceGeometry` reports it.
    skin_lightness : float or None
        Median CIELAB L* of the face box's centre.
    left_right_light : float or None
        Darker / brighter half of the face centre (linear light), 0..1.
    hints : list of Hint
        Most important first; empty when the frame looks ready.
    """

    face_box: tuple[float, float, float, float] | None
    n_faces: int
    yaw_deg: float | None
    pitch_deg: float | None
    roll_deg: float | None
    skin_lightness: float | None
    left_right_light: float | None
    hints: list[Hint] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.hints

    def to_dict(self) -> dict:
        return {**asdict(self), "ready": self.ready}


def _hint(code: str) -> Hint:
    return Hint(code, HINTS[code])


def _light_statistics(rgb: np.ndarray, box) -> tuple[float, float]:
    """Median L* and the left/right light ratio of the central part of the face box."""
    x, y, w, h = box
    height, width = rgb.shape[:2]
    x0, x1 = int(max(0, x + 0.2 * w)), int(min(width, x + 0.8 * w))
    y0, y1 = int(max(0, y + 0.25 * h)), int(min(height, y + 0.85 * h))
    centre = rgb[y0:y1, x0:x1]
    if centre.size == 0 or min(centre.shape[:2]) < 4:
        return float("nan"), float("nan")
    lab = cv2.cvtColor(centre.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lightness = float(np.median(lab[..., 0]))
    luminance = srgb_luminance(centre)
    half = luminance.shape[1] // 2
    left, right = (float(np.percentile(part, 75)) for part in (luminance[:, :half], luminance[:, half:]))
    return lightness, min(left, right) / max(left, right, 1e-6)


def preview_check(rgb: np.ndarray) -> PreviewCheck:
    """Framing, pose, exposure and light hints for one preview frame.

    The gate's face detector (:func:`imaging.face.detect_face`: BlazeFace + FaceMesh, the same
    face count, pose and face-presence score the gate uses) on the frame reduced to
    :data:`PREVIEW_LONG_SIDE`, and cheap light statistics on the face box.

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3
        The frame, upright, as the camera captured it (not mirrored).

    Returns
    -------
    PreviewCheck
    """
    from imaging.detail import FACE_WIDTH_IOD
    from imaging.face import FACE_SCORE_MIN, detect_face
    from imaging.quality import highlight_lightness
    from imaging.raster import downscale_long_side

    if max(rgb.shape[:2]) > PREVIEW_LONG_SIDE:
        rgb, _ = downscale_long_side(rgb, PREVIEW_LONG_SIDE)
    height, width = rgb.shape[:2]
    t = THRESHOLDS
    geometry = detect_face(rgb)
    if geometry is None or not geometry.face_score >= FACE_SCORE_MIN:
        return PreviewCheck(None, 0, None, None, None, None, None, [_hint("no_face")])
    box = geometry.box
    x, y, w, h = box
    n_faces = geometry.n_faces
    short = float(min(width, height))
    hints: list[Hint] = []
    if n_faces > 1:
        hints.append(_hint("multiple_faces"))
    # Face width from the eyes (the gate's convention), not the detector's tighter box.
    face_width = FACE_WIDTH_IOD * geometry.iod
    if face_width / short < OVAL_FACE_FRACTION:
        hints.append(_hint("move_closer"))
    elif face_width / short > FACE_WIDTH_MAX:
        hints.append(_hint("move_back"))
    centre_offset = np.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2) / short
    if centre_offset > CENTRE_TOLERANCE:
        hints.append(_hint("centre_face"))
    yaw, pitch, roll = geometry.yaw_deg, geometry.pitch_deg, geometry.roll_deg
    if abs(yaw) > t["yaw_deg"] / 2:
        # Positive yaw: the face turns towards the image's right, the subject's left.
        hints.append(_hint("turn_right" if yaw > 0 else "turn_left"))
    if abs(roll) > t["roll_deg"]:
        hints.append(_hint("level_head"))
    if pitch > t["pitch_deg"]:
        hints.append(_hint("chin_level"))
    lightness, left_right = _light_statistics(rgb, box)
    # Dark as the gate judges it: the frame's highlights (the light), or skin far below any tone.
    if highlight_lightness(rgb) < t["highlight_lightness_min"]:
        hints.append(_hint("too_dark"))
    elif np.isfinite(lightness):
        if lightness < t["skin_lightness_min"]:
            hints.append(_hint("too_dark"))
        elif lightness > t["skin_lightness_max"]:
            hints.append(_hint("too_bright"))
    if np.isfinite(left_right) and left_right < t["left_right_light_ratio"]:
        hints.append(_hint("face_the_light"))
    return PreviewCheck(
        face_box=(x / width, y / height, w / width, h / height), n_faces=n_faces,
        yaw_deg=float(yaw), pitch_deg=float(pitch), roll_deg=float(roll),
        skin_lightness=lightness if np.isfinite(lightness) else None,
        left_right_light=left_right if np.isfinite(left_right) else None,
        hints=hints,
    )
