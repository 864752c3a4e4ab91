"""Redness, pigmentation and texture measures per face region and for all measured skin.

What each measure means - formula, units, range, direction, reference and what a value needs to
be compared across photos - is defined once, in :mod:`imaging.catalogue` (its documentation
lists every measure; ``python -m pydoc imaging.catalogue``). This module computes them (the
texture measures through :mod:`imaging.texture`) with the constants below.

Input is the colour-corrected canonical face (float32 linear sRGB, 768x1024) with boolean region
masks; every physical size is in millimetres through ``px_per_mm``. Clipped pixels (any linear
channel >= ``SATURATION_LIMIT`` = 0.98: glare, blown highlights) carry no colour information and
are left out of every measure; ``pixel_count`` counts the measured pixels, and regions with fewer
than ``MIN_REGION_PIXELS`` report None.

:func:`compute_maps` computes every per-pixel map once per photo (CIELAB, the chromophore
separation, erythema and melanin indices, pigment spots, texture maps); :func:`region_measures`
reads one region's pixels from them. The headline numbers (``redness``, ``pigmentation``,
``texture``) are built from the separated maps so that each rises with its own kind of change and
moves far less with the others (tests/imaging/test_skin_edits.py, tests/imaging/test_validation.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from imaging import texture
from imaging.catalogue import MEASURES, REFERENCE_REGIONS, REGION_NAMES
from imaging.chromophores import separate_chromophores
from imaging.colour_space import channel_max, linear_luminance, linear_to_lab
from imaging.geometry import SKIN_MASK_NAME
from imaging.masks import mask_bbox, masked_gaussian, robust_sd

#: Regions with fewer pixels report None values (~24 mm^2 at the canonical scale).
MIN_REGION_PIXELS = 400
#: Smallest measured skin area of a redness reference region (mm^2): a fifth of the chin template,
#: a 14 x 14 mm patch. The reference's mean is subtracted from every region, so a sliver (the strip
#: a fringe leaves above the brows: ~50 mm^2, all of it within 2-3 mm of hair and brows) must not
#: be it; every forehead of the face set measures >= 600 mm^2 when not hidden.
MIN_REFERENCE_AREA_MM2 = 200.0
#: :func:`measure_regions` chooses the reference region itself (:func:`reference_region`).
CHOOSE_REFERENCE = "choose"
#: Haemoglobin density above the face median that counts as a red area (OD).
RED_AREA_MARGIN = 0.10
#: Melanin density above the local background (averaged, :data:`SPOT_EXCESS_SIGMA_MM`) that
#: counts as a spot (OD).
SPOT_MARGIN = 0.06
#: Local background scale for spots (Gaussian sigma, mm).
SPOT_BACKGROUND_SIGMA_MM = 4.0
#: Smallest spot equivalent diameter (mm).
SPOT_MIN_DIAMETER_MM = 1.0
#: Averaging of the melanin excess before its margins (Gaussian sigma, mm). A fixed margin on
#: pixel-scale excess lets noise decide what crosses it: sensor noise pushes pixels over, the
#: phone's noise reduction pulls them back, most on dark skin in dim light. A third of the
#: smallest spot's diameter: a 2 mm spot keeps 98 % of its peak contrast, a 1 mm one 64 %; a spot
#: is counted (1 mm of averaged excess above SPOT_MARGIN) from 0.17 OD of contrast at 1 mm,
#: 0.09 at 1.5 mm, 0.07 at 2 mm, 0.06 from 3 mm (0.06 at any size before 2026.12.3).
SPOT_EXCESS_SIGMA_MM = 0.35
#: Linear values at or above this in any channel are treated as clipped (no colour
#: information) and left out of every measure.
SATURATION_LIMIT = 0.98
#: Gaussian prefilter (mm) before any log/ratio: averages sensor noise before the
#: non-linear transforms (which would otherwise bias densities: E[log x] < log E[x]) at
#: the scale the canonical frame resolves (~4 px/mm); finer than every measure's scale.
PREFILTER_SIGMA_MM = 0.25
#: Spot contrast above which melanin counts towards the pigmentation headline (OD): the
#: recapture noise of the local melanin contrast of ordinary skin stays below it.
PIGMENT_LOAD_MARGIN = 0.06
#: Share of a region's pixels, those of lowest haemoglobin density, left out of both sides of the
#: redness contrast (the region and its reference): specular sheen adds white light that dilutes
#: every density, and a highlight clipped or taken for glare in one photo but not in another would
#: otherwise change which pixels are averaged. On shiny type VI skin, +30 % exposure moved redness
#: by 3 centi-OD through the forehead (the reference, diffuse since 2026.12.2) and, through a cheek
#: whose sheen then counted as glare, the study's all-skin redness of `john_salley_dark` by +1.3
#: (and -30 % by -1.3; plain region means through 2026.12.6). Clipped pixels are ranked lowest
#: (they are the brightest sheen), so the same diffuse skin is averaged whether or not the
#: highlights clipped; pixels the regions leave out as glare are not counted, and shift only which
#: pixels sit at the 20th percentile.
SHEEN_FRACTION = 0.2
#: Floor for linear values in the log indices (as in :data:`imaging.colour_space.OD_EPS`).
_LOG_FLOOR = 1e-4


#: Measures set to NaN in a region too small to measure: every measure of the catalogue but
#: ``glcm`` (NaN features) and ``delta_a_star`` (added by :func:`measure_regions`).
_SCALAR_MEASURES = tuple(m.key for m in MEASURES if m.key not in ("glcm", "delta_a_star"))


@dataclass(frozen=True)
class MeasureMaps:
    """Per-pixel maps of one canonical face, shared by all regions and by the overlays.

    All HxW. ``lab`` float32 HxWx3; ``melanin``, ``haemoglobin``, ``shading`` float32 densities;
    ``erythema_index``, ``melanin_index`` float32 per-pixel indices; ``spot_excess`` float32
    melanin above local background, averaged over SPOT_EXCESS_SIGMA_MM (:func:`detect_spots`);
    ``spots`` int32 labels of accepted spots (0 = none);
    ``texture`` dict of :func:`imaging.texture.texture_maps`; ``red_baseline`` float (face
    median haemoglobin density, NaN without skin); ``valid`` bool, skin pixels that are not
    clipped (any channel >= SATURATION_LIMIT), the only pixels measured; ``clipped`` bool, skin
    pixels that are clipped.
    ``contrast_haemoglobin``, ``contrast_melanin`` float32 densities of the contrast image
    (read only as differences within the photo: redness, spots); ``luminance_od`` float32
    -log10 of the contrast image's linear luminance (texture).
    """

    lab: np.ndarray
    lstar_levels: np.ndarray
    melanin: np.ndarray
    haemoglobin: np.ndarray
    shading: np.ndarray
    erythema_index: np.ndarray
    melanin_index: np.ndarray
    spot_excess: np.ndarray
    spots: np.ndarray
    texture: dict
    red_baseline: float
    valid: np.ndarray
    contrast_haemoglobin: np.ndarray | None = None
    contrast_melanin: np.ndarray | None = None
    luminance_od: np.ndarray | None = None
    clipped: np.ndarray | None = None


def detect_spots(melanin: np.ndarray, skin: np.ndarray, px_per_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Pigment spots by local contrast on the melanin map, above a physical size.

    Parameters
    ----------
    melanin : ndarray, float32 HxW, melanin density
    skin : ndarray, bool HxW
    px_per_mm : float

    Returns
    -------
    excess : ndarray, float32 HxW, melanin minus its masked-Gaussian local background
        (sigma 4 mm), averaged by a masked Gaussian of sigma SPOT_EXCESS_SIGMA_MM, 0 outside skin
    labels : ndarray, int32 HxW, connected spots (8-connectivity) whose excess > SPOT_MARGIN
        and whose equivalent diameter is >= SPOT_MIN_DIAMETER_MM; 0 = no spot
    """
    background = masked_gaussian(melanin, skin, SPOT_BACKGROUND_SIGMA_MM * px_per_mm)
    excess = np.where(skin, melanin - background, 0.0).astype(np.float32)
    excess = np.where(skin, masked_gaussian(excess, skin, SPOT_EXCESS_SIGMA_MM * px_per_mm), 0.0).astype(np.float32)
    candidate = (excess > SPOT_MARGIN).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    area_mm2 = stats[:, cv2.CC_STAT_AREA] / (px_per_mm**2)
    diameter_mm = np.sqrt(4.0 * area_mm2 / math.pi)
    keep = diameter_mm >= SPOT_MIN_DIAMETER_MM
    keep[0] = False
    # Renumber kept spots 1..k so label values stay compact.
    new_ids = np.zeros(n, dtype=np.int32)
    new_ids[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return excess, new_ids[labels]


def compute_maps(linear_rgb: np.ndarray, skin: np.ndarray, px_per_mm: float,
                 contrast_rgb: np.ndarray | None = None) -> MeasureMaps:
    """Compute every per-pixel map needed by the measures (once per photo).

    Parameters
    ----------
    linear_rgb : ndarray, float32 HxWx3, colour-corrected linear sRGB in [0, 1] (absolute colour)
    skin : ndarray, bool HxW, all measured skin
    px_per_mm : float, image scale (canonical frame: ~4.06)
    contrast_rgb : ndarray, float32 HxWx3, optional
        The linear image read only through differences within the photo (redness against the
        reference region, spots against their surroundings, texture): the photo's own linearised sRGB,
        with the chart's tone curves undone when a ColorChecker was found
        (:func:`imaging.analysis.contrast_image`). Default ``linear_rgb``.

    Returns
    -------
    MeasureMaps
    """
    rgb = np.asarray(linear_rgb, dtype=np.float32)
    contrast = rgb if contrast_rgb is None else np.asarray(contrast_rgb, dtype=np.float32)
    # Clipping is a property of the captured pixels: judged on the contrast image (the photo's
    # own light), not after white-balance gains that may push unclipped skin above 1.
    clipped = skin & (channel_max(contrast) >= SATURATION_LIMIT)
    skin = skin & ~clipped
    if PREFILTER_SIGMA_MM > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), PREFILTER_SIGMA_MM * px_per_mm)
        contrast = rgb if contrast_rgb is None else cv2.GaussianBlur(contrast, (0, 0), PREFILTER_SIGMA_MM * px_per_mm)
    lab = linear_to_lab(rgb)
    chrom = separate_chromophores(rgb)
    local = chrom if contrast_rgb is None else separate_chromophores(contrast)
    red = np.maximum(rgb[..., 0], _LOG_FLOOR)
    green = np.maximum(rgb[..., 1], _LOG_FLOOR)
    erythema = (100.0 * np.log10(red / green)).astype(np.float32)
    melanin_index = (-100.0 * np.log10(red)).astype(np.float32)
    luminance = linear_luminance(contrast)
    luminance_od = (-np.log10(np.maximum(luminance, _LOG_FLOOR))).astype(np.float32)
    excess, spots = detect_spots(local.melanin, skin, px_per_mm)
    baseline = float(np.median(chrom.haemoglobin[skin])) if skin.any() else float("nan")
    return MeasureMaps(
        lab=lab,
        lstar_levels=texture.quantise_lstar(lab[..., 0]),
        melanin=chrom.melanin,
        haemoglobin=chrom.haemoglobin,
        shading=chrom.shading,
        erythema_index=erythema,
        melanin_index=melanin_index,
        spot_excess=excess,
        spots=spots,
        texture=texture.texture_maps(luminance_od, skin, px_per_mm, not_lines=_around(spots > 0, px_per_mm)),
        red_baseline=baseline,
        valid=skin,
        contrast_haemoglobin=local.haemoglobin,
        contrast_melanin=local.melanin,
        luminance_od=luminance_od,
        clipped=clipped,
    )


