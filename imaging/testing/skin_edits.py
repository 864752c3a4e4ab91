"""Synthetic physiological skin changes for validation (ground truth for the measures).

Each edit adds optical density (OD = -log10 linear reflectance) inside a mask, following the
same Beer-Lambert model the separation assumes (:mod:`imaging.chromophores`):

- more blood: + density * HAEMOGLOBIN_OD_VECTOR (diffuse erythema),
- pigment spots: + density * MELANIN_OD_VECTOR in soft discs of a given diameter,
- fine lines: + depth * (1, 1, 1) along thin curves, i.e. a shadow in the crease (no pigment).

Inputs and outputs are float32 linear sRGB in [0, 1], HxWx3; masks are bool HxW. Edges are
feathered so edits have no artificial step edges that a texture filter would pick up.
"""

from __future__ import annotations

import cv2
import numpy as np

from imaging.chromophores import HAEMOGLOBIN_OD_VECTOR, MELANIN_OD_VECTOR
from imaging.colour_space import density_to_linear, optical_density

#: Feathering of edit masks, Gaussian sigma in pixels.
_FEATHER_PX = 2.0


def _add_od(img: np.ndarray, od_rgb: np.ndarray) -> np.ndarray:
    """Add per-pixel OD (HxWx3) to a linear image; returns float32 linear in [0, 1].

    Pixels with no added density are copied unchanged (no log/exp round-off outside edits).
    """
    edited = np.clip(density_to_linear(optical_density(img) + od_rgb), 0.0, 1.0)
    touched = np.any(od_rgb != 0, axis=-1, keepdims=True)
    return np.where(touched, edited, img).astype(np.float32)


def _feathered(mask: np.ndarray, feather_px: float = _FEATHER_PX) -> np.ndarray:
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), feather_px)
    return np.where(mask, soft, 0.0).astype(np.float32)


def add_haemoglobin(img: np.ndarray, mask: np.ndarray, density: float, feather_px: float = _FEATHER_PX) -> np.ndarray:
    """Add diffuse haemoglobin (erythema) inside a mask.

    Parameters
    ----------
    img : ndarray, float32 HxWx3, linear sRGB in [0, 1]
    mask : ndarray, bool HxW
    density : float, haemoglobin density to add (log10 OD along the unit vector);
        0.02-0.05 is a mild flush, 0.1-0.2 a clear erythema
    feather_px : float, Gaussian sigma (px) of the soft edge inside the mask (a diffuse flush
        fades over millimetres)

    Returns
    -------
    ndarray, float32 HxWx3, linear sRGB in [0, 1]
    """
    weight = _feathered(mask, feather_px)
    return _add_od(img, weight[..., None] * (density * HAEMOGLOBIN_OD_VECTOR).astype(np.float32))


def _random_points_in(mask: np.ndarray, n: int, margin_px: int, rng: np.random.Generator,
                      of_total: int | None = None) -> np.ndarray:
    """n random (row, col) points inside ``mask`` eroded by ``margin_px``.

    With ``of_total`` (>= n), the first n of ``of_total`` points drawn with the same generator:
    nested sets, so a larger n adds points and keeps the smaller n's (graded changes).
    """
    inner = cv2.erode(mask.astype(np.uint8), np.ones((2 * margin_px + 1, 2 * margin_px + 1), np.uint8)) > 0
    candidates = np.argwhere(inner if inner.any() else mask)
    if candidates.size == 0 or n <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    draw = max(n, of_total or 0)
    return candidates[rng.choice(len(candidates), size=draw, replace=len(candidates) < draw)][:n]


