"""Clinician overlays (PNG bytes) over the canonical face photo.

Every map uses a FIXED colour scale (``REDNESS_RANGE``, ``MELANIN_RANGE``), the same for every
photo, so a baseline and a follow-up map can be compared by eye; a colour bar with the scale in
density units is drawn in a side panel. PNGs carry no metadata (no EXIF, no text chunks).

Inputs: the canonical photo as uint8 sRGB HxWx3 (or float32 linear sRGB, converted for
display), region masks (bool HxW by name) and :class:`imaging.measures.MeasureMaps`.
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from imaging.catalogue import REGION_NAMES
from imaging.colour_space import linear_to_srgb_uint8
from imaging.masks import mask_bbox
from imaging.measures import MeasureMaps
from imaging.raster import encode_png

#: Haemoglobin density shown from transparent (lower bound) to full colour (upper bound).
REDNESS_RANGE = (0.2, 0.8)
#: Melanin density scale of the pigment map.
MELANIN_RANGE = (0.0, 0.6)
#: Width of the legend panel on the right of single overlays, px.
LEGEND_WIDTH = 120
#: Opacity of the heat maps at full scale.
HEAT_ALPHA = 0.65

# RGB colours.
_REGION_COLOURS = {
    "forehead": (255, 210, 0),
    "left_cheek": (0, 200, 255),
    "right_cheek": (0, 255, 120),
    "nose": (255, 120, 255),
    "chin": (255, 255, 255),
}
_SPOT_COLOUR = (40, 255, 255)
_LINE_COLOUR = (0, 255, 255)
_PORE_COLOUR = (255, 255, 0)
_TEXT = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _display_rgb(photo: np.ndarray) -> np.ndarray:
    """uint8 sRGB copy of the photo (float input is taken as linear sRGB)."""
    if photo.dtype == np.uint8:
        return photo[..., :3].copy()
    return linear_to_srgb_uint8(photo[..., :3])


def _colormap(scaled: np.ndarray, colormap: int) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 through an OpenCV colormap."""
    index = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(index, colormap), cv2.COLOR_BGR2RGB)


def heat_layer(
    photo_rgb: np.ndarray, values: np.ndarray, mask: np.ndarray, value_range: tuple[float, float], colormap: int
) -> np.ndarray:
    """Blend a fixed-scale heat map of ``values`` over the photo inside ``mask``.

    Parameters
    ----------
    photo_rgb : ndarray, uint8 HxWx3
    values : ndarray, float HxW (e.g. haemoglobin density)
    mask : ndarray, bool HxW
    value_range : (low, high), values mapped to colour 0..1 and opacity 0..HEAT_ALPHA
    colormap : int, OpenCV colormap id

    Returns
    -------
    ndarray, uint8 HxWx3
    """
    low, high = value_range
    out = photo_rgb.copy()
    box = mask_bbox(mask)  # blend only where there is skin (a third of the frame)
    scaled = np.clip((values[box] - low) / (high - low), 0.0, 1.0).astype(np.float32)
    colours = _colormap(scaled, colormap).astype(np.float32)
    alpha = (HEAT_ALPHA * np.sqrt(scaled) * mask[box])[..., None]
    out[box] = np.round(photo_rgb[box].astype(np.float32) * (1 - alpha) + colours * alpha).astype(np.uint8)
    return out


def _legend(height: int, title: str, unit: str, value_range: tuple[float, float], colormap: int) -> np.ndarray:
    """Side panel with a vertical colour bar, tick labels and title (uint8 height x LEGEND_WIDTH x 3)."""
    panel = np.full((height, LEGEND_WIDTH, 3), 24, np.uint8)
    top, bottom = 60, height - 60
    bar = _colormap(np.linspace(1.0, 0.0, bottom - top, dtype=np.float32)[:, None], colormap)
    panel[top:bottom, 16:40] = np.repeat(bar, 24, axis=1)
    cv2.putText(panel, title, (6, 24), _FONT, 0.5, _TEXT, 1, cv2.LINE_AA)
    cv2.putText(panel, unit, (6, 44), _FONT, 0.45, _TEXT, 1, cv2.LINE_AA)
    low, high = value_range
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = int(round(bottom - frac * (bottom - top)))
        cv2.line(panel, (40, y), (48, y), _TEXT, 1)
        cv2.putText(panel, f"{low + frac * (high - low):.2f}", (52, y + 5), _FONT, 0.45, _TEXT, 1, cv2.LINE_AA)
    return panel


