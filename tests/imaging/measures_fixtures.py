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
