"""Shared definitions of the canonical face frame, shared by every imaging module.

Conventions
-----------
- Coordinates are (x, y) in pixels, x to the right, y down, origin at the top-left pixel
  corner's centre (OpenCV convention), float.
- "left"/"right" always mean the SUBJECT's left/right. In a frontal photo the subject's
  left eye appears on the image's right side. ``CANONICAL_EYES[0]`` (image-left, x=256)
  is the subject's RIGHT eye; ``CANONICAL_EYES[1]`` (x=512) is the subject's LEFT eye.
- Images are RGB in every public function; uint8 sRGB when decoded; float32 linear sRGB
  in [0, 1] as measurement input.

The canonical frame places the eye centres at fixed points so that a similarity warp
(rotation, uniform scale, translation) maps any frontal face to the same physical scale:
the inter-ocular distance (IOD) becomes 256 px, and with the adult mean IOD of 63 mm
(Dodgson 2004: mean 63 mm, sd ~3.5 mm) one canonical pixel is ~0.246 mm.
"""

from __future__ import annotations

import numpy as np

#: Canonical frame size (width, height) in pixels.
CANONICAL_SIZE: tuple[int, int] = (768, 1024)
#: Eye centres in the canonical frame: (subject's right eye, subject's left eye), (x, y) px.
CANONICAL_EYES: tuple[tuple[float, float], tuple[float, float]] = ((256.0, 384.0), (512.0, 384.0))
#: Inter-ocular distance in the canonical frame, px.
CANONICAL_IOD_PX: float = 256.0
#: Nominal adult inter-ocular (inter-pupillary) distance, mm.
NOMINAL_IOD_MM: float = 63.0
#: Canonical pixels per millimetre of skin (~4.063).
CANONICAL_PX_PER_MM: float = CANONICAL_IOD_PX / NOMINAL_IOD_MM
#: Name of the union-of-regions mask (the face regions are defined in :mod:`imaging.catalogue`).
SKIN_MASK_NAME: str = "skin"


def canonical_shape() -> tuple[int, int]:
    """Return the canonical frame as a numpy shape (height, width).

    Returns
    -------
    tuple of int
        (1024, 768).
    """
    width, height = CANONICAL_SIZE
    return height, width


def similarity_from_eyes(
    right_eye: tuple[float, float],
    left_eye: tuple[float, float],
    target_right_eye: tuple[float, float] = CANONICAL_EYES[0],
    target_left_eye: tuple[float, float] = CANONICAL_EYES[1],
) -> np.ndarray:
    """Similarity transform that maps two source eye centres onto two target points.

    Parameters
    ----------
    right_eye, left_eye : (x, y) float, px
        Subject's right and left eye centres in the source image (the right eye is
        normally on the image's left).
    target_right_eye, target_left_eye : (x, y) float, px
        Where they should land; default the canonical frame's eyes.

    Returns
    -------
    ndarray, float64, shape (2, 3)
        Affine matrix ``M`` with ``dst = M @ [x, y, 1]``: rotation, uniform scale and
        translation only (no shear), usable with ``cv2.warpAffine``.

    Raises
    ------
    ValueError
        If the two source eyes coincide.
    """
    src = np.asarray(left_eye, np.float64) - np.asarray(right_eye, np.float64)
    dst = np.asarray(target_left_eye, np.float64) - np.asarray(target_right_eye, np.float64)
    src_len = float(np.hypot(*src))
    if src_len < 1e-6:
        raise ValueError("eye centres coincide; no similarity transform exists")
    scale = float(np.hypot(*dst)) / src_len
    angle = np.arctan2(dst[1], dst[0]) - np.arctan2(src[1], src[0])
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    rotation = np.array([[a, -b], [b, a]])
    translation = np.asarray(target_right_eye, np.float64) - rotation @ np.asarray(right_eye, np.float64)
    return np.hstack([rotation, translation[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine transform.

    Parameters
    ----------
    matrix : ndarray, shape (2, 3)

    Returns
    -------
    ndarray, float64, shape (2, 3)
    """
    full = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def compose_affine(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """2x3 affine equal to applying ``first`` and then ``then``.

    Parameters
    ----------
    first, then : ndarray, shape (2, 3)

    Returns
    -------
    ndarray, float64, shape (2, 3)
    """
    a = np.vstack([np.asarray(first, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(then, np.float64), [0.0, 0.0, 1.0]])
    return (b @ a)[:2]


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points through a 2x3 affine transform.

    Parameters
    ----------
    matrix : ndarray, shape (2, 3)
    points : array-like, shape (N, 2) or (2,), (x, y) px

    Returns
    -------
    ndarray, float64, same shape as ``points``
    """
    pts = np.asarray(points, np.float64)
    flat = pts.reshape(-1, 2)
    mapped = flat @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]
    return mapped.reshape(pts.shape)


def affine_scale(matrix: np.ndarray) -> float:
    """Uniform scale factor of a similarity (sqrt of |det| of the linear part).

    Parameters
    ----------
    matrix : ndarray, shape (2, 3)

    Returns
    -------
    float
        Destination px per source px.
    """
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))