#: Margin around pigment spots where no wrinkle line is accepted (mm).
SPOT_LINE_MARGIN_MM = 1.0


def _around(mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """``mask`` grown by SPOT_LINE_MARGIN_MM (bool HxW)."""
    radius = max(1, int(round(SPOT_LINE_MARGIN_MM * px_per_mm)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _ita_degrees(l_star: float, b_star: float) -> float:
    return math.degrees(math.atan2(l_star - 50.0, b_star))


def region_measures(maps: MeasureMaps, mask: np.ndarray, px_per_mm: float) -> dict:
    """All measures of one region (definitions: :mod:`imaging.catalogue`).

    Parameters
    ----------
    maps : MeasureMaps from :func:`compute_maps`
    mask : ndarray, bool HxW (a region, or all skin)
    px_per_mm : float

    Returns
    -------
    dict
        ``pixel_count`` (int, measured = unclipped pixels) and float measures (NaN when the region has fewer than
        MIN_REGION_PIXELS pixels), plus ``glcm`` (dict of floats). ``delta_a_star`` is
        added by :func:`measure_regions`.
    """
    mask = mask & maps.valid
    count = int(mask.sum())
    if count < MIN_REGION_PIXELS:
        out = {name: float("nan") for name in _SCALAR_MEASURES}
        out["glcm"] = texture.glcm_features(np.zeros((1, 1)))
        out["pixel_count"] = count
        return out
    # Work inside the region's bounding box: boolean indexing of full frames dominates otherwise.
    box = mask_bbox(mask)
    mask = mask[box]
    lab = maps.lab[box][mask]
    l_star = float(lab[:, 0].mean())
    a_star = float(lab[:, 1].mean())
    b_star = float(lab[:, 2].mean())
    haem = maps.haemoglobin[box][mask]
    mel = maps.melanin[box][mask]
    spots = maps.spots[box]
    spot_pixels = (spots > 0) & mask
    spot_ids = np.unique(spots[spot_pixels])
    tex_maps = {k: v[box] for k, v in maps.texture.items()}
    tex = texture.region_texture(tex_maps, maps.lstar_levels[box], mask, px_per_mm, min_line_pixels=MIN_REGION_PIXELS)
    out = {
        "pixel_count": count,
        "a_star": a_star,
        "erythema_index": float(maps.erythema_index[box][mask].mean()),
        "haemoglobin_density": float(haem.mean()),
        "red_area_fraction": float((haem > maps.red_baseline + RED_AREA_MARGIN).mean()),
        "l_star": l_star,
        "b_star": b_star,
        "ita_deg": _ita_degrees(l_star, b_star),
        "melanin_index": float(maps.melanin_index[box][mask].mean()),
        "melanin_density": float(mel.mean()),
        "spot_count": float(spot_ids.size),
        "spot_area_fraction": float(spot_pixels.sum() / count),
        "melanin_spread": robust_sd(mel),
        "roughness": tex["roughness"],
        "wrinkle_density_mm_per_cm2": tex["wrinkle_density_mm_per_cm2"],
        "pore_density_per_cm2": tex["pore_density_per_cm2"],
        "glcm": tex["glcm"],
    }
    out["pigmentation"] = pigment_load(maps.spot_excess[box][mask])
    out["texture"] = out["wrinkle_density_mm_per_cm2"]
    return out


def pigment_load(spot_excess: np.ndarray) -> float:
    """Pigmentation headline: 100 x mean(max(0, spot excess - PIGMENT_LOAD_MARGIN)) (centi-OD).

    ``spot_excess`` is the melanin density of the contrast image minus its local background,
    averaged over SPOT_EXCESS_SIGMA_MM (:func:`detect_spots`), over the region's measured pixels.
    """
    if spot_excess.size == 0:
        return float("nan")
    return float(100.0 * np.maximum(spot_excess - PIGMENT_LOAD_MARGIN, 0.0).mean())


def redness_contrast(maps: MeasureMaps, mask: np.ndarray, reference_od: float) -> float:
    """Redness headline: 100 x (:func:`diffuse_density` of ``mask`` - ``reference_od``), centi-OD.

    ``reference_od`` is the reference region's :func:`diffuse_density` (plus a follow-up's
    :func:`reference_fill_in`): both sides of the contrast are diffuse skin. NaN when fewer than
    MIN_REGION_PIXELS pixels remain once the sheen is left out (a region needs ~500 measured
    pixels) or ``reference_od`` is NaN.
    """
    return float(100.0 * (diffuse_density(maps, mask) - reference_od))


def skin_redness(maps: MeasureMaps, regions: Mapping[str, np.ndarray], redness: Mapping[str, float]) -> float:
    """All-skin redness: the regions' :func:`redness_contrast` averaged, each weighted by its skin pixels.

    Each region leaves out its own sheen (a highlight on one cheek is that cheek's palest skin, not
    the face's): one ranking over all skin would trim the palest *region* instead, and a cheek
    whose highlights clip would then shift the trimming onto the others (on `dandre_davis`, whose
    cheeks differ by 1.2 OD, +30 % exposure clipped 11 % of one and moved all-skin redness by 3.9
    centi-OD).

    The regions are taken to partition the skin (the templates of :mod:`imaging.regions` do not
    overlap and their union is the skin mask); a region without a value (too small once its sheen
    is left out) is left out of the average with its pixels.

    Parameters
    ----------
    maps : MeasureMaps
    regions : dict, region name -> bool HxW mask
    redness : dict, region name -> the region's redness (centi-OD; NaN or None for the reference
        region and regions too small to measure, which are left out)

    Returns
    -------
    float, centi-OD; NaN when no region has a value. Weights are measured plus clipped pixels, so a
    highlight that clips does not change a region's weight.
    """
    clipped = _clipped(maps)
    values, weights = [], []
    for name, mask in regions.items():
        value = redness.get(name, float("nan"))
        if value is not None and math.isfinite(value):
            values.append(value)
            weights.append(int((mask & (maps.valid | clipped)).sum()))
    return float(np.average(values, weights=weights)) if values else float("nan")


def _redness_density(maps: MeasureMaps) -> np.ndarray:
    """The haemoglobin density redness reads: of the contrast image when there is one."""
    return maps.contrast_haemoglobin if maps.contrast_haemoglobin is not None else maps.haemoglobin


def _clipped(maps: MeasureMaps) -> np.ndarray:
    """The skin pixels left out as clipped (bool HxW; none when the maps do not say)."""
    return maps.clipped if maps.clipped is not None else np.zeros_like(maps.valid)


def reference_measurable(maps: MeasureMaps, reference: np.ndarray, px_per_mm: float) -> bool:
    """Whether a reference region can serve: at least MIN_REFERENCE_AREA_MM2 of measured skin, and
    its diffuse skin (:func:`diffuse_density`) has at least MIN_REGION_PIXELS pixels."""
    area_mm2 = float((reference & maps.valid).sum()) / px_per_mm**2
    return area_mm2 >= MIN_REFERENCE_AREA_MM2 and bool(np.isfinite(diffuse_density(maps, reference)))


def diffuse_density(maps: MeasureMaps, mask: np.ndarray) -> float:
    """Mean haemoglobin density (OD) of the diffuse skin of ``mask`` (a region or the reference):
    :func:`diffuse_mean` of its measured pixels, its clipped ones ranked as sheen; NaN when too
    few pixels remain."""
    return diffuse_mean(_redness_density(maps)[mask & maps.valid], int((mask & _clipped(maps)).sum()))


def reference_fill_in(contrast_rgb: np.ndarray, whole: np.ndarray, seen: np.ndarray, px_per_mm: float) -> float:
    """What the seen part of a reference region misses, from the photo that showed all of it (OD).

    A follow-up measures its redness against the part of its baseline's reference region it still
    shows (hair, a hand or new glare hides the rest), and that part's mean differs from the whole
    region's by the region's own variation (on the set, a fringe over the upper forehead moved the
    cheeks' redness by more than 2 centi-OD on 24 of 31 faces, by up to 40). The baseline shows the
    whole region: its diffuse mean over ``whole`` minus over ``seen``, both read as
    :func:`compute_maps` reads the contrast haemoglobin, is added to the follow-up's reference mean. A within-photo difference of the
    baseline: exposure and white balance cancel, as in redness itself.

    Parameters
    ----------
    contrast_rgb : ndarray, float32 HxWx3, the baseline's contrast image (linear, canonical frame)
    whole : ndarray, bool HxW, the baseline's reference region
    seen : ndarray, bool HxW, the part of it the follow-up measures (a subset of ``whole``)
    px_per_mm : float

    Returns
    -------
    float, OD; 0.0 when ``seen`` is ``whole``, NaN when either has too few pixels (as :func:`diffuse_mean`).
    """
    if not whole.any():
        return float("nan")
    sigma = PREFILTER_SIGMA_MM * px_per_mm
    # The prefilter's support around the region, so its values inside equal the whole frame's.
    box = mask_bbox(whole, margin=int(np.ceil(4 * sigma)) + 1)
    crop = np.asarray(contrast_rgb[box], dtype=np.float32)
    clipped = channel_max(crop) >= SATURATION_LIMIT
    if PREFILTER_SIGMA_MM > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), sigma)
    haem = separate_chromophores(crop).haemoglobin

    def mean_of(mask: np.ndarray) -> float:
        mask = mask[box]
        return diffuse_mean(haem[mask & ~clipped], int((mask & clipped).sum()))

    return mean_of(whole) - mean_of(seen & whole)


def reference_region(maps: MeasureMaps, regions: Mapping[str, np.ndarray], px_per_mm: float) -> str | None:
    """The first of :data:`imaging.catalogue.REFERENCE_REGIONS` measurable in this photo
    (:func:`reference_measurable`).

    Returns
    -------
    str or None, None when no reference region is measurable.
    """
    for name in REFERENCE_REGIONS:
        if name in regions and reference_measurable(maps, regions[name], px_per_mm):
            return name
    return None


def diffuse_mean(density: np.ndarray, n_clipped: int) -> float:
    """Mean density of a region's diffuse skin: its pixels ranked by density with the
    ``n_clipped`` clipped pixels counted lowest, the lowest SHEEN_FRACTION of all left
    out (specular sheen; see the constant).

    Parameters
    ----------
    density : ndarray, float, the region's measured (unclipped) pixels
    n_clipped : int, >= 0, the region's clipped skin pixels

    Returns
    -------
    float, NaN when fewer than MIN_REGION_PIXELS pixels remain.
    """
    drop = max(0, int(SHEEN_FRACTION * (density.size + n_clipped)) - n_clipped)
    kept = np.partition(density, drop)[drop:] if 0 < drop < density.size else density[drop:]
    return float(kept.mean()) if kept.size >= MIN_REGION_PIXELS else float("nan")



def to_json_safe(value):
    """Recursively turn numpy scalars into Python numbers and NaN/inf into None."""
    if isinstance(value, dict):
        return {k: to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _check_inputs(linear_rgb: np.ndarray, masks: Mapping[str, np.ndarray], px_per_mm: float) -> None:
    """Refuse inputs that would silently give wrong numbers (ValueError with the reason)."""
    arr = np.asarray(linear_rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError("linear_rgb must be a float HxWx3 linear sRGB image (apply_colour_correction output)")
    for name, mask in masks.items():
        if np.shape(mask) != arr.shape[:2]:
            raise ValueError(f"mask {name!r} has shape {np.shape(mask)}, image is {arr.shape[:2]}")
    if not (np.isfinite(px_per_mm) and px_per_mm > 0):
        raise ValueError("px_per_mm must be a positive number")


def measure_regions(
    linear_rgb: np.ndarray, masks: Mapping[str, np.ndarray], px_per_mm: float, maps: MeasureMaps | None = None,
    reference: str | None = CHOOSE_REFERENCE, fill_in: float = 0.0,
) -> dict:
    """Measure every region and all skin together.

    Parameters
    ----------
    linear_rgb : ndarray, float32 HxWx3, colour-corrected linear sRGB in [0, 1]
    masks : mapping region name -> bool HxW; uses the names in ``REGION_NAMES`` that are
        present, and ``skin`` if given (else the union of the regions)
    px_per_mm : float, pixels per millimetre (``imaging.geometry.CANONICAL_PX_PER_MM``)
    maps : MeasureMaps, optional, precomputed by :func:`compute_maps` (e.g. shared with
        the overlays); computed here when omitted
    reference : str or None, one of :data:`imaging.catalogue.REFERENCE_REGIONS`, the internal
        reference region of redness and delta a* (a follow-up passes its baseline's, so both are
        contrasts against the same skin); :data:`CHOOSE_REFERENCE` (default) chooses it with
        :func:`reference_region`; None: no reference (a follow-up of a baseline without one)
    fill_in : float, OD added to the reference's mean for redness (a follow-up's
        :func:`reference_fill_in`; NaN gives no redness)

    Returns
    -------
    dict
        ``{"metrics": {...all skin...}, "regions": {name: {...}}, "reference": name or None}``;
        plain Python floats and ints, NaN -> None, JSON-serialisable. Headline keys ``redness``,
        ``pigmentation``, ``texture`` in every entry; ``reference`` is the reference region used
        (None when none was measurable: redness and delta a* are then None everywhere).

    Raises
    ------
    ValueError
        If the image is not float HxWx3, a mask's shape differs from the image's,
        ``px_per_mm`` is not positive or ``reference`` is not a reference region.
    """
    _check_inputs(linear_rgb, masks, px_per_mm)
    if reference not in (None, CHOOSE_REFERENCE, *REFERENCE_REGIONS):
        raise ValueError(f"reference must be one of {REFERENCE_REGIONS}, None or CHOOSE_REFERENCE, got {reference!r}")
    regions = {name: np.asarray(masks[name], dtype=bool) for name in REGION_NAMES if name in masks}
    if SKIN_MASK_NAME in masks:
        skin = np.asarray(masks[SKIN_MASK_NAME], dtype=bool)
    else:
        skin = np.zeros(np.asarray(linear_rgb).shape[:2], dtype=bool)
        for m in regions.values():
            skin |= m
    if maps is None:
        maps = compute_maps(linear_rgb, skin, px_per_mm)
    if reference == CHOOSE_REFERENCE:
        reference = reference_region(maps, regions, px_per_mm)
    per_region = {name: region_measures(maps, m, px_per_mm) for name, m in regions.items()}
    overall = region_measures(maps, skin, px_per_mm)
    # Against the reference region of the same photo: a global exposure or white-balance change
    # moves both alike and cancels; the reference itself has no value. A baseline's reference that
    # is hidden in this follow-up (too little of it measured) gives no value anywhere.
    reference_mask = regions.get(reference, np.zeros_like(skin))
    measurable = reference_measurable(maps, reference_mask, px_per_mm)
    # delta a* is absolute colour (comparable only with a chart) and is not filled in.
    reference_a = per_region[reference]["a_star"] if measurable else float("nan")
    for entry in (*per_region.values(), overall):
        entry["delta_a_star"] = entry["a_star"] - reference_a
    reference_od = diffuse_density(maps, reference_mask) + fill_in if measurable else float("nan")
    for name, mask in regions.items():
        per_region[name]["redness"] = (float("nan") if name == reference
                                       else redness_contrast(maps, mask, reference_od))
    overall["redness"] = skin_redness(maps, regions, {name: per_region[name]["redness"] for name in regions})
    return to_json_safe({"metrics": overall, "regions": per_region, "reference": reference})
