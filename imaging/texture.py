"""Skin texture measures: IBSI GLCM features, wrinkle lines, pores, roughness.

All functions work on one 2D image in the canonical face frame (float32), with a boolean mask
of the pixels to measure; physical sizes are given in millimetres and converted with
``px_per_mm`` so results do not depend on the photo's resolution.

GLCM features follow the Image Biomarker Standardisation Initiative reference manual
(Zwanenburg et al., "The Image Biomarker Standardization Initiative", Radiology 295(2), 2020;
arXiv:1612.07003, section "Grey level co-occurrence based features"), with IBSI feature names.
Their implementation is checked against the IBSI digital phantom in tests/imaging/test_texture.py.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import cv2
import numpy as np
from scipy import fft as scipy_fft
from skimage.morphology import skeletonize

from imaging.masks import fill_outside, mask_bbox, masked_gaussian, robust_sd

# --- Fixed quantisation -------------------------------------------------------------------
#: GLCM quantisation: fixed bin size (IBSI "FBS") on CIELAB L*, lower bound 0. Bin edges are
#: identical for every photo, so features are comparable over time (never per-image min/max).
GLCM_LSTAR_BIN_WIDTH = 2.0
#: Number of grey levels for L* in [0, 100] with the bin width above.
GLCM_LSTAR_LEVELS = 50

#: In-plane GLCM offsets (dy, dx) at Chebyshev distance 1: 0, 45, 90 and 135 degrees.
GLCM_OFFSETS = ((0, 1), (-1, 1), (-1, 0), (-1, -1))

# --- Physical scales (mm) for the shading-based texture measures --------------------------
#: Roughness band-pass: difference of Gaussians between these standard deviations (mm).
#: 0.3 mm suppresses pixel noise/JPEG blocks; 1.5 mm removes face-shape shading gradients.
ROUGHNESS_SIGMA_FINE_MM = 0.3
ROUGHNESS_SIGMA_COARSE_MM = 1.5
#: Wrinkle lines: a bank of oriented second-derivative-of-Gaussian filters (a ridge of density,
#: i.e. a darker line). Across a line the Gaussian has sigma LINE_SIGMA_ACROSS_MM (lines 0.3-1 mm
#: wide at the canonical ~4 px/mm); along it LINE_SIGMA_ALONG_MM. Wrinkles are long (forehead and
#: periorbital lines run 5-30 mm) where skin microrelief, pores, sensor noise and JPEG blocks are
#: short: averaging along the line keeps a line's depth and averages those down (see
#: :func:`line_depth` for what a long filter does to small dark dots and to line ends).
LINE_SIGMA_ACROSS_MM = 0.3
LINE_SIGMA_ALONG_MM = 3.0
#: A line pixel must also be a line over a short stretch: the same filter with this sigma along.
#: The long filter smears a small dot well darker than LINE_DEPTH_MIN (stubble, a comedo) into a
#: star of arms about sigma_along long and reaches past a deep line's ends; the short one reads
#: those only within ~1 mm of the dot or end, so the arms fall under WRINKLE_MIN_LENGTH_MM and a line
#: keeps its length. (A dot whose depth is just above the threshold still leaves a ragged blob
#: whose skeleton can be ~3-8 mm long, with or without the check.) 1 mm was chosen over 0.6 and
#: 1.5 mm on the study's recorded maps (20 / 21 / 20 of 29 faces met the bar with 0.6 / 1 / 1.5).
LINE_CHECK_SIGMA_ALONG_MM = 1.0
#: Filter directions over 180 degrees, 7.5 degrees apart: a line halfway between two keeps ~75 %
#: of its response (its profile is widened by sigma_along x sin 3.75 degrees).
LINE_ORIENTATIONS = 24
#: Depth (OD at the centre of a Gaussian line as wide as the filter) above which a pixel belongs to
#: a line. On the real-face set's reference photos skin reads 0.009 OD (median of the faces'
#: medians; 90th percentiles 0.008-0.044) and 5 % of it (0.7-28 %) is above 0.03; a faint 0.5 mm line
#: of 0.12 OD drawn into the scene reads ~0.04 after the camera chain (these figures and the
#: following are of the long filter alone, 2026.12.4). On the study's recorded maps (a replay of
#: the study on them) 0.025, 0.035 and 0.04 met the bar on 17, 19 and 14 of 29 faces (0.03: 19)
#: with median SNR 13.0, 10.3 and lower (0.03: 14.3); with the short check, 0.03 meets it on 21.
LINE_DEPTH_MIN = 0.03
#: Bright specks flattened before the line filter: a pixel brighter (lower density) than the median
#: of the skin around it (a square of 2 x round(SKIN_LEVEL_HALF_WINDOW_MM x px_per_mm) + 1 px, 2.2 mm) by more than
#: BRIGHT_SPECK_OD is set to that median less BRIGHT_SPECK_OD. A crease is a shadow, darker than the
#: skin at its sides; sheen is white light added at the surface, bright specks on the microrelief whose
#: density contrast grows as the skin's own reflectance falls (5 % of the light added to skin that
#: reflects 10 % reads 0.18 OD brighter, on skin that reflects 50 % 0.04) and which come and go with
#: the light's direction and clip with exposure. The gaps between specks read as dark ridges: on
#: the type V faces of the set (`javier_francis`, `javon_freeman_liberty`) 19-35 mm/cm^2 of line,
#: most of it on the sheen of forehead, nose and cheekbones, and +30 % exposure, clipping the
#: specks, took 18-21 % of it away. Flattened, those faces read 10-15 mm/cm^2 and their recapture
#: SD halved (study SNR 3.7 -> 7.1 and 2.8 -> 6.1; ethan_taylor 7.1 -> 11.1; 2026.12.10, README);
#: no face that met the bar fell under it. 0.02 OD leaves most skin noise alone (at a robust SD of
#: 0.015 OD, the darkest faces' finest band, 7-9 % of pixels are raised, by ~0.007 OD): flattening everything above the median (0) also raised a line's sides
#: by the bright half of their noise and cut the response to the study's lines by 30-45 %.
BRIGHT_SPECK_OD = 0.02
#: Half-width of the median's square (mm), and the sigma of the smooth level it is taken against.
SKIN_LEVEL_HALF_WINDOW_MM = 1.0
#: Precision of the local median (OD): the median is taken of the density less its smooth
#: (SKIN_LEVEL_HALF_WINDOW_MM Gaussian) level, in 8-bit steps of this size (+/-0.25 OD of detail).
SKIN_LEVEL_STEP_OD = 0.002
#: Minimum skeleton length (mm) of a connected line; shorter responses are texture noise.
WRINKLE_MIN_LENGTH_MM = 3.0
#: Pore diameters resolved in the canonical frame (~4 px/mm): 0.7-1.4 mm. True pores are
#: 0.1-0.5 mm; at this scale only the enlarged ones are seen, so this is "visible pores".
PORE_DIAMETERS_MM = (0.7, 1.0, 1.4)
#: Minimum scale-normalised LoG response (shading OD) of a pore.
PORE_MIN_RESPONSE = 0.025


# --- GLCM ---------------------------------------------------------------------------------


def quantise_fixed_bins(values: np.ndarray, bin_width: float, minimum: float, levels: int) -> np.ndarray:
    """Fixed-bin-size discretisation (IBSI FBS): level = floor((x - min) / width) + 1.

    Parameters
    ----------
    values : ndarray, float
    bin_width : float, > 0, in the units of ``values``
    minimum : float, lower bound of the first bin
    levels : int, number of levels; values above the last bin go into level ``levels``

    Returns
    -------
    ndarray, int32 in [1, levels]
    """
    q = np.floor((np.asarray(values, dtype=np.float32) - np.float32(minimum)) / np.float32(bin_width))
    return np.clip(q + 1, 1, levels).astype(np.int32)


def glcm_matrix(levels: np.ndarray, mask: np.ndarray, n_levels: int, offset: tuple[int, int]) -> np.ndarray:
    """Symmetric grey-level co-occurrence counts for one in-plane offset.

    Parameters
    ----------
    levels : ndarray, int HxW, grey levels in [1, n_levels]
    mask : ndarray, bool HxW; a pair counts only if BOTH pixels are in the mask
    n_levels : int
    offset : (dy, dx), neighbour offset in pixels

    Returns
    -------
    ndarray, float64 (n_levels, n_levels): counts of (i, j) and (j, i) pairs
        (IBSI symmetric GLCM, grey level i at row i-1).
    """
    dy, dx = offset
    h, w = levels.shape
    # Slices of the reference pixel (a) and its neighbour (b) that both fall in the image.
    ay = slice(max(0, -dy), h - max(0, dy))
    ax = slice(max(0, -dx), w - max(0, dx))
    by = slice(max(0, dy), h - max(0, -dy))
    bx = slice(max(0, dx), w - max(0, -dx))
    both = mask[ay, ax] & mask[by, bx]
    i = levels[ay, ax][both].astype(np.int64) - 1
    j = levels[by, bx][both].astype(np.int64) - 1
    counts = np.bincount(i * n_levels + j, minlength=n_levels * n_levels).reshape(n_levels, n_levels)
    return (counts + counts.T).astype(np.float64)


GLCM_FEATURE_NAMES = (
    "joint_maximum", "joint_average", "joint_variance", "joint_entropy", "difference_average",
    "difference_variance", "difference_entropy", "sum_average", "sum_variance", "sum_entropy",
    "angular_second_moment", "contrast", "dissimilarity", "inverse_difference",
    "inverse_difference_normalised", "inverse_difference_moment",
    "inverse_difference_moment_normalised", "inverse_variance", "correlation", "autocorrelation",
    "cluster_tendency", "cluster_shade", "cluster_prominence", "information_correlation_1",
    "information_correlation_2",
)


def _plogp_sum(p: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """-sum p log2 p over ``axes`` with 0 log 0 = 0."""
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log2(safe)).sum(axis=axes)


@lru_cache(maxsize=8)
def _glcm_index(ng: int) -> tuple[np.ndarray, ...]:
    """Index arrays for Ng grey levels (cached): g (1..Ng), grids i, j, |i-j|, i+j, the
    diagonal values k_diff (0..Ng-1) and k_sum (2..2Ng), and one-hot (Ng^2, K) matrices that
    sum p_ij into p_{i-j,k} and p_{i+j,k}."""
    g = np.arange(1, ng + 1, dtype=np.float64)
    ii, jj = np.meshgrid(g, g, indexing="ij")
    diff, summ = np.abs(ii - jj), ii + jj
    k_diff = np.arange(ng, dtype=np.float64)
    k_sum = np.arange(2, 2 * ng + 1, dtype=np.float64)
    onehot_diff = (diff.ravel()[:, None] == k_diff[None]).astype(np.float64)
    onehot_sum = (summ.ravel()[:, None] == k_sum[None]).astype(np.float64)
    return g, ii, jj, diff, summ, k_diff, k_sum, onehot_diff, onehot_sum


def glcm_features(counts: np.ndarray) -> dict:
    """IBSI GLCM features of co-occurrence matrices (one, or a batch computed together).

    Parameters
    ----------
    counts : ndarray, float (..., Ng, Ng), co-occurrence counts (normalised here to p_ij)

    Returns
    -------
    dict[str, float | ndarray]
        One float per feature for a single matrix, an array of shape ``counts.shape[:-2]``
        for a batch.
        IBSI names (grey levels i, j = 1..Ng, p_ij joint probability, p_i row marginal,
        p_{i-j,k} diagonal and p_{i+j,k} cross-diagonal probabilities, log base 2):

        - ``joint_maximum`` max p_ij; ``joint_average`` mu = sum i p_ij;
          ``joint_variance`` sum (i-mu)^2 p_ij; ``joint_entropy`` -sum p_ij log2 p_ij
        - ``difference_average`` mu_d = sum k p_{i-j,k}; ``difference_variance``;
          ``difference_entropy``
        - ``sum_average``, ``sum_variance``, ``sum_entropy`` (same on p_{i+j,k})
        - ``angular_second_moment`` sum p_ij^2; ``contrast`` sum (i-j)^2 p_ij;
          ``dissimilarity`` sum |i-j| p_ij
        - ``inverse_difference`` sum p/(1+|i-j|); ``inverse_difference_normalised``
          sum p/(1+|i-j|/Ng); ``inverse_difference_moment`` sum p/(1+(i-j)^2);
          ``inverse_difference_moment_normalised`` sum p/(1+(i-j)^2/Ng^2);
          ``inverse_variance`` sum_{k>=1} p_{i-j,k}/k^2
        - ``correlation`` sum (i-mu_i)(j-mu_j) p_ij / sigma_i^2 (symmetric matrix);
          ``autocorrelation`` sum i j p_ij
        - ``cluster_tendency``, ``cluster_shade``, ``cluster_prominence``:
          sum (i+j-2 mu_i)^{2,3,4} p_ij
        - ``information_correlation_1`` (HXY - HXY1)/HX;
          ``information_correlation_2`` sqrt(1 - exp(-2 (HXY2 - HXY)))

        NaN for an empty matrix (no pairs in the mask).
    """
    counts = np.asarray(counts, dtype=np.float64)
    single = counts.ndim == 2
    batch = counts.reshape(-1, *counts.shape[-2:])
    total = batch.sum(axis=(1, 2))
    empty = total <= 0
    p = batch / np.where(empty, 1.0, total)[:, None, None]
    ng = p.shape[-1]
    g, ii, jj, diff, summ, k_diff, k_sum, onehot_diff, onehot_sum = _glcm_index(ng)
    p_i = p.sum(axis=2)
    p_j = p.sum(axis=1)
    mu_i = p_i @ g
    mu_j = p_j @ g
    var_i = (p_i * (g[None] - mu_i[:, None]) ** 2).sum(axis=1)
    var_j = (p_j * (g[None] - mu_j[:, None]) ** 2).sum(axis=1)
    # Diagonal (|i-j| = k) and cross-diagonal (i+j = k) probabilities via one-hot sums.
    flat = p.reshape(len(p), -1)
    p_diff = flat @ onehot_diff
    p_sum = flat @ onehot_sum
    mu_d = p_diff @ k_diff
    mu_s = p_sum @ k_sum
    hxy = _plogp_sum(p, (1, 2))
    hx = _plogp_sum(p_i, (1,))
    outer = p_i[:, :, None] * p_j[:, None, :]
    hxy1 = -(p * np.log2(np.where(outer > 0, outer, 1.0))).sum(axis=(1, 2))
    hxy2 = _plogp_sum(outer, (1, 2))
    cluster = ii[None] + jj[None] - mu_i[:, None, None] - mu_j[:, None, None]
    sd = np.sqrt(var_i * var_j)
    with np.errstate(invalid="ignore", divide="ignore"):
        features = {
            "joint_maximum": p.max(axis=(1, 2)),
            "joint_average": mu_i,
            "joint_variance": var_i,
            "joint_entropy": hxy,
            "difference_average": mu_d,
            "difference_variance": (p_diff * (k_diff[None] - mu_d[:, None]) ** 2).sum(axis=1),
            "difference_entropy": _plogp_sum(p_diff, (1,)),
            "sum_average": mu_s,
            "sum_variance": (p_sum * (k_sum[None] - mu_s[:, None]) ** 2).sum(axis=1),
            "sum_entropy": _plogp_sum(p_sum, (1,)),
            "angular_second_moment": (p**2).sum(axis=(1, 2)),
            "contrast": (p * diff**2).sum(axis=(1, 2)),
            "dissimilarity": mu_d,
            "inverse_difference": (p / (1.0 + diff)).sum(axis=(1, 2)),
            "inverse_difference_normalised": (p / (1.0 + diff / ng)).sum(axis=(1, 2)),
            "inverse_difference_moment": (p / (1.0 + diff**2)).sum(axis=(1, 2)),
            "inverse_difference_moment_normalised": (p / (1.0 + diff**2 / ng**2)).sum(axis=(1, 2)),
            "inverse_variance": (p_diff[:, 1:] / k_diff[None, 1:] ** 2).sum(axis=1),
            "correlation": np.where(
                sd > 0, (p * (ii - mu_i[:, None, None]) * (jj - mu_j[:, None, None])).sum(axis=(1, 2)) / sd, np.nan
            ),
            "autocorrelation": (p * ii * jj).sum(axis=(1, 2)),
            "cluster_tendency": (p * cluster**2).sum(axis=(1, 2)),
            "cluster_shade": (p * cluster**3).sum(axis=(1, 2)),
            "cluster_prominence": (p * cluster**4).sum(axis=(1, 2)),
            "information_correlation_1": np.where(hx > 0, (hxy - hxy1) / hx, np.nan),
            "information_correlation_2": np.sqrt(np.maximum(0.0, 1.0 - np.exp(-2.0 * (hxy2 - hxy)))),
        }
    shape = counts.shape[:-2]
    out = {}
    for name in GLCM_FEATURE_NAMES:
        values = np.where(empty, np.nan, features[name])
        out[name] = float(values[0]) if single else values.reshape(shape)
    return out


def glcm_features_averaged(levels: np.ndarray, mask: np.ndarray, n_levels: int) -> dict[str, float]:
    """IBSI "2D, averaged" GLCM features: features of each direction's matrix, averaged.

    Parameters
    ----------
    levels : ndarray, int HxW in [1, n_levels]
    mask : ndarray, bool HxW
    n_levels : int, Ng

    Returns
    -------
    dict[str, float]
        Mean over the four in-plane directions (0, 45, 90, 135 degrees, distance 1) of
        :func:`glcm_features`; directions with no pairs are skipped (NaN if none has pairs).
    """
    box = mask_bbox(mask)
    levels, mask = levels[box], mask[box]
    matrices = np.stack([glcm_matrix(levels, mask, n_levels, off) for off in GLCM_OFFSETS])
    matrices = matrices[matrices.sum(axis=(1, 2)) > 0]
    if len(matrices) == 0:
        return glcm_features(np.zeros((n_levels, n_levels)))
    return {k: float(v.mean()) for k, v in glcm_features(matrices).items()}


def quantise_lstar(lstar: np.ndarray) -> np.ndarray:
    """Fixed-bin L* quantisation for the GLCM: 2 L* units per level, levels 1..50.

    Parameters
    ----------
    lstar : ndarray, float HxW, L* in [0, 100]

    Returns
    -------
    ndarray, int32 HxW in [1, 50]
    """
    return quantise_fixed_bins(lstar, GLCM_LSTAR_BIN_WIDTH, 0.0, GLCM_LSTAR_LEVELS)


def glcm_lstar_features(lstar_levels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """GLCM features of CIELAB L* quantised by :func:`quantise_lstar`.

    Parameters
    ----------
    lstar_levels : ndarray, int HxW, output of :func:`quantise_lstar`
    mask : ndarray, bool HxW

    Returns
    -------
    dict[str, float], see :func:`glcm_features`; e.g. ``contrast`` is in (bin units)^2,
    one bin = 2 L* units; more contrast / less homogeneity = coarser, more uneven texture.
    """
    return glcm_features_averaged(lstar_levels, mask, GLCM_LSTAR_LEVELS)


# --- Shading-based texture ----------------------------------------------------------------


def band_pass(values: np.ndarray, mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Difference of masked Gaussians keeping structures of ~0.5-3 mm.

    Parameters
    ----------
    values : ndarray, float32 HxW (e.g. shading density)
    mask : ndarray, bool HxW
    px_per_mm : float, image scale

    Returns
    -------
    ndarray, float32 HxW, zero-mean detail layer (fine Gaussian minus coarse Gaussian);
    uniform offsets (exposure) and face-scale gradients are removed.
    """
    fine = masked_gaussian(values, mask, ROUGHNESS_SIGMA_FINE_MM * px_per_mm)
    coarse = masked_gaussian(values, mask, ROUGHNESS_SIGMA_COARSE_MM * px_per_mm)
    return fine - coarse


