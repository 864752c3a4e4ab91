"""Colour normalisation: ColorChecker correction, or neutral-background white balance.

``estimate_colour_correction`` looks at the whole working image (never at skin):

1. **ColorChecker 24** in the frame -> ``reference = "colorchecker"``. Detected with OpenCV 5
   ``cv2.mcc`` (MCC24) on a working copy with a long side of at most ``WORKING_LONG_SIDE`` px; the 24 patch
   colours are read at full resolution as trimmed means (10 % per tail and channel) of each
   patch's central half, linearised (IEC 61966-2-1), and a degree-2 root-polynomial
   correction (Finlayson, Mackiewicz & Hurlbert, IEEE TIP 24(5), 2015: terms R, G, B,
   sqrt(RG), sqrt(GB), sqrt(RB); exposure-invariant) is fitted by least squares to the
   reference values "ColorChecker24 - After November 2014" (X-Rite; CIE xyY under D50, from
   colour-science), converted to linear sRGB (D65) with the Bradford chromatic adaptation.
   The fit is checked: CIEDE2000 residual per patch; a fit with mean residual above
   ``MAX_MEAN_DELTA_E00`` or any patch above ``MAX_PATCH_DELTA_E00`` is refused (wrong
   detection, orientation or glare) and we fall back to step 2.
2. **Neutral background** -> ``reference = "neutral-background"``: shades-of-grey white balance
   (Finlayson & Trezzi 2004, Minkowski p = 6) over pixels that are outside ``exclude_mask``
   (the face plus a margin, supplied by the caller), well exposed (linear luminance
   0.05-0.90, no channel >= 0.98) and near-neutral: HSV-style saturation (max - min) / max
   <= 0.6 in a first pass (greys under a strong cast still count), then <= 0.25 after
   balancing with the first estimate. Needs at least ``MIN_NEUTRAL_FRACTION`` (5 %) of the
   image and ``MIN_NEUTRAL_PIXELS`` (counted on every 2nd pixel of a <= 1024 px copy); the per-channel
   gains g_c = e_G / e_c (illuminant estimate e) keep green, i.e. roughly luminance, and
   must lie within ``GAIN_RANGE``; otherwise step 3. White balance only: absolute
   exposure is not corrected, so treat absolute colour as lower confidence.
3. ``reference = "none"``: sRGB linearisation only.

Skin is never used as a reference: normalising on skin would erase the very changes
(redness, tanning) we want to measure. The chart must be in the same light as the face (held
beside it); a chart in different light corrects the chart's light, not the face's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import colour as colour_science
import cv2
import numpy as np

from imaging.colour_space import channel_max, channel_min, linear_luminance, linear_to_lab, srgb_to_linear
from imaging.raster import downscale_long_side

REFERENCE_COLORCHECKER = "colorchecker"
REFERENCE_NEUTRAL = "neutral-background"
REFERENCE_NONE = "none"

#: Largest long side (px) of the working copy the chart detector and the white balance run on
#: (cv2.mcc upsamples anything below 1000 px anyway; a chart 1/8 of the frame wide still has
#: ~20 px patches).
WORKING_LONG_SIDE = 1024
#: Step between cv2.mcc adaptive-threshold window sizes (default 16).
MCC_THRESHOLD_WINDOW_STEP = 40
#: Fit validation (CIEDE2000 between corrected patches and their references).
MAX_MEAN_DELTA_E00 = 4.0
MAX_PATCH_DELTA_E00 = 10.0
#: Patches with any linear channel at or above this are clipped and left out of the fit.
PATCH_CLIP_LIMIT = 0.98
#: Fewest unclipped patches for a fit (2x the 6 root-polynomial terms per channel).
MIN_USABLE_PATCHES = 12
#: Share of each patch's side kept around its centre when reading it.
PATCH_INTERIOR = 0.5
#: Trimmed-mean tail share per side when reading a patch.
PATCH_TRIM = 0.1
#: Neutral background thresholds.
SHADES_OF_GREY_P = 6  # fixed: _shades_of_grey computes the 6th power by multiplication
MIN_NEUTRAL_FRACTION = 0.05
MIN_NEUTRAL_PIXELS = 2000
#: White balance samples every WB_SAMPLE_STEP-th pixel (rows and columns) of the working copy.
WB_SAMPLE_STEP = 2
#: Saturation limits (max - min) / max of the two neutral-pixel passes.
NEUTRAL_SATURATION_PASSES = (0.6, 0.25)
NEUTRAL_LUMINANCE_RANGE = (0.05, 0.90)
GAIN_RANGE = (0.5, 2.0)

_CHART_NAME = "ColorChecker24 - After November 2014"


@dataclass(frozen=True)
class ColourCorrection:
    """How to turn an sRGB image into colour-normalised linear sRGB.

    Attributes
    ----------
    reference : str
        ``"colorchecker"``, ``"neutral-background"`` or ``"none"``.
    model : str
        ``"root-polynomial-2"`` (matrix 3x6 applied to R, G, B, sqrt(RG), sqrt(GB),
        sqrt(RB)), ``"diagonal"`` (matrix 3x3 diagonal gains) or ``"identity"``.
    matrix : ndarray, float64, (3, 6) or (3, 3)
    tone_curves : ndarray, float64, (3, 3) or None
        Per-channel quadratic in log-log from the chart's neutral patches
        (:func:`fit_tone_curves`): undoes a camera tone curve other than sRGB's.
    details : dict
        JSON-serialisable facts about the estimate (patch residuals, gains, pixel counts).
    """

    reference: str
    model: str
    matrix: np.ndarray
    details: dict = field(default_factory=dict)
    #: Per-channel tone curves measured on the chart's neutral patches (:func:`fit_tone_curves`),
    #: applied before the matrix; None = the photo's tone curve is taken to be sRGB's.
    tone_curves: np.ndarray | None = None


def identity_correction(reason: str, details: dict | None = None) -> ColourCorrection:
    """The 'no reference' correction (linearisation only), with the reason in details."""
    return ColourCorrection(REFERENCE_NONE, "identity", np.eye(3), {"reason": reason, **(details or {})})


@lru_cache(maxsize=1)
def reference_patches_linear() -> np.ndarray:
    """ColorChecker 24 reference colours as linear sRGB (D65).

    Returns
    -------
    ndarray, float64, (24, 3), patch order dark skin ... black (row by row); some values
    are slightly outside [0, 1] (patches outside the sRGB gamut, e.g. cyan).
    """
    chart = colour_science.CCS_COLOURCHECKERS[_CHART_NAME]
    xyy = np.array(list(chart.data.values()), dtype=np.float64)
    return colour_science.XYZ_to_RGB(
        colour_science.xyY_to_XYZ(xyy),
        "sRGB",
        illuminant=chart.illuminant,
        chromatic_adaptation_transform="Bradford",
        apply_cctf_encoding=False,
    )


def root_polynomial_terms(linear: np.ndarray) -> np.ndarray:
    """Degree-2 root-polynomial expansion (Finlayson 2015).

    Parameters
    ----------
    linear : ndarray, float, (..., 3), non-negative linear RGB

    Returns
    -------
    ndarray, same float type, (..., 6): R, G, B, sqrt(RG), sqrt(GB), sqrt(RB). Every term
    scales linearly with exposure, which makes the correction exposure-invariant.
    """
    v = np.maximum(linear, 0)
    r, g, b = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([r, g, b, np.sqrt(r * g), np.sqrt(g * b), np.sqrt(r * b)], axis=-1)


def fit_root_polynomial(measured: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Least-squares degree-2 root-polynomial correction.

    Parameters
    ----------
    measured : ndarray, (N, 3), linear camera RGB of the patches (N >= 6)
    reference : ndarray, (N, 3), target linear sRGB

    Returns
    -------
    ndarray, float64, (3, 6): corrected = terms(measured) @ matrix.T
    """
    terms = root_polynomial_terms(np.asarray(measured, np.float64))
    solution, *_ = np.linalg.lstsq(terms, np.asarray(reference, np.float64), rcond=None)
    return solution.T


