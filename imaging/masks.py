"""Boolean-mask helpers and masked filters, shared by the measures, texture, regions, overlays and patches.

A mask is a bool HxW array of the pixels that count (a face region, all skin); values are float32
HxW maps in the same frame. Filters that average only in-mask pixels keep eyes, brows, hair and
background out of skin statistics.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Consistency constant turning a median absolute deviation into a standard deviation for
#: normally distributed data (1 / Phi^-1(3/4)).
MAD_TO_SD = 1.4826
#: Above this Gaussian sigma (px), :func:`gaussian_blur` blurs a reduced copy.
REDUCED_BLUR_ABOVE_SIGMA_PX = 6
#: Gaussian sigma (mm) of the local in-mask mean that :func:`fill_outside` writes outside a mask.
FILL_SIGMA_MM = 2.0


def mask_bbox(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice]:
    """Bounding box of the True pixels of a mask, grown by ``margin`` px and clipped to the array.

    Parameters
    ----------
    mask : ndarray, bool HxW
    margin : int, >= 0, px added on every side

    Returns
    -------
    (slice, slice)
        Row and column slices (half-open, usable as ``array[box]``); empty slices when the mask
        has no True pixel.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    h, w = mask.shape
    return (
        slice(max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)),
        slice(max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)),
    )


def gaussian_blur(values: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur; above ``REDUCED_BLUR_ABOVE_SIGMA_PX`` blurs a reduced copy.

    Parameters
    ----------
    values : ndarray, float32 HxW
    sigma_px : float, > 0, Gaussian standard deviation in px

    Returns
    -------
    ndarray, float32 HxW
        For sigma > 6 px the image is area-reduced by the integer factor ``sigma // 3``, blurred
        with sigma / factor and resized back bilinearly: the same result within ~1 %, 5-10x faster.
    """
    factor = int(sigma_px // 3) if sigma_px > REDUCED_BLUR_ABOVE_SIGMA_PX else 1
    if factor <= 1:
        return cv2.GaussianBlur(values, (0, 0), sigma_px)
    h, w = values.shape
    small = cv2.resize(values, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def masked_gaussian(values: np.ndarray, mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur that only averages pixels inside ``mask`` (normalised convolution).

    Parameters
    ----------
    values : ndarray, float32 HxW
    mask : ndarray, bool HxW
    sigma_px : float, Gaussian standard deviation in pixels (> 0)

    Returns
    -------
    ndarray, float32 HxW
        Local weighted mean of in-mask values; pixels with no in-mask neighbours get 0.
        Avoids the dark/bright halos a plain blur would pull in from eyes, hair or background.
    """
    weight = mask.astype(np.float32)
    num = gaussian_blur(np.where(mask, values, 0).astype(np.float32), sigma_px)
    den = gaussian_blur(weight, sigma_px)
    return np.where(den > 1e-4, num / np.maximum(den, 1e-4), 0.0).astype(np.float32)


def fill_outside(values: np.ndarray, mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Replace pixels outside ``mask`` by the local in-mask mean (``FILL_SIGMA_MM`` Gaussian).

    So that eyes, brows, hair and background edges do not respond as lines or blobs in filters
    run over the whole array.

    Parameters
    ----------
    values : ndarray, float32 HxW
    mask : ndarray, bool HxW
    px_per_mm : float, image scale

    Returns
    -------
    ndarray, float32 HxW, ``values`` inside the mask
    """
    return np.where(mask, values, masked_gaussian(values, mask, FILL_SIGMA_MM * px_per_mm)).astype(np.float32)


def robust_sd(values: np.ndarray, axis: int | None = None):
    """Robust standard deviation: ``MAD_TO_SD`` (1.4826) times the median absolute deviation.

    Parameters
    ----------
    values : ndarray, float
    axis : int or None
        None: over all values; else along this axis (e.g. 0 for per-channel values of an Nx3 array).

    Returns
    -------
    float or ndarray
        A float for ``axis=None`` (NaN if ``values`` is empty); else an array without ``axis``,
        in the units of ``values``.
    """
    if axis is None:
        if values.size == 0:
            return float("nan")
        med = np.median(values)
        return float(MAD_TO_SD * np.median(np.abs(values - med)))
    med = np.median(values, axis=axis, keepdims=True)
    return MAD_TO_SD * np.median(np.abs(values - med), axis=axis)