def roughness_index(detail: np.ndarray, mask: np.ndarray) -> float:
    """Roughness: robust SD of the band-passed shading density, x100.

    Formula: ``100 * 1.4826 * MAD(bandpass(shading))`` over the mask, where shading is the
    (1,1,1) optical-density component of :func:`imaging.chromophores.separate_chromophores`
    (pigment-free, exposure-free) and the band is DoG(0.3 mm, 1.5 mm).
    Units: centi-OD (1 unit ~ 2.3 % local brightness modulation). Range >= 0; typical
    smooth skin 0.3-1, visibly lined or pitted skin > 1.5. Direction: higher = rougher.
    Reference: roughness as SD of a band-passed surface/intensity signal (ISO 4287 Rq
    analogue, applied to the shading image as in photometric skin-texture analysis).

    Parameters
    ----------
    detail : ndarray, float32 HxW, output of :func:`band_pass` on the shading density
    mask : ndarray, bool HxW

    Returns
    -------
    float (NaN when the mask is empty)
    """
    return 100.0 * robust_sd(detail[mask])


def line_depth(filled: np.ndarray, px_per_mm: float, sigma_along_mm: float = LINE_SIGMA_ALONG_MM) -> np.ndarray:
    """Depth of the line through each pixel: the strongest response of an oriented filter bank.

    Parameters
    ----------
    filled : ndarray, float32 HxW, luminance optical density (higher = darker), outside-mask
        pixels filled by :func:`imaging.masks.fill_outside`
    px_per_mm : float
    sigma_along_mm : float, the filters' sigma along a line

    Returns
    -------
    ndarray, float32 HxW, OD: max over LINE_ORIENTATIONS directions theta of
    ``2 sqrt(2) * (-s_a^2 d^2/dv^2) (G * D)``, G the Gaussian with sigma ``sigma_along_mm`` along
    theta (u) and s_a = LINE_SIGMA_ACROSS_MM across it (v). Scaled so that a long straight line
    with a Gaussian cross-profile of sigma s_a and centre depth d reads d (a line of width s reads
    ``d * 2 sqrt(2) * s * s_a^2 / (s^2 + s_a^2)^1.5``). Positive on lines denser (darker) than their
    sides; uniform offsets and linear gradients give 0. Computed in the Fourier domain with the
    filters' analytic transforms ``s_a^2 (2 pi f_v)^2 exp(-2 pi^2 (s_u^2 f_u^2 + s_a^2 f_v^2))``
    on the image reflected at its borders by 3 s_u.
    Oriented second-derivative (Gabor-like) filter banks for wrinkles: Cula et al., Skin Res
    Technol 19:e243, 2013; Batool & Chellappa, Pattern Recognit 48:642, 2015.

    Known limits of a long filter alone: a small very dark dot (under 1 mm, darker than ~0.25 OD:
    stubble, a comedo) reads as a star of short lines (a 1 mm dot of 0.4 OD as ~16 mm of line), and
    a deep line reaches past its ends, by ~2 sigma_along at 0.3 OD and more the deeper it is (a
    20 mm line reads 31.5 mm); :func:`checked_line_depth` checks every pixel with a short filter.

    Raises
    ------
    ValueError
        If ``filled`` has a non-finite value.
    """
    if filled.size == 0:
        return np.zeros(filled.shape, np.float32)
    if not np.isfinite(filled).all():
        # One NaN would spread over the whole map through the Fourier transform.
        raise ValueError("line_depth needs finite values (fill masked pixels first)")
    s_across = LINE_SIGMA_ACROSS_MM * px_per_mm
    s_along = sigma_along_mm * px_per_mm
    border = int(np.ceil(3.0 * s_along))
    h, w = filled.shape
    size_y = scipy_fft.next_fast_len(h + 2 * border, real=True)
    size_x = scipy_fft.next_fast_len(w + 2 * border, real=True)
    padded = cv2.copyMakeBorder(np.ascontiguousarray(filled, np.float32), border, size_y - h - border,
                                border, size_x - w - border, cv2.BORDER_REFLECT)
    spectrum = scipy_fft.rfft2(padded)
    fy = scipy_fft.fftfreq(size_y).astype(np.float32)[:, None]
    fx = scipy_fft.rfftfreq(size_x).astype(np.float32)[None, :]
    a2, l2 = np.float32(s_across**2), np.float32(s_along**2)
    k = np.float32(-2.0 * np.pi**2)
    best = None
    for i in range(LINE_ORIENTATIONS):
        theta = np.pi * i / LINE_ORIENTATIONS
        cos, sin = np.float32(np.cos(theta)), np.float32(np.sin(theta))
        f_along = fx * cos + fy * sin
        f_across = fy * cos - fx * sin
        gain = a2 * (np.float32(2.0 * np.pi) * f_across) ** 2 * np.exp(k * (l2 * f_along**2 + a2 * f_across**2))
        response = scipy_fft.irfft2(spectrum * gain, s=(size_y, size_x))[border:border + h, border:border + w]
        best = response if best is None else np.maximum(best, response)
    return (best * np.float32(2.0 * np.sqrt(2.0))).astype(np.float32)