def _with_legend(image: np.ndarray, legend: np.ndarray | None) -> np.ndarray:
    if legend is None:
        legend = np.full((image.shape[0], LEGEND_WIDTH, 3), 24, np.uint8)
    return np.hstack([image, legend])


def draw_region_outlines(image: np.ndarray, masks: Mapping[str, np.ndarray], thickness: int = 2) -> np.ndarray:
    """Draw each region's outline and name (in place on a copy).

    Parameters
    ----------
    image : ndarray, uint8 HxWx3
    masks : region name -> bool HxW (names outside REGION_NAMES are ignored)

    Returns
    -------
    ndarray, uint8 HxWx3
    """
    out = image.copy()
    for name in REGION_NAMES:
        if name not in masks or not np.any(masks[name]):
            continue
        mask = np.asarray(masks[name], np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        colour = _REGION_COLOURS[name]
        cv2.drawContours(out, contours, -1, colour, thickness, cv2.LINE_AA)
        x, y, _, _ = cv2.boundingRect(np.vstack(contours))
        label = name.replace("_", " ")
        cv2.putText(out, label, (x, max(14, y - 6)), _FONT, 0.5, colour, 1, cv2.LINE_AA)
    return out


def redness_overlay(photo: np.ndarray, maps: MeasureMaps, masks: Mapping[str, np.ndarray]) -> bytes:
    """Haemoglobin heat map (fixed scale REDNESS_RANGE) with region outlines and a colour bar.

    Returns
    -------
    bytes, PNG of width W + LEGEND_WIDTH and height H.
    """
    base = heat_layer(_display_rgb(photo), maps.haemoglobin, maps.valid, REDNESS_RANGE, cv2.COLORMAP_HOT)
    base = draw_region_outlines(base, masks, thickness=1)
    legend = _legend(base.shape[0], "Haemoglobin", "density (OD)", REDNESS_RANGE, cv2.COLORMAP_HOT)
    return encode_png(_with_legend(base, legend))


def pigment_overlay(photo: np.ndarray, maps: MeasureMaps, masks: Mapping[str, np.ndarray]) -> bytes:
    """Melanin heat map (fixed scale MELANIN_RANGE) with detected pigment spots outlined.

    Returns
    -------
    bytes, PNG of width W + LEGEND_WIDTH and height H.
    """
    base = heat_layer(_display_rgb(photo), maps.melanin, maps.valid, MELANIN_RANGE, cv2.COLORMAP_CIVIDIS)
    spots = (maps.spots > 0).astype(np.uint8)
    contours, _ = cv2.findContours(spots, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(base, contours, -1, _SPOT_COLOUR, 1, cv2.LINE_8)
    base = draw_region_outlines(base, masks, thickness=1)
    legend = _legend(base.shape[0], "Melanin", "density (OD)", MELANIN_RANGE, cv2.COLORMAP_CIVIDIS)
    return encode_png(_with_legend(base, legend))


def wrinkle_overlay(photo: np.ndarray, maps: MeasureMaps, masks: Mapping[str, np.ndarray]) -> bytes:
    """Detected wrinkle lines (cyan) and visible pores (yellow dots) with region outlines.

    Returns
    -------
    bytes, PNG of width W + LEGEND_WIDTH and height H (the side panel holds a key).
    """
    base = _display_rgb(photo)
    lines = cv2.dilate(maps.texture["wrinkles"].astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    base[lines] = _LINE_COLOUR
    for r, c in np.argwhere(maps.texture["pores"]):
        cv2.circle(base, (int(c), int(r)), 3, _PORE_COLOUR, 1, cv2.LINE_AA)
    base = draw_region_outlines(base, masks, thickness=1)
    key = np.full((base.shape[0], LEGEND_WIDTH, 3), 24, np.uint8)
    cv2.line(key, (8, 30), (30, 30), _LINE_COLOUR, 2)
    cv2.putText(key, "lines", (36, 35), _FONT, 0.5, _TEXT, 1, cv2.LINE_AA)
    cv2.circle(key, (19, 60), 4, _PORE_COLOUR, 1, cv2.LINE_AA)
    cv2.putText(key, "pores", (36, 65), _FONT, 0.5, _TEXT, 1, cv2.LINE_AA)
    return encode_png(_with_legend(base, key))


def regions_overlay(photo: np.ndarray, masks: Mapping[str, np.ndarray]) -> bytes:
    """Region outlines and names over the photo (PNG, same size as the photo)."""
    return encode_png(draw_region_outlines(_display_rgb(photo), masks))


def _pixels(image) -> np.ndarray:
    """The image array of an ndarray or of an object with an ``rgb`` array (a canonical face)."""
    return image if isinstance(image, np.ndarray) else np.asarray(image.rgb)


def render_all(
    canonical,
    linear: np.ndarray,
    masks: Mapping[str, np.ndarray],
    maps: MeasureMaps | None = None,
    baseline_canonical=None,
) -> dict[str, bytes]:
    """All overlays of one analysed face.

    Parameters
    ----------
    canonical : ndarray uint8 HxWx3 sRGB, or an object with such an ``rgb`` attribute
        (e.g. ``imaging.align.CanonicalFace``); shown as the photo under the maps
    linear : ndarray float32 HxWx3, the colour-corrected linear image that was measured
    masks : region masks (bool HxW by name, with ``skin``)
    maps : MeasureMaps, optional; computed from ``linear`` when omitted
    baseline_canonical : same kinds as ``canonical``, optional; adds ``before_after``

    Returns
    -------
    dict of PNG bytes: ``redness``, ``pigment_spots``, ``wrinkles``, ``regions`` and, with a
    baseline, ``before_after`` (baseline left, this photo right, same regions drawn).
    """
    from imaging.geometry import CANONICAL_PX_PER_MM, SKIN_MASK_NAME
    from imaging.measures import compute_maps

    photo = _pixels(canonical)
    if maps is None:
        maps = compute_maps(linear, np.asarray(masks[SKIN_MASK_NAME], bool), CANONICAL_PX_PER_MM)
    out = {
        "redness": redness_overlay(photo, maps, masks),
        "pigment_spots": pigment_overlay(photo, maps, masks),
        "wrinkles": wrinkle_overlay(photo, maps, masks),
        "regions": regions_overlay(photo, masks),
    }
    if baseline_canonical is not None:
        out["before_after"] = before_after_pair(_pixels(baseline_canonical), photo, masks)
    return out


def before_after_pair(
    baseline_canonical: np.ndarray,
    follow_canonical: np.ndarray,
    masks: Mapping[str, np.ndarray],
    labels: tuple[str, str] = ("Baseline", "Follow-up"),
    gap_px: int = 8,
) -> bytes:
    """Baseline and follow-up canonical photos side by side with the same regions drawn.

    Parameters
    ----------
    baseline_canonical, follow_canonical : ndarray, HxWx3 (uint8 sRGB or float32 linear),
        same size; the follow-up already registered to the baseline's canonical frame
    masks : region masks of the BASELINE, drawn identically on both so the same skin is
        compared
    labels : captions drawn at the top of each half
    gap_px : dark gap between the halves

    Returns
    -------
    bytes, PNG of width 2 W + gap_px and height H.

    Raises
    ------
    ValueError if the two images differ in size.
    """
    left = _display_rgb(baseline_canonical)
    right = _display_rgb(follow_canonical)
    if left.shape != right.shape:
        raise ValueError("before/after images must have the same canonical size")
    halves = []
    for image, label in zip((left, right), labels):
        drawn = draw_region_outlines(image, masks)
        cv2.rectangle(drawn, (0, 0), (drawn.shape[1], 30), (0, 0, 0), -1)
        cv2.putText(drawn, label, (10, 22), _FONT, 0.7, _TEXT, 2, cv2.LINE_AA)
        halves.append(drawn)
    gap = np.full((left.shape[0], gap_px, 3), 24, np.uint8)
    return encode_png(np.hstack([halves[0], gap, halves[1]]))