def add_melanin_spots(
    img: np.ndarray,
    mask: np.ndarray,
    n: int,
    diameter_mm: float,
    density: float,
    px_per_mm: float,
    seed: int = 0,
    of_total: int | None = None,
) -> np.ndarray:
    """Add ``n`` round pigment spots (lentigo-like) inside a mask.

    Parameters
    ----------
    img : ndarray, float32 HxWx3, linear sRGB in [0, 1]
    mask : ndarray, bool HxW; spot centres lie at least one diameter inside it
    n : int, number of spots (>= 0)
    diameter_mm : float, spot diameter in mm (full density inside, 0.25 mm soft edge)
    density : float, melanin density added at the spot centre (log10 OD); 0.1-0.3 is a
        visible brown spot
    px_per_mm : float
    seed : int, random seed for spot positions
    of_total : int, optional; spots are the first ``n`` of ``of_total`` drawn positions, so
        graded edits (n = 15, 30, 45 of 60) are nested

    Returns
    -------
    ndarray, float32 HxWx3, linear sRGB in [0, 1]
    """
    rng = np.random.default_rng(seed)
    radius_px = max(1, int(round(diameter_mm * px_per_mm / 2)))
    layer = np.zeros(mask.shape, dtype=np.float32)
    for r, c in _random_points_in(mask, n, 2 * radius_px, rng, of_total):
        cv2.circle(layer, (int(c), int(r)), radius_px, 1.0, -1, cv2.LINE_AA)
    layer = cv2.GaussianBlur(np.minimum(layer, 1.0), (0, 0), 0.25 * px_per_mm) * mask
    return _add_od(img, layer[..., None] * (density * MELANIN_OD_VECTOR).astype(np.float32))


def add_fine_lines(
    img: np.ndarray,
    mask: np.ndarray,
    n: int,
    depth: float,
    px_per_mm: float,
    seed: int = 0,
    of_total: int | None = None,
) -> np.ndarray:
    """Add ``n`` fine lines (shadowed creases) inside a mask.

    Parameters
    ----------
    img : ndarray, float32 HxWx3, linear sRGB in [0, 1]
    mask : ndarray, bool HxW
    n : int, number of lines (>= 0)
    depth : float, shading OD added along the crease centre (equal in R, G, B: a shadow);
        0.05 is faint, 0.15 a clearly visible line
    px_per_mm : float
    seed : int, random seed
    of_total : int, optional; lines are the first ``n`` of ``of_total`` drawn (nested grades)

    Returns
    -------
    ndarray, float32 HxWx3, linear sRGB in [0, 1]

    Notes
    -----
    Lines are 8-20 mm long, within +/-25 degrees of horizontal (like forehead and
    periorbital lines), slightly curved, 0.5 mm wide with a Gaussian cross-profile.
    """
    rng = np.random.default_rng(seed)
    layer = np.zeros(mask.shape, dtype=np.float32)
    width_px = max(1, int(round(0.5 * px_per_mm)))
    points = _random_points_in(mask, n, int(4 * px_per_mm), rng, of_total)
    # Shapes are drawn for every point of the nested set, so line k has the same shape at any n.
    shapes = rng.uniform((8.0, -25.0, -1.5), (20.0, 25.0, 1.5), size=(max(n, of_total or 0), 3))
    for (r, c), (length_mm, angle_deg, bend_mm) in zip(points, shapes):
        length = length_mm * px_per_mm
        angle = np.radians(angle_deg)
        bend = bend_mm * px_per_mm
        t = np.linspace(-0.5, 0.5, 24)
        xs = c + t * length * np.cos(angle) - 4 * bend * (t**2 - 0.25) * np.sin(angle)
        ys = r + t * length * np.sin(angle) + 4 * bend * (t**2 - 0.25) * np.cos(angle)
        pts = np.round(np.stack([xs, ys], axis=1)).astype(np.int32)
        cv2.polylines(layer, [pts], False, 1.0, width_px, cv2.LINE_AA)
    layer = cv2.GaussianBlur(np.minimum(layer, 1.0), (0, 0), 0.2 * px_per_mm) * mask
    return _add_od(img, layer[..., None] * np.float32(depth))