#: Indices of the neutral patches (white ... black) in the ColorChecker 24 order.
NEUTRAL_PATCHES = slice(18, 24)


def fit_tone_curves(measured: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """Per-channel tone curves from the chart's neutral patches: quadratic in log-log.

    A phone renders with its own tone curve, not sRGB's; linearising with the sRGB curve then
    leaves a non-linear map from scene light to values, which a colour matrix cannot undo and
    which scales every within-photo contrast. The six neutral patches sample that map per
    channel; ``log ref = c0 + c1 log m + c2 (log m)^2`` is fitted by least squares (a smooth
    curve: a pure gain gives c1 = 1, c2 = 0 up to the patches' noise, so it adds little noise).

    Parameters
    ----------
    measured, reference : ndarray (24, 3), linear RGB of the chart's patches (NaN = unusable)

    Returns
    -------
    ndarray float64 (3, 3): per channel (c0, c1, c2); None with fewer than 4 usable neutral
    patches or a curve that is not increasing over the patches' range.
    """
    m = np.asarray(measured, np.float64)[NEUTRAL_PATCHES]
    r = np.asarray(reference, np.float64)[NEUTRAL_PATCHES]
    ok = np.isfinite(m).all(axis=1) & (m.min(axis=1) > 1e-3) & (m.max(axis=1) < PATCH_CLIP_LIMIT)
    if ok.sum() < 4:
        return None
    y = np.log(np.maximum(r[ok].mean(axis=1), 1e-4))
    curves = []
    for channel in range(3):
        x = np.log(m[ok, channel])
        coefficients, *_ = np.linalg.lstsq(np.stack([np.ones_like(x), x, x * x], axis=1), y, rcond=None)
        slope = coefficients[1] + 2 * coefficients[2] * np.array([x.min(), x.max()])
        if np.any(slope <= 0.2):
            return None
        curves.append(coefficients)
    return np.array(curves)


def apply_tone_curves(linear: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Map linear values through per-channel log-log quadratics (:func:`fit_tone_curves`)."""
    logs = np.log(np.maximum(np.asarray(linear, np.float32), np.float32(1e-5)))
    c = curves.astype(np.float32)
    out = np.exp(c[:, 0] + c[:, 1] * logs + c[:, 2] * logs * logs)
    return out.astype(np.float32)


def _apply_matrix(linear: np.ndarray, correction: ColourCorrection) -> np.ndarray:
    if correction.tone_curves is not None:
        linear = apply_tone_curves(linear, correction.tone_curves)
    if correction.model == "root-polynomial-2":
        out = root_polynomial_terms(linear) @ correction.matrix.T.astype(np.float32)
    elif correction.model == "diagonal":
        out = linear * np.diag(correction.matrix).astype(np.float32)
    else:
        out = linear
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def apply_colour_correction(rgb: np.ndarray, correction: ColourCorrection) -> np.ndarray:
    """Apply a colour correction to an image (e.g. the canonical face).

    Parameters
    ----------
    rgb : ndarray, HxWx3 (or Nx3), uint8 sRGB, or float32 linear sRGB in [0, 1]
        uint8 input is linearised (IEC 61966-2-1) first; float input is taken as linear.
    correction : ColourCorrection from :func:`estimate_colour_correction`

    Returns
    -------
    ndarray, float32, same shape, colour-normalised linear sRGB clipped to [0, 1].
    """
    linear = srgb_to_linear(rgb) if rgb.dtype == np.uint8 else np.asarray(rgb, dtype=np.float32)
    return _apply_matrix(linear, correction)


# --- ColorChecker -------------------------------------------------------------------------


def working_copy(rgb_uint8: np.ndarray) -> tuple[np.ndarray, float]:
    """The colour estimators' working copy: area-downscaled by the smallest integer factor giving
    a long side <= WORKING_LONG_SIDE (:func:`imaging.raster.downscale_long_side`, ``"integer"``).

    Returns
    -------
    (small uint8 image, scale = small width / original width, <= 1)
    """
    return downscale_long_side(rgb_uint8, WORKING_LONG_SIDE, resampling="integer")


def detect_colorchecker_patches(
    rgb_uint8: np.ndarray, working: tuple[np.ndarray, float] | None = None
) -> np.ndarray | None:
    """Find a ColorChecker 24 and return its patch corners.

    Parameters
    ----------
    rgb_uint8 : ndarray, uint8 HxWx3, sRGB, RGB order
    working : optional precomputed :func:`working_copy` of ``rgb_uint8``

    Returns
    -------
    ndarray, float32, (24, 4, 2) patch corner points (x, y) in the input's pixel
    coordinates, patches in reference order (dark skin first); or None when no chart is found.
    """
    small, scale = working if working is not None else working_copy(rgb_uint8)
    detector = cv2.mcc.CCheckerDetector.create()
    detector.setColorChartType(cv2.mcc.MCC24)
    params = cv2.mcc.DetectorParametersMCC()
    # 4 adaptive-threshold window sizes (23..143 px) instead of 9: ~2x faster, and a
    # card's black frame is found at any of them.
    params.adaptiveThreshWinSizeStep = MCC_THRESHOLD_WINDOW_STEP
    detector.setDetectionParams(params)
    if not detector.process(np.ascontiguousarray(small[..., ::-1])):
        return None
    checker = detector.getBestColorChecker()
    if checker is None:
        return None
    corners = np.asarray(checker.getColorCharts(), dtype=np.float32).reshape(-1, 4, 2)
    if corners.shape[0] != 24:
        return None
    return corners / np.float32(scale)


def read_patch_colours(rgb_uint8: np.ndarray, patch_corners: np.ndarray) -> np.ndarray:
    """Robust linear colour of each patch: trimmed mean of its central part.

    Parameters
    ----------
    rgb_uint8 : ndarray, uint8 HxWx3 sRGB
    patch_corners : ndarray, (N, 4, 2) corner points (x, y) per patch

    Returns
    -------
    ndarray, float64, (N, 3), linear sRGB; the quadrilateral is shrunk towards its centre
    to ``PATCH_INTERIOR`` of its size (avoids edges, blur and the black frame), then each
    channel's ``PATCH_TRIM`` tails are dropped (specks, glare, noise).
    """
    h, w = rgb_uint8.shape[:2]
    out = np.zeros((len(patch_corners), 3), dtype=np.float64)
    for k, quad in enumerate(patch_corners):
        centre = quad.mean(axis=0)
        inner = centre + PATCH_INTERIOR * (quad - centre)
        x0, y0 = np.floor(inner.min(axis=0)).astype(int)
        x1, y1 = np.ceil(inner.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        mask = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)
        if mask.size == 0:
            out[k] = np.nan
            continue
        cv2.fillConvexPoly(mask, np.round(inner - [x0, y0]).astype(np.int32), 1)
        # Linearise only the patch's box: the whole 12 MP frame would cost ~100 ms.
        pixels = np.sort(srgb_to_linear(rgb_uint8[y0:y1, x0:x1][mask > 0]), axis=0)
        if len(pixels) == 0:
            out[k] = np.nan
            continue
        cut = int(len(pixels) * PATCH_TRIM)
        out[k] = pixels[cut : len(pixels) - cut].mean(axis=0)
    return out


def delta_e00(linear_a: np.ndarray, linear_b: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between two sets of linear sRGB colours (N, 3) -> (N,)."""
    lab_a = linear_to_lab(np.clip(np.asarray(linear_a, np.float32), 0, 1))
    lab_b = linear_to_lab(np.clip(np.asarray(linear_b, np.float32), 0, 1))
    return np.asarray(colour_science.delta_E(lab_a, lab_b, method="CIE 2000"), dtype=np.float64)


def colorchecker_correction(
    rgb_uint8: np.ndarray, working: tuple[np.ndarray, float] | None = None
) -> ColourCorrection | None:
    """Detect a ColorChecker and fit + validate the correction; None if no chart is found.

    ``working`` is an optional precomputed :func:`working_copy`.

    Returns
    -------
    ColourCorrection with reference 'colorchecker', or None. On refusal the reason is
    returned in a 'none' correction's details by :func:`estimate_colour_correction`.
    """
    corners = detect_colorchecker_patches(rgb_uint8, working)
    if corners is None:
        return None
    measured = read_patch_colours(rgb_uint8, corners)
    reference = reference_patches_linear()
    usable = np.isfinite(measured).all(axis=1) & (measured.max(axis=1) < PATCH_CLIP_LIMIT)
    if usable.sum() < MIN_USABLE_PATCHES:
        return identity_correction("colorchecker_patches_unusable")
    curves = fit_tone_curves(np.where(usable[:, None], measured, np.nan), reference)
    toned = measured if curves is None else apply_tone_curves(np.nan_to_num(measured).astype(np.float32), curves)
    matrix = fit_root_polynomial(toned[usable], reference[usable])
    probe = ColourCorrection(REFERENCE_COLORCHECKER, "root-polynomial-2", matrix, tone_curves=curves)
    residual = delta_e00(_apply_matrix(measured[usable].astype(np.float32), probe), reference[usable])
    details = {
        "patches_used": int(usable.sum()),
        "delta_e00_mean": float(residual.mean()),
        "delta_e00_max": float(residual.max()),
        "chart_corners": corners.reshape(-1, 2)[[0, 23 * 4 + 2]].tolist(),
    }
    if residual.mean() > MAX_MEAN_DELTA_E00 or residual.max() > MAX_PATCH_DELTA_E00:
        return identity_correction("colorchecker_fit_rejected", details)
    details["tone_curves"] = curves is not None
    return ColourCorrection(REFERENCE_COLORCHECKER, "root-polynomial-2", matrix, details, tone_curves=curves)


# --- Neutral background -------------------------------------------------------------------


def _well_exposed(linear: np.ndarray) -> np.ndarray:
    """Pixels with luminance in NEUTRAL_LUMINANCE_RANGE and no clipped channel (bool HxW)."""
    luminance = linear_luminance(linear)
    return (
        (luminance >= NEUTRAL_LUMINANCE_RANGE[0])
        & (luminance <= NEUTRAL_LUMINANCE_RANGE[1])
        & (channel_max(linear) < PATCH_CLIP_LIMIT)
    )


def _shades_of_grey(pixels: np.ndarray) -> np.ndarray:
    """Illuminant estimate (3,) = Minkowski p-norm mean per channel (Finlayson & Trezzi 2004)."""
    squared = pixels.astype(np.float32) ** 2
    powered = squared * squared * squared  # p = 6 by multiplication: ~10x faster than ** 6.0
    return np.mean(powered, axis=0, dtype=np.float64) ** (1.0 / SHADES_OF_GREY_P)


def neutral_background_correction(
    rgb_uint8: np.ndarray, exclude_mask: np.ndarray | None, working: tuple[np.ndarray, float] | None = None
) -> ColourCorrection:
    """Shades-of-grey (p = 6) white balance on neutral, well-exposed non-face pixels.

    Parameters
    ----------
    rgb_uint8 : ndarray, uint8 HxWx3 sRGB
    exclude_mask : ndarray, bool HxW or None; True = never use (face and a margin)
    working : optional precomputed :func:`working_copy` of ``rgb_uint8``

    Returns
    -------
    ColourCorrection, 'neutral-background' (diagonal gains) or 'none' with the reason.
    """
    # A white-balance estimate needs no detail: every other pixel of the 1024 px working copy.
    small, scale = working if working is not None else working_copy(rgb_uint8)
    sample = np.ascontiguousarray(small[::WB_SAMPLE_STEP, ::WB_SAMPLE_STEP])
    linear = srgb_to_linear(sample)
    usable = _well_exposed(linear)
    if exclude_mask is not None:
        excl = np.asarray(exclude_mask)
        excl = excl.view(np.uint8) if excl.dtype == np.bool_ else excl.astype(np.uint8)
        if scale != 1.0:
            excl = cv2.resize(excl, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
        usable &= excl[::WB_SAMPLE_STEP, ::WB_SAMPLE_STEP] == 0
    # Two passes: a loose neutrality test finds the greys even under a strong cast, then a
    # strict one on the provisionally balanced image drops coloured surfaces.
    illuminant = np.ones(3)
    candidate = usable
    for max_saturation in NEUTRAL_SATURATION_PASSES:
        balanced = linear / (illuminant / illuminant[1]).astype(np.float32)
        hi = channel_max(balanced)
        lo = channel_min(balanced)
        candidate = usable & ((hi - lo) <= max_saturation * np.maximum(hi, 1e-6))
        if candidate.sum() < MIN_NEUTRAL_PIXELS:
            break
        illuminant = _shades_of_grey(linear[candidate])
    count = int(candidate.sum())
    fraction = count / candidate.size
    details = {"neutral_pixels_sampled": count, "neutral_fraction": round(fraction, 4)}
    if count < MIN_NEUTRAL_PIXELS or fraction < MIN_NEUTRAL_FRACTION:
        return identity_correction("too_few_neutral_pixels", details)
    gains = illuminant[1] / np.maximum(illuminant, 1e-9)
    details["gains"] = [round(float(g), 4) for g in gains]
    if gains.min() < GAIN_RANGE[0] or gains.max() > GAIN_RANGE[1]:
        return identity_correction("implausible_white_balance", details)
    return ColourCorrection(REFERENCE_NEUTRAL, "diagonal", np.diag(gains), details)


def estimate_colour_correction(rgb_uint8: np.ndarray, exclude_mask: np.ndarray | None = None) -> ColourCorrection:
    """Choose and estimate the colour correction for one photo.

    Parameters
    ----------
    rgb_uint8 : ndarray, uint8 HxWx3, sRGB (the whole decoded working image)
    exclude_mask : ndarray, bool HxW, optional; the face plus a margin, never used as a
        white reference

    Returns
    -------
    ColourCorrection; ``reference`` says which reference was used
    (``colorchecker`` > ``neutral-background`` > ``none``), ``details`` why.
    """
    if rgb_uint8.dtype != np.uint8 or rgb_uint8.ndim != 3 or rgb_uint8.shape[2] != 3:
        raise ValueError("estimate_colour_correction expects a uint8 HxWx3 RGB image")
    if exclude_mask is not None and np.shape(exclude_mask) != rgb_uint8.shape[:2]:
        raise ValueError("exclude_mask must have the image's height and width")
    working = working_copy(rgb_uint8)
    chart = colorchecker_correction(rgb_uint8, working)
    if chart is not None and chart.reference == REFERENCE_COLORCHECKER:
        return chart
    neutral = neutral_background_correction(rgb_uint8, exclude_mask, working)
    if chart is not None:
        # Keep the reason the chart was refused next to the fallback's own details.
        neutral.details["colorchecker"] = chart.details
    return neutral
