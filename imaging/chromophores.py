"""Haemoglobin / melanin separation in optical density (Tsumura-style).

Model (Tsumura et al. 1999, 2003): for skin, the optical density of linear camera RGB is a
linear mix

    OD(x) = m(x) * MELANIN + h(x) * HAEMOGLOBIN + s(x) * (1, 1, 1) + bias

where ``s`` is shading (illumination intensity, surface orientation, exposure: a multiplicative
factor on all channels, i.e. an equal OD offset in every channel), and ``m``, ``h`` are the
melanin and haemoglobin densities. Solving the 3x3 system per pixel separates the pigments
from shading: multiplying linear RGB by any constant changes only ``s``.

The pigment direction vectors are FIXED (not estimated per photo by ICA as in Tsumura 2003),
so that densities are comparable between a patient's photos. They are the unit-norm vectors
(R, G, B) distributed with the Tsumura laboratory's skin-colour separation code (Chiba
University), estimated by independent component analysis of facial skin in Tsumura et al.,
"Image-based skin color and texture analysis/synthesis by extracting hemoglobin and melanin
information in the skin", ACM Trans. Graphics 22(3), 2003:

    melanin     = (0.4143, 0.3570, 0.8372)
    haemoglobin = (0.2988, 0.6838, 0.6657)

They agree with the published spectra: melanin absorption falls monotonically with wavelength
(power law mu_a ~ lambda^-3.33, Jacques 1998); integrating it over the non-negative sRGB
colour-matching functions under D65 gives the direction (0.34, 0.46, 0.82), within 8 degrees
(cosine 0.99) of the melanin vector (tests/imaging/test_chromophores.py). Oxy-haemoglobin
absorbs most in the green (542/577 nm Q-bands) and the Soret-tail blue and little in red,
matching the haemoglobin vector's G > B > R order. Because only directions matter, the log base (ln in the source, log10 here)
only rescales densities; we keep the vectors' unit norm, so densities are in "OD units along
the vector" (log10).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imaging.colour_space import optical_density

MELANIN_OD_VECTOR = np.array([0.4143, 0.3570, 0.8372], dtype=np.float64)
HAEMOGLOBIN_OD_VECTOR = np.array([0.2988, 0.6838, 0.6657], dtype=np.float64)
SHADING_OD_VECTOR = np.array([1.0, 1.0, 1.0], dtype=np.float64)

# Columns: melanin, haemoglobin, shading. Inverse rows give each density from OD.
_MIXING = np.stack([MELANIN_OD_VECTOR, HAEMOGLOBIN_OD_VECTOR, SHADING_OD_VECTOR], axis=1)
_UNMIXING = np.linalg.inv(_MIXING).astype(np.float32)


@dataclass(frozen=True)
class ChromophoreMaps:
    """Per-pixel densities (float32 HxW, log10 OD units along each unit vector).

    ``melanin`` and ``haemoglobin`` rise with more pigment / more blood; ``shading`` rises
    when the pixel is darker overall (less light). Typical facial skin in well-exposed
    sRGB photos: melanin 0.0-0.6, haemoglobin 0.0-0.4 (values can be slightly negative
    for pale or bluish pixels, since the model has no per-person bias term).
    """

    melanin: np.ndarray
    haemoglobin: np.ndarray
    shading: np.ndarray


def separate_chromophores(linear_rgb: np.ndarray) -> ChromophoreMaps:
    """Split linear sRGB skin into melanin, haemoglobin and shading densities.

    Parameters
    ----------
    linear_rgb : ndarray, float32, HxWx3 (or Nx3), linear sRGB in [0, 1]
        Colour-corrected image; values <= 1e-4 are floored before the logarithm.

    Returns
    -------
    ChromophoreMaps
        Densities with the input's spatial shape, float32.

    Notes
    -----
    Solves OD = [MELANIN | HAEMOGLOBIN | 1] @ (m, h, s) exactly per pixel; the (1,1,1)
    column absorbs any exposure or shading change, so m and h are invariant to multiplying
    linear RGB by a constant (checked in tests). White-balance errors are NOT along (1,1,1),
    so colour correction must be applied first.
    """
    od = optical_density(linear_rgb)
    flat = od.reshape(-1, 1, 3) if od.ndim == 2 else od
    # cv2.transform applies the 3x3 per pixel ~5x faster than a numpy matmul on HxWx3.
    dens = cv2.transform(np.ascontiguousarray(flat), _UNMIXING).reshape(od.shape)
    return ChromophoreMaps(
        melanin=np.ascontiguousarray(dens[..., 0]),
        haemoglobin=np.ascontiguousarray(dens[..., 1]),
        shading=np.ascontiguousarray(dens[..., 2]),
    )


def chromophore_od(melanin: np.ndarray | float, haemoglobin: np.ndarray | float) -> np.ndarray:
    """Optical density contributed by given melanin and haemoglobin densities.

    Parameters
    ----------
    melanin, haemoglobin : float or ndarray (HxW), density units of :func:`separate_chromophores`

    Returns
    -------
    ndarray, float32, shape (..., 3): OD per R, G, B channel to ADD to an image's OD.
    """
    m = np.asarray(melanin, dtype=np.float32)[..., None]
    h = np.asarray(haemoglobin, dtype=np.float32)[..., None]
    return (m * MELANIN_OD_VECTOR.astype(np.float32) + h * HAEMOGLOBIN_OD_VECTOR.astype(np.float32)).astype(
        np.float32
    )