def skin_level_window_px(px_per_mm: float) -> int:
    """Side (px, odd) of the median's square in :func:`without_bright_specks`: 2 x round(SKIN_LEVEL_HALF_WINDOW_MM x px_per_mm) + 1."""
    return 2 * max(1, int(round(SKIN_LEVEL_HALF_WINDOW_MM * px_per_mm))) + 1


def without_bright_specks(filled: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Density with bright specks (sheen) flattened to the skin's local level (see BRIGHT_SPECK_OD).

    Parameters
    ----------
    filled : ndarray, float32 HxW, luminance optical density with outside-mask pixels filled
        (:func:`imaging.masks.fill_outside`)
    px_per_mm : float

    Returns
    -------
    ndarray, float32 HxW: ``max(filled, median - BRIGHT_SPECK_OD)``, the median over a square of
    ``2 * round(SKIN_LEVEL_HALF_WINDOW_MM * px_per_mm) + 1`` px (2.2 mm at the canonical scale).
    Darker pixels (lines, spots, pores) are unchanged; a uniform offset (exposure) moves the
    median with the image, so the flattened pixels are the same at any exposure (to within
    SKIN_LEVEL_STEP_OD, where rounding ties flip).
    The median is computed by OpenCV's 8-bit median filter on the detail (density less its
    Gaussian-smoothed level) in steps of SKIN_LEVEL_STEP_OD, then the smooth level is added back:
    the median of the square where the level is smooth; beside a step or a line much deeper than
    a wrinkle (0.3 OD and more) the level bends and the bright side is raised by up to ~0.3 of the
    step less BRIGHT_SPECK_OD, which softens the false line an edge reads and makes none.
    """
    if filled.size == 0:
        return filled.astype(np.float32)
    values = np.ascontiguousarray(filled, np.float32)
    level = cv2.GaussianBlur(values, (0, 0), SKIN_LEVEL_HALF_WINDOW_MM * px_per_mm)
    step = np.float32(SKIN_LEVEL_STEP_OD)
    detail = np.clip(np.rint((values - level) / step) + 128, 0, 255).astype(np.uint8)
    median = (cv2.medianBlur(detail, skin_level_window_px(px_per_mm)).astype(np.float32) - 128) * step + level
    return np.maximum(values, median - np.float32(BRIGHT_SPECK_OD))


def checked_line_depth(filled: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Line depth read both over a long and over a short stretch of the line.

    ``min(line_depth(filled, px_per_mm), line_depth(filled, px_per_mm, LINE_CHECK_SIGMA_ALONG_MM))``
    (OD, float32 HxW): the long filter (LINE_SIGMA_ALONG_MM) averages skin microrelief, noise and
    JPEG blocks down along a line; the short one (LINE_CHECK_SIGMA_ALONG_MM) keeps it from reading a
    line where there is only a small dark dot nearby or past a line's end. A long straight line
    reads its depth in both, so the minimum keeps it.

    Raises
    ------
    ValueError
        If ``filled`` has a non-finite value (:func:`line_depth`).
    """
    return np.minimum(line_depth(filled, px_per_mm), line_depth(filled, px_per_mm, LINE_CHECK_SIGMA_ALONG_MM))


