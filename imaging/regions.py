"""Skin regions in the canonical face frame.

Placement comes from templates in the canonical frame (eyes at (256, 384) and (512, 384),
IOD 256 px), placed below the eye line for this face's lips and chin (:class:`LowerFace`);
a follow-up registered to its baseline keeps the baseline's regions, so they cover the same
skin in every photo of a patient. Templates avoid the eyes, brows, lips and nostrils
of an average adult face; pixel tests then remove what a template cannot know about this
face (hair, beard, background, glare, a fuller lip or lower brow), conservatively, so that
the skin changes we measure (red patches, brown spots, fine lines) are kept:

- Hair, beard, background, clothing: colour far from the face's own skin, modelled on the
  central cheeks and nose bridge. Only deviations that do NOT look like skin changes count:
  more redness (a*) or more yellow/brown (b*) up to +20 units, and darkening up to 32 L*
  units are tolerated, and non-skin areas are removed only where they reach the template's
  edge (hair and beards grow in from outside; lesions sit inside).
- Specular glare: near-white, low-saturation pixels, anywhere.
- Eyes and brows: template ellipses, plus dark pixels in a margin around them.
- Lips: template ellipse, plus pixels much redder than skin in a margin around it.
- Nostrils: dark pixels under the nose tip.
- Pixels that came from outside the photo.

Regions (subject's left/right; the subject's left cheek is on the image's right):

``forehead``     between the brows' upper edge and ~0.95 IOD above the eye line, from above
                 the middle of one eye to above the middle of the other (frontal bone, glabella
                 excluded below the brow line).
``right_cheek``  the subject's right malar/buccal area: below the lower eyelid, lateral to the
                 nose and nasolabial fold, above the mouth corner, medial to the face edge.
``left_cheek``   mirror image of ``right_cheek`` about the face midline.
``nose``         nasal dorsum and tip, from just below the eye line to above the nostrils.
``chin``         mental region between the lower lip and the chin's lower edge.
``skin``         union of the five.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.catalogue import REGION_NAMES
from imaging.colour_space import optical_density, srgb_luminance
from imaging.geometry import CANONICAL_EYES, CANONICAL_SIZE, SKIN_MASK_NAME
from imaging.masks import masked_gaussian, robust_sd

import cv2  # noqa: E402

#: The face the templates below are drawn on (canonical y px at scale 1, :class:`LowerFace`): its
#: mouth centre (closed, 0.98 IOD below the eye line), the lower lip's lower edge (where the chin
#: template starts) and the chin's tip (21 px below the chin template's lower edge).
TEMPLATE_MOUTH_Y = 636.0
TEMPLATE_LIP_EDGE_Y = 700.0
TEMPLATE_CHIN_TIP_Y = 827.0
# Templates in canonical px at scale 1 (x, y). Right cheek is on the image's left.
_RIGHT_CHEEK = [(152, 440), (300, 440), (318, 498), (302, 556), (256, 598), (176, 600), (142, 522)]
REGION_TEMPLATES: dict[str, list[tuple[float, float]]] = {
    "forehead": [(232, 282), (330, 292), (384, 300), (438, 292), (536, 282), (560, 214), (504, 156),
                 (384, 138), (264, 156), (208, 214)],
    "right_cheek": _RIGHT_CHEEK,
    "left_cheek": [(768 - x, y) for x, y in _RIGHT_CHEEK],
    "nose": [(360, 404), (408, 404), (420, 470), (432, 522), (384, 536), (336, 522), (348, 470)],
    "chin": [(300, 712), (350, 700), (418, 700), (468, 712), (482, 760), (440, 796), (384, 806),
             (328, 796), (286, 760)],
}
# Feature zones (centre, semi-axes) in canonical px at scale 1.
_EYE_ZONES = [((256, 384), (84, 42)), ((512, 384), (84, 42))]
_BROW_ZONES = [((250, 310), (96, 30)), ((518, 310), (96, 30))]
_MOUTH_ZONE = ((384, TEMPLATE_MOUTH_Y), (138, 62))
_NOSTRIL_BOX = ((322, 522), (446, 580))
# Core skin used to model this face's skin colour (cheek centres and nose bridge).
_SKIN_SAMPLE_BOXES = [((196, 470), (272, 560)), ((496, 470), (572, 560)), ((368, 420), (400, 480))]

#: Tolerated skin changes when deciding "not skin" (CIELAB units): more red, more yellow/brown,
#: darker (pigment); beyond these a pixel is hair/beard/background if it also touches the edge.
TOLERATED_A_INCREASE = 20.0
TOLERATED_B_INCREASE = 20.0
TOLERATED_L_DECREASE = 32.0
#: Stricter darkening limit (L* units) in the forehead, where fringe hair meets skin.
HAIRLINE_L_DECREASE = 20.0
#: Chroma distance (robust z units) above which a pixel's colour is not this face's skin.
NON_SKIN_CHROMA_Z = 4.0
#: Glare: near-white and unsaturated (sRGB uint8 / HSV saturation 0-1).
GLARE_MIN_CHANNEL = 235
GLARE_MAX_SATURATION = 0.2

#: Limits of :attr:`LowerFace.stretch`. On the real-face set the upper lip sits 0.90-1.24 IOD below the
#: eye line; a mouth placed beyond these limits was misplaced, not the face unusual, and the templates
#: are then left as drawn.
LOWER_FACE_STRETCH_LIMITS = (0.8, 1.4)
#: Largest inner-lip gap the lip zone grows by (canonical px at scale 1; 0.5 IOD: a wide-open mouth).
MAX_MOUTH_GAP = 128.0
#: The chin region's height relative to the template's (a chin landmark misplaced by the mesh can
#: neither collapse the region nor send it down the neck).
CHIN_HEIGHT_LIMITS = (0.5, 2.0)
_EYE_LINE_Y = CANONICAL_EYES[0][1]
#: The chin template's top and bottom y (canonical px at scale 1).
_CHIN_TEMPLATE_SPAN = (min(y for _, y in REGION_TEMPLATES["chin"]), max(y for _, y in REGION_TEMPLATES["chin"]))


@dataclass(frozen=True)
class LowerFace:
    """Where a face's lips and chin are in the canonical frame (y px at scale 1): the upper and lower
    inner lip (equal when the mouth is closed), the lower lip's lower edge and the chin's tip.

    The region templates are drawn for one face (the template face: :data:`TEMPLATE_LOWER_FACE`);
    the eye-to-mouth distance varies by a third between adults (the upper lip 0.90-1.24 IOD below
    the eye line on the face set), and templates fixed at the template face's put lower lip inside
    the chin region of 15 of the set's 33 faces (more than 5 % of the region; all of it on a talking
    face). So below the eye line the templates follow this face:

    - cheeks, nose, nostrils (and the skin sample under them) are stretched vertically about the eye
      line by :attr:`stretch`, the upper lip's distance below it relative to the template face's:
      they lie between the eyes and the upper lip, which opening the mouth does not move;
    - the lip zone is centred between the inner lips and grown by half their gap;
    - the chin spans from the lower lip's edge to the chin's tip (less the template's margin above
      the tip), as on the template face: it hangs from the jaw, which opens with the mouth.
    """

    upper_y: float = TEMPLATE_MOUTH_Y
    lower_y: float = TEMPLATE_MOUTH_Y
    lip_edge_y: float = TEMPLATE_LIP_EDGE_Y
    chin_tip_y: float = TEMPLATE_CHIN_TIP_Y

    @classmethod
    def of(cls, canonical) -> "LowerFace":
        """The lower face of a :class:`imaging.align.CanonicalFace` (its ``mouth``, ``mouth_gap``,
        ``lower_lip`` and ``chin``; see :meth:`at`)."""
        def y(name):
            point = getattr(canonical, name, None)
            return None if point is None else point[1]

        return cls.at(y("mouth"), getattr(canonical, "mouth_gap", None), y("lower_lip"), y("chin"))

    @classmethod
    def at(cls, mouth_y: float | None, gap: float | None = 0.0, lip_edge_y: float | None = None,
           chin_tip_y: float | None = None) -> "LowerFace":
        """The lower face around a mouth centre ``mouth_y`` with inner-lip gap ``gap`` (canonical px at
        scale 1; a missing gap reads closed). The template face's when the
        mouth is unknown or misplaced (stretch outside LOWER_FACE_STRETCH_LIMITS). Without the lower
        lip's edge or the chin's tip (a geometry stored before 2026.12.8), they are placed as on the
        template face: the edge as far below the lower inner lip, the tip stretched as the mid-face."""
        def known(v):
            return v is not None and np.isfinite(v)

        if not known(mouth_y):
            return cls()
        gap = max(0.0, float(gap)) if known(gap) else 0.0
        upper, lower = float(mouth_y) - gap / 2, float(mouth_y) + gap / 2
        stretch = (upper - _EYE_LINE_Y) / (TEMPLATE_MOUTH_Y - _EYE_LINE_Y)
        if not LOWER_FACE_STRETCH_LIMITS[0] <= stretch <= LOWER_FACE_STRETCH_LIMITS[1]:
            return cls()
        edge = float(lip_edge_y) if known(lip_edge_y) else lower + TEMPLATE_LIP_EDGE_Y - TEMPLATE_MOUTH_Y
        tip = float(chin_tip_y) if known(chin_tip_y) else _EYE_LINE_Y + (TEMPLATE_CHIN_TIP_Y - _EYE_LINE_Y) * stretch
        return cls(upper, lower, edge, tip)

    @property
    def stretch(self) -> float:
        """(upper lip - eye line) / (TEMPLATE_MOUTH_Y - eye line): the stretch of the mid-face templates."""
        return (self.upper_y - _EYE_LINE_Y) / (TEMPLATE_MOUTH_Y - _EYE_LINE_Y)

    def mid_face_y(self, y):
        """Canonical y (scale 1) of a mid-face template point: stretched about the eye line below it."""
        y = np.asarray(y, np.float64)
        return np.where(y > _EYE_LINE_Y, _EYE_LINE_Y + (y - _EYE_LINE_Y) * self.stretch, y)

    def chin_y(self, y):
        """Canonical y (scale 1) of a chin template point: the template's span from the lower lip's
        edge to above the chin's tip mapped onto this face's (its height kept within
        CHIN_HEIGHT_LIMITS of the template's)."""
        top, bottom = _CHIN_TEMPLATE_SPAN
        height = np.clip(self.chin_tip_y - (TEMPLATE_CHIN_TIP_Y - bottom) - self.lip_edge_y,
                         *(limit * (bottom - top) for limit in CHIN_HEIGHT_LIMITS))
        return self.lip_edge_y + (np.asarray(y, np.float64) - top) * height / (bottom - top)

    def mouth_zone(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The lip zone (centre, semi-axes) for these lips: grown by half their gap, at most
        MAX_MOUTH_GAP / 2."""
        (cx, _), (ax, ay) = _MOUTH_ZONE
        grow = min(self.lower_y - self.upper_y, MAX_MOUTH_GAP) / 2
        return (cx, (self.upper_y + self.lower_y) / 2), (ax, ay + grow)

    def boxes(self, boxes):
        """Mid-face boxes ((x0, y0), (x1, y1)) with their y stretched (:meth:`mid_face_y`)."""
        return [((x0, float(self.mid_face_y(y0))), (x1, float(self.mid_face_y(y1)))) for (x0, y0), (x1, y1) in boxes]


TEMPLATE_LOWER_FACE = LowerFace()


def region_template(name: str, face: LowerFace = TEMPLATE_LOWER_FACE) -> np.ndarray:
    """A region's template polygon placed for a face's lower face (see :class:`LowerFace`): float64
    (N, 2) of (x, y), canonical px at scale 1."""
    points = np.asarray(REGION_TEMPLATES[name], np.float64)
    place = face.chin_y if name == "chin" else face.mid_face_y
    return np.column_stack([points[:, 0], place(points[:, 1])])


def _scaled_polygon(points, scale: float) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * scale).astype(np.int32)


def template_mask(name: str, shape: tuple[int, int], scale: float = 1.0,
                  face: LowerFace = TEMPLATE_LOWER_FACE) -> np.ndarray:
    """Bool mask of a region template (no pixel tests) at a canonical scale.

    Parameters
    ----------
    name : one of REGION_NAMES
    shape : (height, width) of the canonical image
    scale : canonical output scale (1.0 = 768x1024)
    face : the face's lower face (:meth:`LowerFace.of`); the template face's by default
    """
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [_scaled_polygon(region_template(name, face), scale)], 1)
    return mask.astype(bool)


def _ellipse_mask(shape, zones, scale: float, grow: float = 1.0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for (cx, cy), (ax, ay) in zones:
        cv2.ellipse(mask, (round(cx * scale), round(cy * scale)),
                    (max(1, round(ax * scale * grow)), max(1, round(ay * scale * grow))), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def _box_mask(shape, boxes, scale: float) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for (x0, y0), (x1, y1) in boxes:
        mask[round(y0 * scale) : round(y1 * scale), round(x0 * scale) : round(x1 * scale)] = True
    return mask


def canonical_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of uint8 sRGB: float32 HxWx3 with L* in 0..100 and a*, b* in real units."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def specular_mask(rgb: np.ndarray) -> np.ndarray:
    """Bool mask of specular glare: near-white (min channel >= 235) and unsaturated.

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3 sRGB
    """
    # OpenCV HSV (uint8): V = max channel, S = 255 (max - min) / max; far faster than
    # numpy reductions over the channel axis.
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    value = hsv[..., 2].astype(np.float32)
    saturation = hsv[..., 1].astype(np.float32) / 255.0
    low = value * (1.0 - saturation)
    return (low >= GLARE_MIN_CHANNEL - 0.5) & (saturation <= GLARE_MAX_SATURATION)


def skin_reference(lab: np.ndarray, valid: np.ndarray, scale: float,
                   face: LowerFace = TEMPLATE_LOWER_FACE) -> dict[str, float]:
    """Robust colour statistics of this face's central skin (cheek centres, nose bridge, placed for
    ``face``: :class:`LowerFace`).

    Returns
    -------
    dict with ``L`` (80th percentile), ``a``, ``b`` (30th percentiles) and ``sa``, ``sb`` (robust std
    of a*, b*, floored at 3 units), CIELAB units.
    """
    sample = _box_mask(valid.shape, face.boxes(_SKIN_SAMPLE_BOXES), scale) & valid
    if sample.sum() < 20:
        sample = valid
    values = lab[sample]
    spread = robust_sd(values, axis=0)
    # Percentiles away from the direction measured changes move skin (darker, redder,
    # browner), so a red patch or pigment covering part of the sample boxes does not shift
    # the reference: L* at the 80th, a* and b* at the 30th percentile.
    light = np.percentile(values[:, 0], 80)
    low = np.percentile(values, 30, axis=0)
    return {"L": float(light), "a": float(low[1]), "b": float(low[2]),
            "sa": float(max(3.0, spread[1])), "sb": float(max(3.0, spread[2]))}


def non_skin_mask(lab: np.ndarray, reference: dict[str, float], use_lightness: bool = True) -> np.ndarray:
    """Pixels whose colour is not this face's skin, tolerating redness/pigment changes.

    A pixel is non-skin when its chroma distance (robust z units, after forgiving up to
    +20 a* and +20 b*) exceeds 4, or when it is more than 32 L* darker than the skin
    reference (dark hair, beard stubble, shadowed background).
    """
    da = lab[..., 1] - reference["a"]
    db = lab[..., 2] - reference["b"]
    da = np.where((da > 0) & (da < TOLERATED_A_INCREASE), 0.0, np.where(da >= TOLERATED_A_INCREASE, da - TOLERATED_A_INCREASE, da))
    db = np.where((db > 0) & (db < TOLERATED_B_INCREASE), 0.0, np.where(db >= TOLERATED_B_INCREASE, db - TOLERATED_B_INCREASE, db))
    z = np.sqrt((da / reference["sa"]) ** 2 + (db / reference["sb"]) ** 2)
    if not use_lightness:
        return z > NON_SKIN_CHROMA_Z
    return (z > NON_SKIN_CHROMA_Z) | (lab[..., 0] < reference["L"] - TOLERATED_L_DECREASE)


def _edge_connected(mask: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Parts of ``mask`` inside ``template`` that are connected to the template's outside."""
    inside = mask & template
    border = template & ~cv2.erode(template.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    seeds = inside & border
    if not seeds.any():
        return np.zeros_like(mask)
    count, labels = cv2.connectedComponents(inside.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[seeds])
    touching = touching[touching > 0]
    return np.isin(labels, touching)


def _drop_islands(mask: np.ndarray, min_fraction: float = 0.25) -> np.ndarray:
    """Keep connected parts of at least ``min_fraction`` of the largest part's area.

    Skin left between strands of hair is not a reliable measurement area; holes (excluded
    glare) inside a region are unaffected.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= min_fraction * areas.max()) + 1
    return np.isin(labels, keep)


def region_masks(canonical) -> dict[str, np.ndarray]:
    """Masks of the five skin regions and their union in a canonical face.

    Parameters
    ----------
    canonical : imaging.align.CanonicalFace
        Uses ``rgb`` (uint8 sRGB), ``valid``, ``scale`` and its lower face's landmarks (the templates
        below the eye line follow them: :class:`LowerFace`).

    Returns
    -------
    dict[str, ndarray bool HxW]
        Keys ``forehead, left_cheek, right_cheek, nose, chin`` (see module docstring) and
        ``skin`` (their union), all at the canonical image's size.
    """
    rgb = canonical.rgb
    scale = float(getattr(canonical, "scale", 1.0))
    shape = rgb.shape[:2]
    valid = canonical.valid.astype(bool)
    # Drop a thin rim of valid pixels: bicubic interpolation at the photo edge mixes in black.
    rim = max(1, round(2 * scale))
    valid = cv2.erode(valid.astype(np.uint8), np.ones((2 * rim + 1, 2 * rim + 1), np.uint8)).astype(bool)
    face = LowerFace.of(canonical)
    lab = canonical_lab(rgb)
    reference = skin_reference(lab, valid, scale, face)
    kernel = np.ones((3, 3), np.uint8)

    glare = cv2.dilate(specular_mask(rgb).astype(np.uint8), kernel, iterations=max(1, round(2 * scale))).astype(bool)
    dark = lab[..., 0] < reference["L"] - 20.0
    eyes_brows = _ellipse_mask(shape, _EYE_ZONES + _BROW_ZONES, scale)
    eyes_brows |= dark & _ellipse_mask(shape, _EYE_ZONES + _BROW_ZONES, scale, grow=1.35)
    lip_zone = _ellipse_mask(shape, [face.mouth_zone()], scale)
    lip_zone |= (lab[..., 1] > reference["a"] + 8.0) & _ellipse_mask(shape, [face.mouth_zone()], scale, grow=1.3)
    nostrils = (lab[..., 0] < reference["L"] - 25.0) & _box_mask(shape, face.boxes([_NOSTRIL_BOX]), scale)
    nostrils = cv2.dilate(nostrils.astype(np.uint8), kernel, iterations=max(1, round(3 * scale))).astype(bool)
    # Remove speckle first (pores and freckles are not hair), keep only hair-sized structures.
    non_skin = non_skin_mask(lab, reference) & valid
    non_skin = cv2.morphologyEx(non_skin.astype(np.uint8), cv2.MORPH_OPEN, kernel, iterations=max(1, round(2 * scale))).astype(bool)

    # At the hairline a stricter lightness limit: fringe hair often shares skin's chroma, and
    # brighter strands would otherwise bridge into the forehead (edge-connected rule below
    # still protects spots and lines inside the forehead).
    hairline = non_skin | ((lab[..., 0] < reference["L"] - HAIRLINE_L_DECREASE) & valid)
    hairline = cv2.morphologyEx(hairline.astype(np.uint8), cv2.MORPH_OPEN, kernel, iterations=max(1, round(2 * scale))).astype(bool)

    always_excluded = ~valid | glare | eyes_brows | lip_zone | nostrils
    masks: dict[str, np.ndarray] = {}
    for name in REGION_NAMES:
        template = template_mask(name, shape, scale, face)
        # Work inside the template's bounding box (+1 px so its edge is seen): connected
        # components over the whole frame would dominate the run time.
        ys, xs = np.nonzero(template)
        box = (slice(max(ys.min() - 1, 0), ys.max() + 2), slice(max(xs.min() - 1, 0), xs.max() + 2))
        local = template[box]
        region = local & ~always_excluded[box]
        region &= ~_edge_connected((hairline if name == "forehead" else non_skin)[box], local)
        mask = np.zeros(shape, bool)
        mask[box] = _drop_islands(region)
        masks[name] = mask
    union = np.zeros(shape, bool)
    for name in REGION_NAMES:
        union |= masks[name]
    masks[SKIN_MASK_NAME] = union
    return masks


def region_outlines(masks: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Outer contours of each region mask, for drawing overlays.

    Returns
    -------
    dict[str, list of ndarray int32 (N, 2)]
        (x, y) px polygons in the masks' frame, largest first; empty list for an empty mask.
    """
    outlines = {}
    for name, mask in masks.items():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        outlines[name] = [c.reshape(-1, 2) for c in sorted(contours, key=cv2.contourArea, reverse=True)]
    return outlines


def template_coverage(canonical, name: str | None = None) -> float:
    """Fraction (0..1) of the region templates (all, or one) covered by valid photo pixels."""
    scale = float(getattr(canonical, "scale", 1.0))
    shape = canonical.valid.shape
    names = REGION_NAMES if name is None else (name,)
    template = np.zeros(shape, bool)
    for n in names:
        template |= template_mask(n, shape, scale, LowerFace.of(canonical))
    return float(canonical.valid[template].mean()) if template.any() else 0.0


assert CANONICAL_SIZE == (768, 1024)  # templates above are drawn for this frame


#: A follow-up pixel darker than the baseline's same pixel by this much (optical density of linear
#: luminance, averaged over OCCLUSION_SMOOTHING_MM, after matching the two photos' median skin:
#: 0.35 OD = x0.45 of the light) is something new in front of the skin: hair, a hand, a shadow.
#: A ratio of light holds on every skin type: the 25 L* used before 2026.12.6 (x0.33 on light skin)
#: needed x0.13 on dark skin, so dark hair over a type V-VI forehead stayed "skin". The study's
#: light from one side darkens the face by 0.26 OD from end to end, half of it either side of the median.
OCCLUSION_OD = 0.35
#: Averaging (Gaussian sigma, mm) of the darkening before OCCLUSION_OD: hair is strands, and per
#: pixel the lighter ones stayed under the threshold and the darker ones were too thin to survive
#: the speckle filter.
OCCLUSION_SMOOTHING_MM = 0.5
#: Margin (mm) left out around what occludes the skin.
OCCLUSION_MARGIN_MM = 1.0


def follow_up_masks(baseline_masks: dict[str, np.ndarray], baseline_rgb: np.ndarray, canonical) -> dict[str, np.ndarray]:
    """Region masks of a follow-up registered to its baseline: the baseline's skin, where still seen.

    A registered follow-up shows the same skin at the same canonical pixels, so its regions are
    the baseline's regions; re-deciding skin from the follow-up's own colours would make the
    measured area move with the light (a warm lamp makes the classifier eat into the cheeks).
    Pixels are dropped only for what is new in this photo: outside the photo, glare, or much
    darker than the baseline's pixel (:data:`OCCLUSION_OD`: hair fallen over the forehead, a hand,
    a cast shadow).

    Parameters
    ----------
    baseline_masks : dict from :func:`region_masks` of the baseline's canonical face
    baseline_rgb : ndarray uint8 HxWx3, the baseline's canonical sRGB image
    canonical : imaging.align.CanonicalFace of the follow-up, registered to the baseline

    Returns
    -------
    dict[str, ndarray bool HxW], the same keys as ``baseline_masks``.
    """
    rgb = canonical.rgb
    scale = float(getattr(canonical, "scale", 1.0))
    rim = max(1, round(2 * scale))
    valid = cv2.erode(canonical.valid.astype(np.uint8), np.ones((2 * rim + 1, 2 * rim + 1), np.uint8)).astype(bool)
    kernel = np.ones((3, 3), np.uint8)
    glare = cv2.dilate(specular_mask(rgb).astype(np.uint8), kernel, iterations=max(1, round(2 * scale))).astype(bool)
    skin = baseline_masks[SKIN_MASK_NAME]
    density = optical_density(srgb_luminance(rgb))
    base_density = optical_density(srgb_luminance(baseline_rgb))
    both = skin & valid
    offset = float(np.median(density[both] - base_density[both])) if both.any() else 0.0
    # Averaged over the baseline's skin in this photo only: the black outside the photo (OD 4) and
    # the baseline's brows, eyes and hair would otherwise spread into the skin next to them.
    darkening = masked_gaussian(density - base_density - offset, both, OCCLUSION_SMOOTHING_MM * canonical.px_per_mm)
    occluded = (darkening > OCCLUSION_OD) & both
    occluded = cv2.morphologyEx(occluded.astype(np.uint8), cv2.MORPH_OPEN, kernel,
                                iterations=max(1, round(2 * scale)))
    # Its edge too: strands part hair, part skin, and the shadow it casts, under the threshold.
    occluded = cv2.dilate(occluded, kernel, iterations=round(OCCLUSION_MARGIN_MM * canonical.px_per_mm)).astype(bool)
    keep = valid & ~glare & ~occluded
    masks = {name: baseline_masks[name] & keep for name in REGION_NAMES if name in baseline_masks}
    union = np.zeros(rgb.shape[:2], bool)
    for mask in masks.values():
        union |= mask
    masks[SKIN_MASK_NAME] = union
    return masks
