"""Colour-space conversions used by the measures.

All functions are pure and vectorised; RGB channel order everywhere.
sRGB transfer function per IEC 61966-2-1:1999; CIELAB relative to D65 (CIE 1976), computed with
OpenCV on float32 (about 30x faster than ``skimage.color.rgb2lab``).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Smallest linear reflectance used before taking a logarithm (1e-4 -> OD 4.0).
OD_EPS = 1e-4
#: Rec. 709 / sRGB luminance weights of linear R, G, B.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


def _srgb_decode(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding of encoded values in [0, 1] (float) to linear light."""
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


# uint8 -> linear lookup table: a 12 MP image costs one table lookup instead of 36 M powers.
_SRGB_U8_TO_LINEAR = _srgb_decode(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Decode sRGB to linear-light sRGB (IEC 61966-2-1).

    Parameters
    ----------
    rgb : ndarray, uint8 in [0, 255] or float in [0, 1], any shape
        Encoded sRGB values.

    Returns
    -------
    ndarray, float32, same shape, in [0, 1]
        Linear sRGB (relative scene luminance per channel).
    """
    if rgb.dtype == np.uint8:
        return _SRGB_U8_TO_LINEAR[rgb]
    v = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    return _srgb_decode(v).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Encode linear sRGB with the IEC 61966-2-1 transfer function.

    Parameters
    ----------
    linear : ndarray, float, any shape
        Linear sRGB; values outside [0, 1] are clipped.

    Returns
    -------
    ndarray, float32, same shape, in [0, 1]
    """
    v = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1.0 / 2.4) - 0.055).astype(
        np.float32
    )


def linear_to_srgb_uint8(linear: np.ndarray) -> np.ndarray:
    """Encode linear sRGB to 8-bit sRGB (rounded), e.g. for overlays and PNG output.

    Parameters
    ----------
    linear : ndarray, float, HxWx3 (or any shape), linear sRGB in [0, 1]

    Returns
    -------
    ndarray, uint8, same shape
    """
    return np.round(linear_to_srgb(linear) * 255.0).astype(np.uint8)


def linear_to_lab(linear: np.ndarray) -> np.ndarray:
    """Convert linear sRGB to CIELAB (D65 white, CIE 1976).

    Parameters
    ----------
    linear : ndarray, float32/float64, HxWx3 or Nx3, linear sRGB in [0, 1]

    Returns
    -------
    ndarray, float32, same shape
        L* in [0, 100], a* and b* roughly in [-128, 127].

    Notes
    -----
    ``cv2.COLOR_LRGB2Lab`` takes linear RGB directly, uses the sRGB/Rec.709 primaries and
    the D65 white (0.950456, 1, 1.088754). Agrees with colour-science within 0.01 Lab
    units (see tests).
    """
    arr = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    flat = arr.reshape(-1, 1, 3) if arr.ndim == 2 else arr
    lab = cv2.cvtColor(np.ascontiguousarray(flat), cv2.COLOR_LRGB2Lab)
    return lab.reshape(arr.shape)


def linear_luminance(linear: np.ndarray) -> np.ndarray:
    """Relative luminance Y (HxW, 0..1) of linear sRGB (HxWx3, or Nx3 pixels): :data:`LUMINANCE_WEIGHTS`."""
    r, g, b = LUMINANCE_WEIGHTS
    return r * linear[..., 0] + g * linear[..., 1] + b * linear[..., 2]


def srgb_luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance Y (float32 HxW, 0..1) of uint8 sRGB (:func:`linear_luminance` of its linear values)."""
    return linear_luminance(srgb_to_linear(rgb))


def channel_max(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the 3 channels (HxWx3 -> HxW).

    ``np.max(axis=2)`` reduces over a length-3 axis about 20x slower than two elementwise
    maxima, which matters at 0.8-12 MP.
    """
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def channel_min(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel minimum over the 3 channels (HxWx3 -> HxW); see :func:`channel_max`."""
    return np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def optical_density(linear: np.ndarray, eps: float = OD_EPS) -> np.ndarray:
    """Optical density OD = -log10(max(linear, eps)).

    Parameters
    ----------
    linear : ndarray, float, any shape, linear reflectance in [0, 1]
    eps : float
        Floor to keep the logarithm finite; default 1e-4 (OD <= 4).

    Returns
    -------
    ndarray, float32, same shape, in [0, -log10(eps)]; larger = more absorption.
    """
    return (-np.log10(np.maximum(np.asarray(linear, dtype=np.float32), eps))).astype(np.float32)


def density_to_linear(od: np.ndarray) -> np.ndarray:
    """Inverse of :func:`optical_density`: linear = 10 ** (-OD).

    Parameters
    ----------
    od : ndarray, float, any shape (optical density, >= 0 for reflectance <= 1)

    Returns
    -------
    ndarray, float32, same shape, linear values in (0, 1] for non-negative OD.
    """
    return np.power(10.0, -np.asarray(od, dtype=np.float32)).astype(np.float32)