def wrinkle_lines(depth: np.ndarray, mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Skeleton of line pixels: depth above LINE_DEPTH_MIN, lines >= WRINKLE_MIN_LENGTH_MM.

    Parameters
    ----------
    depth : ndarray, float32 HxW from :func:`checked_line_depth`
    mask : ndarray, bool HxW
    px_per_mm : float

    Returns
    -------
    ndarray, bool HxW, one-pixel-wide line skeleton inside the mask.
    """
    lines = (depth > LINE_DEPTH_MIN) & mask
    if not lines.any():
        return lines
    skeleton = skeletonize(lines)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(skeleton.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= WRINKLE_MIN_LENGTH_MM * px_per_mm
    keep[0] = False
    return keep[labels]


def line_density_mm_per_cm2(skeleton: np.ndarray, mask: np.ndarray, px_per_mm: float) -> float:
    """Wrinkle-line density: skeleton length per skin area.

    Formula: (skeleton pixels in mask / px_per_mm) [mm] / (mask pixels / px_per_mm^2 / 100) [cm^2].
    Units mm/cm^2; range >= 0; higher = more lines. (Pixel-count length underestimates
    diagonal lines by up to 29 %, identically in every photo.)

    Returns
    -------
    float (NaN when the mask is empty)
    """
    area_cm2 = mask.sum() / (px_per_mm**2) / 100.0
    if area_cm2 <= 0:
        return float("nan")
    return float((skeleton & mask).sum() / px_per_mm / area_cm2)


def pore_centres(filled: np.ndarray, mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Dark round blobs (visible pores) by multi-scale normalised Laplacian of Gaussian.

    Parameters
    ----------
    filled : ndarray, float32 HxW, shading density (pores are denser/darker than
        surrounding skin), outside-mask pixels filled by :func:`imaging.masks.fill_outside`
    mask : ndarray, bool HxW
    px_per_mm : float

    Returns
    -------
    ndarray, int (N, 2) of (row, col): local maxima over space (3x3) of the maximum over
    diameters ``PORE_DIAMETERS_MM`` of -sigma^2 * LoG (sigma = d / 2 sqrt 2) that exceed
    ``PORE_MIN_RESPONSE`` and lie inside the mask eroded by one blob radius.
    Lindeberg 1998 scale-normalised blob detection.
    """
    response = np.zeros(filled.shape, dtype=np.float32)
    for d_mm in PORE_DIAMETERS_MM:
        sigma = d_mm * px_per_mm / (2.0 * np.sqrt(2.0))
        smooth = cv2.GaussianBlur(filled, (0, 0), sigma)
        log = cv2.Laplacian(smooth, cv2.CV_32F, ksize=1)
        np.maximum(response, -(sigma**2) * log, out=response)
    peaks = response >= cv2.dilate(response, np.ones((3, 3), np.uint8))
    radius = max(1, int(round(max(PORE_DIAMETERS_MM) * px_per_mm / 2)))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    return np.argwhere(peaks & (response > PORE_MIN_RESPONSE) & inner)


def count_density_per_cm2(count: int, mask: np.ndarray, px_per_mm: float) -> float:
    """Count per cm^2 of mask area (NaN for an empty mask)."""
    area_cm2 = mask.sum() / (px_per_mm**2) / 100.0
    return float(count / area_cm2) if area_cm2 > 0 else float("nan")


def texture_maps(shading: np.ndarray, skin: np.ndarray, px_per_mm: float,
                 not_lines: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Whole-face texture maps, computed once and shared by all regions.

    Parameters
    ----------
    shading : ndarray, float32 HxW, shading density
    skin : ndarray, bool HxW, union of measured regions
    px_per_mm : float
    not_lines : ndarray, bool HxW, optional; where no line is accepted (pigment spots: the rim
        of a dark spot is a curved ridge of density, not a crease)

    Returns
    -------
    dict with ``detail`` (band-passed shading, float32), ``line_depth`` (float32, OD, from
    :func:`checked_line_depth` of :func:`without_bright_specks`),
    ``wrinkles`` (bool skeleton), ``line_area`` (bool, the skin where a line is accepted: ``skin``
    less ``not_lines``) and ``pores`` (bool, True at pore centres), all HxW.
    Computed on the skin's bounding box plus a 3 mm margin only (about half the frame).
    """
    shape = skin.shape
    out = {
        "detail": np.zeros(shape, np.float32),
        "line_depth": np.zeros(shape, np.float32),
        "wrinkles": np.zeros(shape, bool),
        "line_area": np.zeros(shape, bool),
        "pores": np.zeros(shape, bool),
    }
    if not skin.any():
        return out
    box = mask_bbox(skin, int(np.ceil(3.0 * px_per_mm)))
    values = np.ascontiguousarray(shading[box], dtype=np.float32)
    mask = skin[box]
    filled = fill_outside(values, mask, px_per_mm)
    out["detail"][box] = band_pass(filled, mask, px_per_mm)
    depth = checked_line_depth(without_bright_specks(filled, px_per_mm), px_per_mm)
    line_area = mask if not_lines is None else mask & ~not_lines[box]
    lines = wrinkle_lines(depth, line_area, px_per_mm)
    out["line_area"][box] = line_area
    out["line_depth"][box] = np.where(mask, depth, np.float32(0.0))
    out["wrinkles"][box] = lines
    # A crease is not a pore: drop blob centres on or next to an accepted (long) line.
    on_line = cv2.dilate(lines.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    centres = pore_centres(filled, mask & ~on_line, px_per_mm)
    out["pores"][box][centres[:, 0], centres[:, 1]] = True
    return out


def region_texture(
    maps: Mapping[str, np.ndarray], lstar_levels: np.ndarray, mask: np.ndarray, px_per_mm: float,
    min_line_pixels: int = 1,
) -> dict[str, float]:
    """Texture measures of one region from the shared maps.

    Returns
    -------
    dict[str, float]
        ``roughness`` (centi-OD, :func:`roughness_index`), ``wrinkle_density_mm_per_cm2`` (per area of
        the region's ``line_area``: skin next to a pigment spot, where no line is read, is not in the
        area either, so spots do not lower the density; NaN when fewer than ``min_line_pixels`` such
        pixels are left: one short line would read as a dense field),
        ``pore_density_per_cm2`` (visible pores 0.7-1.4 mm per cm^2, higher = more pores),
        ``glcm`` (dict of IBSI features of L* levels from :func:`quantise_lstar`).
    """
    line_area = mask & maps["line_area"]
    return {
        "roughness": roughness_index(maps["detail"], mask),
        "wrinkle_density_mm_per_cm2": (line_density_mm_per_cm2(maps["wrinkles"], line_area, px_per_mm)
                                       if line_area.sum() >= max(1, min_line_pixels) else float("nan")),
        "pore_density_per_cm2": count_density_per_cm2(int((maps["pores"] & mask).sum()), mask, px_per_mm),
        "glcm": glcm_lstar_features(lstar_levels, mask),
    }
