"""Pixel-array helpers shared by the pipeline: area downscaling to a long side, PNG encoding.

Images are numpy arrays, uint8 (or float32) HxW or HxWx3, RGB channel order.
"""

from __future__ import annotations

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)

import cv2  # noqa: E402

#: How :func:`downscale_long_side` derives the output size and the resampling scale.
RESAMPLING_MODES = ("size", "exact", "integer")


def downscale_long_side(image: np.ndarray, long_side: int, *, resampling: str = "size") -> tuple[np.ndarray, float]:
    """Area-average (``cv2.INTER_AREA``) an image down so its long side is at most ``long_side`` px.

    An image already that small is returned as is (never upscaled), with scale 1.0.

    Parameters
    ----------
    image : ndarray, HxW or HxWx3 (uint8 or float32)
    long_side : int, > 0, px
    resampling : {"size", "exact", "integer"}
        How the reduction is computed; each gives slightly different pixels, and callers keep the
        one their measured values were defined with (changing it changes values):

        - ``"size"``: output size ``round(side * long_side / max side)``; the area weights follow
          that rounded size (the analysis overview, reduced decodes).
        - ``"exact"``: the factor ``long_side / max side`` exactly, for both axes (output size
          rounded); the face cascade's copy.
        - ``"integer"``: the smallest integer factor ``k`` with ``max side / k <= long_side``,
          output ``side // k`` (OpenCV's fast area path, ~10x faster on 12 MP); the colour
          estimators' working copy.

    Returns
    -------
    (ndarray, float)
        The reduced image (same dtype and channels) and its scale relative to the input, <= 1:
        output px per input px (``"exact"``: the factor; otherwise output width / input width).

    Raises
    ------
    ValueError
        For an unknown ``resampling``.
    """
    if resampling not in RESAMPLING_MODES:
        raise ValueError(f"resampling must be one of {RESAMPLING_MODES}, not {resampling!r}")
    h, w = image.shape[:2]
    if resampling == "integer":
        k = -(-max(h, w) // long_side)
        if k <= 1:
            return image, 1.0
        small = cv2.resize(image, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
        return small, small.shape[1] / w
    factor = min(1.0, long_side / max(h, w))
    if factor == 1.0:
        return image, 1.0
    if resampling == "exact":
        return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), factor
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / w


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode a uint8 HxWx3 RGB image as PNG bytes with no metadata (IHDR, IDAT, IEND only).

    Parameters
    ----------
    rgb : ndarray, uint8 HxWx3, sRGB

    Returns
    -------
    bytes
        An 8-bit RGB PNG: no EXIF, ICC, text or time chunks.

    Raises
    ------
    RuntimeError
        If OpenCV cannot encode the array.
    """
    # Level 1 with run-length strategy: ~2x faster than the default and ~10 % smaller here.
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
