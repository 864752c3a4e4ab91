"""Shared fixtures for the measures tests: a real face in the canonical frame with regions.

The face is ``skimage.data.astronaut()`` (public domain, no download) warped with a similarity
transform from eye centres read off the image by hand, so it lies in the canonical frame used by
the measures. Region masks are fixed ellipses placed for this face (the measures tests must not
depend on the "capture" engineer's region placement).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import skimage.data

from imaging.colour_space import srgb_to_linear
from imaging.geometry import CANONICAL_PX_PER_MM, canonical_shape, similarity_from_eyes
from imaging.testing.synthetic import colorchecker_card

#: Eye centres in astronaut() (x, y): subject's right eye (image-left), subject's left eye.
ASTRONAUT_EYES = ((206.3, 100.8), (247.5, 103.3))
PX_PER_MM = CANONICAL_PX_PER_MM

# (centre x, centre y, half-width, half-height) in canonical pixels.
_REGION_ELLIPSES = {
    "forehead": (384, 275, 100, 40),
    "right_cheek": (250, 520, 55, 60),
    "left_cheek": (520, 525, 55, 60),
    "nose": (384, 500, 30, 55),
    "chin": (384, 800, 70, 35),
}


@lru_cache(maxsize=1)
def _canonical_uint8() -> np.ndarray:
    matrix = similarity_from_eyes(*ASTRONAUT_EYES)
    h, w = canonical_shape()
    return cv2.warpAffine(skimage.data.astronaut(), matrix, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def canonical_face_uint8() -> np.ndarray:
    """Canonical astronaut face, uint8 sRGB 1024x768x3 (a fresh copy)."""
    return _canonical_uint8().copy()


#: The source photo is exposed so brightly that half the skin clips at +30 % exposure; scaled
#: to 70 % it has the skin level of a phone's auto-exposure (skin L* ~ 68).
EXPOSURE = 0.7


def canonical_face_linear(seed: int | None = 0) -> np.ndarray:
    """Canonical face as float32 linear sRGB at ``EXPOSURE``; with ``seed``, adds skin grain.

    The upscaled 512 px source has almost no pore-scale texture; a faint, fixed, band-limited
    shading grain (1.5 % modulation) makes it more like a phone photo of skin.
    """
    linear = srgb_to_linear(_canonical_uint8()) * np.float32(EXPOSURE)
    if seed is None:
        return linear
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.normal(0.0, 1.0, linear.shape[:2]).astype(np.float32), (0, 0), 1.0)
    grain *= 0.015 / grain.std()
    return np.clip(linear * (1.0 + grain)[..., None], 0.0, 1.0).astype(np.float32)


def region_masks() -> dict[str, np.ndarray]:
    """Region masks (bool 1024x768) for the canonical astronaut, plus ``skin`` (union)."""
    h, w = canonical_shape()
    masks = {}
    for name, (cx, cy, ax, ay) in _REGION_ELLIPSES.items():
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (cx, cy), (ax, ay), 0, 0, 360, 1, -1)
        masks[name] = m.astype(bool)
    skin = np.zeros((h, w), bool)
    for m in masks.values():
        skin |= m
    masks["skin"] = skin
    return masks


# --- Synthetic photo with a ColorChecker -----------------------------------------------------

#: A camera's deviation from sRGB: mild channel cross-talk (rows sum to 1).
CAMERA_CROSSTALK = np.array([[0.90, 0.08, 0.02], [0.05, 0.90, 0.05], [0.02, 0.10, 0.88]], np.float32)


def scene_linear(
    with_chart: bool = True, seed: int = 0, chart_order=None, chart_upside_down: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1200x1600 'true colour' scene: grey wall, the astronaut's face, optionally a chart.

    ``chart_order`` permutes the chart's patches; ``chart_upside_down`` rotates it 180 degrees.

    Returns
    -------
    scene : float32 1200x1600x3 linear sRGB (true colours, before any camera effects)
    face_mask : bool 1200x1600, the face photo's area (to exclude from white balance)
    skin_box : (row slice, col slice) of cheek skin inside the face, for colour checks
    """
    rng = np.random.default_rng(seed)
    h, w = 1200, 1600
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = 0.25 + 0.05 * (xx / w) + 0.03 * (yy / h)
    scene = np.repeat(wall[..., None], 3, axis=2) * np.float32(1.0)
    scene += rng.normal(0.0, 0.003, scene.shape).astype(np.float32)
    face = srgb_to_linear(cv2.resize(skimage.data.astronaut()[20:300, 120:360], (720, 840), interpolation=cv2.INTER_CUBIC))
    face *= np.float32(EXPOSURE)
    scene[180:1020, 80:800] = face
    face_mask = np.zeros((h, w), bool)
    face_mask[130:1070, 30:850] = True
    if with_chart:
        card = colorchecker_card(order=chart_order)
        if chart_upside_down:
            card = np.ascontiguousarray(card[::-1, ::-1])
        ch, cw = card.shape[:2]
        src = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
        dst = np.float32([[980, 380], [1520, 410], [1500, 760], [965, 735]])
        matrix = cv2.getPerspectiveTransform(src, dst)
        warped = cv2.warpPerspective(card, matrix, (w, h), flags=cv2.INTER_LINEAR)
        inside = cv2.warpPerspective(np.ones((ch, cw), np.float32), matrix, (w, h)) > 0.5
        scene[inside] = warped[inside]
    # Skin of the subject's right cheek in scene coordinates (astronaut cheek ~ (195, 125)).
    skin_box = (slice(560, 620), slice(300, 360))
    return np.clip(scene, 0.0, 1.0), face_mask, skin_box


def camera_capture(scene: np.ndarray, gains=(1.0, 1.0, 1.0), exposure: float = 1.0, blur_px: float = 1.0) -> np.ndarray:
    """Simulate a phone capture: cross-talk, white-balance error, exposure, lens blur, sRGB uint8."""
    raw = scene @ CAMERA_CROSSTALK.T
    raw = raw * np.asarray(gains, np.float32) * np.float32(exposure)
    raw = cv2.GaussianBlur(raw, (0, 0), blur_px)
    from imaging.colour_space import linear_to_srgb_uint8

    return linear_to_srgb_uint8(np.clip(raw, 0.0, 1.0))
