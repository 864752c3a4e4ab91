"""Photo quality gate: is this photo usable for measurement, and if not, what should the
patient do? Every check reports its value and threshold, pass or fail.

Lighting, exposure and glare are measured in the canonical frame at half scale (384x512,
IOD 128 px); blur and fine texture at the photo's own resolution (capped at IOD 128 px) in
units of the face's width, so values do not depend on the photo's pixel size. Problem codes
(stable, machine-readable) and their checks: ``python -m imaging.quality --table`` prints the
table the README carries (generated from :data:`THRESHOLDS` and :data:`CHECKS`).

With a ColorChecker in the frame (``correction``), the checks of the light's colour
(:data:`LIGHT_COLOUR_CHECKS`) judge the chart-corrected photo: a cast the chart corrects is no
reason to refuse. Exposure, clipping and evenness are still judged as captured: a chart
restores colour, not the signal lost to under-exposure or clipping, nor a shadow's noise.

Warnings (:attr:`QualityReport.warnings`) do not make a photo unusable: ``smoothing_filter``
(a beauty filter erased the skin's fine texture) leaves colour and lighting measurable but
texture not comparable (:attr:`QualityReport.texture_comparable` is False).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.catalogue import REGION_NAMES
from imaging.colour_space import srgb_luminance
from imaging.detail import FACE_WIDTH_IOD, PIXEL_BLUR_PX, face_blur_percent
from imaging.geometry import CANONICAL_IOD_PX

import cv2  # noqa: E402

#: Canonical scale at which the gate measures the face (IOD 128 px).
GATE_CANONICAL_SCALE = 0.5
#: Region brightness for lighting checks: this percentile of linear luminance over skin-
#: chroma pixels, so dark hair covering part of a region (a fringe) does not read as shadow.
LIGHT_PERCENTILE = 75
#: Long side the gate decodes at (JPEG DCT scaling gives 1/4 of a 4032 px photo).
GATE_DECODE_LONG_SIDE = 1000


#: Percentile of the photo's L* that judges exposure: the brightest things in a photo (eye
#: whites, teeth, highlights, white clothes or walls) show the light, whatever the skin's tone.
HIGHLIGHT_PERCENTILE = 99

#: Highlight chroma (CIELAB) up to which the light counts as white: then a face whose skin colour
#: is outside every skin type's (hue or chroma checks) is no skin (paint, a mask, a drawing), and
#: the gate answers ``no_face``, not ``coloured_lighting``. Real portraits of the set under white
#: light reach 7.8 (up to ~30 under tinted light, always with skin-coloured skin).
NEUTRAL_LIGHT_CHROMA = 12.0
#: Share of the brightest unclipped pixels that, when neutral (chroma <= NEUTRAL_LIGHT_CHROMA),
#: shows white light whatever the rest show (skin, when the white things clip). On the set's 33
#: portraits and their scenes under nine casts, no photo whose highlights read coloured (> 35, 96
#: photos) had more than 9 % of them neutral; javon_freeman_liberty's scene, a dark face exposed
#: for the face before a white wall that clips, has 34 % (19-35 % in its recaptures under ordinary
#: light). ``python -m bench.highlight_casts`` prints these figures.
NEUTRAL_HIGHLIGHT_SHARE = 0.15
#: Share of the coloured ones among those brightest pixels that must lie on the subject's head and
#: neck for them to count as lit skin (see :func:`highlight_chroma`).
HEAD_SHARE_OF_COLOURED_HIGHLIGHTS = 0.5
#: 95th percentile of a photo's CIELAB chroma from which it is a colour photo: black-and-white
#: photos (even with unequal channels) stay below ~4, colour photos of the set are >= 9.8.
COLOUR_PHOTO_CHROMA = 6.0

THRESHOLDS = {
    "face_score": 0.5,
    "face_width_fraction": 0.16,
    "face_outside_fraction": 0.03,
    "blur_percent_of_face_width": 0.44,
    "highlight_lightness_min": 64.0,
    "skin_lightness_min": 20.0,
    "skin_lightness_max": 90.0,
    "skin_clipped_fraction": 0.10,
    "left_right_light_ratio": 0.28,
    "top_bottom_light_ratio": 0.35,
    "skin_hue_deg": (-20.0, 75.0),
    "skin_chroma_min": 4.0,
    "highlight_chroma_max": 35.0,
    "glare_fraction": 0.03,
    "yaw_deg": 18.0,
    "pitch_deg": 25.0,
    "roll_deg": 15.0,
    "pose_change_deg": 10.0,
    "framing_scale_change": 0.30,
    "framing_offset": 0.12,
    "mouth_width_change": 0.12,
    "mouth_open_change": 0.10,
    "fine_texture_ratio": 0.75,
}

MESSAGES = {
    "no_face": "We couldn't find a face. Face the camera in good light with your whole face inside the oval.",
    "multiple_faces": "Only your face should be in the photo. Ask others to step out of the picture.",
    "face_too_small": "Move closer so your face fills the oval.",
    "face_cut_off": "Part of your face is outside the photo. Centre your face in the oval.",
    "blurred": "The photo is blurry. Hold the phone still, let it focus on your face, and try again.",
    "underexposed": "The photo is too dark. Face a window or a bright, even light.",
    "overexposed": "The photo is too bright. Move out of direct sunlight and turn off the flash.",
    "uneven_lighting": "Part of your face is in shadow. Face the light so it falls evenly on your face.",
    "coloured_lighting": "The light is strongly coloured. Use daylight or white light, not coloured lamps.",
    "glare": "There is shine on your skin. Pat your face dry and avoid flash or direct light.",
    "head_turned": "Look straight into the camera and keep your head level.",
    "pose_differs_from_baseline": "Hold your head as in your first photo: look straight into the camera, head level.",
    "framing_differs_from_baseline": "Hold the phone at the same distance and height as in your first photo, face inside the oval.",
    "expression_differs_from_baseline": "Keep a relaxed, neutral face as in your first photo: mouth closed, no smile.",
    "smoothing_filter": "Your camera smoothed your skin (beauty or portrait mode). Turn it off for skin-texture results.",
}

#: Codes that do not make a photo unusable (reported in :attr:`QualityReport.warnings`).
WARNING_CODES = frozenset({"smoothing_filter"})


@dataclass(frozen=True)
class CheckSpec:
    """What one check measures: the problem code it raises, its threshold's key in
    :data:`THRESHOLDS`, how the value is compared and a one-line description (README table)."""

    code: str
    threshold: str
    compare: str  # "at_least", "at_most" or "within"
    what: str


#: Every check, in report order (several checks may raise one code).
CHECKS = {
    "face_count": CheckSpec("multiple_faces", "", "at_most",
                            "faces at least half the subject's width (0 = none found: `no_face`)"),
    "face_score": CheckSpec("no_face", "face_score", "at_least",
                            "FaceMesh face-presence score (animals, drawings, objects score low)"),
    "face_width_fraction": CheckSpec("face_too_small", "face_width_fraction", "at_least",
                                     f"face width ({FACE_WIDTH_IOD} IOD) / photo's short side"),
    "face_outside_fraction": CheckSpec("face_cut_off", "face_outside_fraction", "at_most",
                                       "fraction of the cheek, nose and chin templates outside the photo (a "
                                       "tight crop may cut the top of the forehead)"),
    "blur_percent_of_face_width": CheckSpec(
        "blurred", "blur_percent_of_face_width", "at_most",
        f"Gaussian blur at the face's edges beyond the pixel grid ({PIXEL_BLUR_PX} px), % of the face width "
        f"({FACE_WIDTH_IOD} IOD; 0.5 % ~ 0.7 mm of skin)"),
    "highlight_lightness": CheckSpec("underexposed", "highlight_lightness_min", "at_least",
                                     f"L* of the photo's {HIGHLIGHT_PERCENTILE}th percentile (white at two stops "
                                     "under reads 57): judges the light, not the skin's tone"),
    "skin_lightness_low": CheckSpec("underexposed", "skin_lightness_min", "at_least",
                                    "median skin L* (only far below any skin type in usable light)"),
    "skin_lightness_high": CheckSpec("overexposed", "skin_lightness_max", "at_most", "median skin L*"),
    "skin_clipped_fraction": CheckSpec("overexposed", "skin_clipped_fraction", "at_most",
                                       "fraction of skin with R, G and B >= 250"),
    "left_right_light_ratio": CheckSpec("uneven_lighting", "left_right_light_ratio", "at_least",
                                        "darker / brighter cheek, linear light (75th percentile of skin pixels)"),
    "top_bottom_light_ratio": CheckSpec("uneven_lighting", "top_bottom_light_ratio", "at_least",
                                        "forehead vs cheeks, darker / brighter, linear light"),
    "skin_hue_deg": CheckSpec("coloured_lighting", "skin_hue_deg", "within",
                              "hue angle of cheek and nose skin, degrees (skin of every type lies within "
                              "~20-65 under white light; its chroma varies with skin type and is not judged); "
                              f"outside it under white light (`highlight_chroma` <= {NEUTRAL_LIGHT_CHROMA:g}) in a "
                              "colour photo of a well-exposed face facing the camera, the face is no skin (paint, "
                              "mask, drawing): `no_face`"),
    "skin_chroma": CheckSpec("coloured_lighting", "skin_chroma_min", "at_least",
                             "chroma of cheek and nose skin (below: no colour, e.g. a black-and-white photo; "
                             "in a colour photo under white light: `no_face`, as for the hue)"),
    "highlight_chroma": CheckSpec("coloured_lighting", "highlight_chroma_max", "at_most",
                                  "CIELAB chroma of the photo's brightest unclipped 3 % (eye whites, teeth, "
                                  "highlights, white things take the light's colour); when that is above the "
                                  f"limit, at least {NEUTRAL_HIGHLIGHT_SHARE * 100:g} % of them are neutral "
                                  f"(chroma <= {NEUTRAL_LIGHT_CHROMA:g}: white things stayed white) and at least "
                                  f"{HEAD_SHARE_OF_COLOURED_HIGHLIGHTS * 100:g} % of the coloured ones lie on the "
                                  "head and neck (lit skin, as of a dark face before a white wall that clips): "
                                  "the chroma of the neutral ones"),
    "glare_fraction": CheckSpec("glare", "glare_fraction", "at_most", "fraction of skin specular"),
    "yaw_deg": CheckSpec("head_turned", "yaw_deg", "at_most",
                         "abs(yaw) from the 3-D face mesh, degrees (the mesh reads ~26 for a ~35 degree turn)"),
    "pitch_deg": CheckSpec("head_turned", "pitch_deg", "at_most", "abs(pitch) from the 3-D face mesh, degrees"),
    "roll_deg": CheckSpec("head_turned", "roll_deg", "at_most", "abs(roll) of the eye line, degrees"),
    "pose_change_deg": CheckSpec("pose_differs_from_baseline", "pose_change_deg", "at_most",
                                 "largest yaw/roll/pitch change vs the baseline, degrees"),
    "framing_scale_change": CheckSpec("framing_differs_from_baseline", "framing_scale_change", "at_most",
                                      "relative change of IOD / short side vs the baseline"),
    "framing_offset": CheckSpec("framing_differs_from_baseline", "framing_offset", "at_most",
                                "eye-midpoint move vs the baseline, fraction of the frame"),
    "mouth_width_change": CheckSpec("expression_differs_from_baseline", "mouth_width_change", "at_most",
                                    "abs. change of mouth-corner distance / IOD vs the baseline (a smile widens it)"),
    "mouth_open_change": CheckSpec("expression_differs_from_baseline", "mouth_open_change", "at_most",
                                   "abs. change of inner-lip gap / IOD vs the baseline (a laugh opens it)"),
    "fine_texture_ratio": CheckSpec("smoothing_filter", "fine_texture_ratio", "at_least",
                                    "fine skin texture / the baseline's (robust SD of the finest band of log "
                                    "luminance on cheeks and forehead; warning only: texture is then not measured)"),
}

_CHECK_CODES = {name: spec.code for name, spec in CHECKS.items()}


@dataclass(frozen=True)
class Check:
    """One measured quality criterion.

    Attributes
    ----------
    value : float
        Measured value (units in the check's name / module docstring).
    threshold : float or [float, float]
        Limit; a pair is an accepted [min, max] range.
    passed : bool
    code : str
        Problem code raised when it fails.
    """

    value: float
    threshold: float | tuple[float, float]
    passed: bool
    code: str


@dataclass(frozen=True)
class Problem:
    """A reason the photo cannot be used, for the patient and for machines."""

    code: str
    message: str
    value: float
    threshold: float | tuple[float, float]


@dataclass(frozen=True)
class QualityReport:
    """Outcome of the quality gate.

    Attributes
    ----------
    ok : bool
        True when there are no problems.
    problems : list[Problem]
        At most one per code, in a fixed order (most fundamental first).
    checks : dict[str, Check]
        Every check that could be evaluated, passed or not.
    warnings : list[Problem]
        Failed checks that leave the photo usable (:data:`WARNING_CODES`), e.g.
        ``smoothing_filter``.
    """

    ok: bool
    problems: list[Problem] = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def texture_comparable(self) -> bool:
        """False when a smoothing filter erased the fine texture (texture is then not measured)."""
        return "smoothing_filter" not in self.warning_codes

    @property
    def warning_codes(self) -> list[str]:
        """Warning codes, in report order."""
        return [p.code for p in self.warnings]

    @property
    def codes(self) -> list[str]:
        """Problem codes, in report order."""
        return [p.code for p in self.problems]

    def to_dict(self) -> dict:
        """JSON-ready dict: ``{"ok", "problems": [{code, message, value, threshold}], "warnings": [...],
        "texture_comparable", "checks"}``."""
        def plain(threshold):
            return list(threshold) if isinstance(threshold, tuple) else threshold

        return {
            "ok": self.ok,
            "problems": [{**asdict(p), "threshold": plain(p.threshold)} for p in self.problems],
            "warnings": [{**asdict(p), "threshold": plain(p.threshold)} for p in self.warnings],
            "texture_comparable": self.texture_comparable,
            "checks": {k: {**asdict(c), "threshold": plain(c.threshold)} for k, c in self.checks.items()},
        }


def _check(name: str, value: float) -> Check:
    spec = CHECKS[name]
    limit = THRESHOLDS[spec.threshold]
    value = float(value)
    if spec.compare == "at_least":
        passed = value >= limit
    elif spec.compare == "at_most":
        passed = value <= limit
    else:
        passed = limit[0] <= value <= limit[1]
    return Check(value, limit, bool(passed), spec.code)



def sharpness(grey: np.ndarray, mask: np.ndarray) -> float:
    """Normalised high-frequency energy of a face (dimensionless, higher is sharper).

    Mean absolute Laplacian (3x3) over ``mask`` divided by the mean absolute deviation of
    the 5x5-smoothed grey over ``mask``: the ratio of fine detail to overall contrast, so it
    does not change with exposure or contrast. Measured in the canonical frame at half
    scale, so it does not depend on photo size.

    Parameters
    ----------
    grey : ndarray uint8 or float32 HxW (canonical, IOD 128 px)
    mask : ndarray bool HxW
    """
    g = grey.astype(np.float32)
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=3))
    smooth = cv2.GaussianBlur(g, (5, 5), 0)
    values = smooth[mask]
    contrast = float(np.mean(np.abs(values - np.median(values)))) if values.size else 0.0
    return float(lap[mask].mean() / max(contrast, 1.0)) if values.size else 0.0


def _sample(rgb: np.ndarray) -> np.ndarray:
    """Every n-th pixel, n such that about 500 px remain along the long side (percentiles of a
    whole photo need no more)."""
    step = max(1, max(rgb.shape[:2]) // 500)
    return rgb[::step, ::step]


def highlight_lightness(rgb: np.ndarray) -> float:
    """CIE L* of the :data:`HIGHLIGHT_PERCENTILE` th percentile of the photo's luminance."""
    luminance = srgb_luminance(_sample(rgb))
    y = float(np.percentile(luminance, HIGHLIGHT_PERCENTILE))
    return float(116.0 * np.cbrt(y) - 16.0) if y > 0.008856 else float(903.3 * y)


#: Checks of exposure: colour is judged as "no skin" only on a face that is neither dark nor clipped
#: (white paper is brighter than skin, yet keeps its colour).
_EXPOSURE_CHECKS = ("highlight_lightness", "skin_lightness_low", "skin_clipped_fraction")


def photo_chroma(rgb: np.ndarray) -> float:
    """95th percentile of CIELAB chroma over the photo (sampled like :func:`highlight_chroma`)."""
    small = _sample(rgb)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    return float(np.percentile(np.hypot(lab[:, 1], lab[:, 2]), 95))


def _no_skin(checks: dict[str, Check], rgb: np.ndarray) -> bool:
    """Whether the "face" has no skin colour under white light in a colour photo (see
    :data:`NEUTRAL_LIGHT_CHROMA`)."""
    colour_failed = any(name in checks and not checks[name].passed for name in ("skin_hue_deg", "skin_chroma"))
    light = checks.get("highlight_chroma")
    return (colour_failed and light is not None and light.value <= NEUTRAL_LIGHT_CHROMA
            and photo_chroma(rgb) >= COLOUR_PHOTO_CHROMA)


def highlight_chroma(rgb: np.ndarray, head: tuple[float, float, float, float] | None = None) -> float:
    """CIELAB chroma (median a*, b*) of the brightest 3 % of the photo's unclipped pixels.

    The brightest things in a photo (eye whites, teeth, specular highlights, white clothes or
    walls) take the colour of the light, whatever the skin's tone: a strongly coloured light
    makes them coloured. Clipped pixels (any channel >= 250) are left out: they lost the colour.
    When the white things clip, the brightest unclipped pixels can be mostly lit skin (a dark face
    exposed for the face before a white wall) and read coloured under white light. So when they
    read coloured (above the check's limit) while at least :data:`NEUTRAL_HIGHLIGHT_SHARE` of them
    are neutral (chroma <= :data:`NEUTRAL_LIGHT_CHROMA`: white things that stayed white) and the
    coloured ones are skin (at least :data:`HEAD_SHARE_OF_COLOURED_HIGHLIGHTS` of them on the
    subject's head and neck, ``head``), the neutral ones give the value. Coloured highlights
    elsewhere (a wall under a lamp while daylight keeps other things white) keep the value of all
    of them, and so does a reading within the limit: a blue light can make skin itself neutral,
    and a tinted light must not read as white (nor a painted face as ``no_face``).

    Parameters
    ----------
    rgb : (H, W, 3) uint8 sRGB
    head : (x0, y0, x1, y1) or None
        Where the subject's head and neck are, as fractions of the photo's width and height
        (:func:`head_area`); None: no fallback.

    Returns
    -------
    float, CIELAB chroma >= 0 (0 when fewer than 100 sampled pixels are unclipped).
    """
    highlights = brightest_unclipped(rgb)
    if highlights is None:
        return 0.0
    bright, (x, y) = highlights
    neutral = is_neutral(bright)
    chroma = float(np.hypot(np.median(bright[:, 1]), np.median(bright[:, 2])))
    if head is None or chroma <= THRESHOLDS["highlight_chroma_max"] or neutral.mean() < NEUTRAL_HIGHLIGHT_SHARE:
        return chroma
    on_head = (x >= head[0]) & (x <= head[2]) & (y >= head[1]) & (y <= head[3])
    if on_head[~neutral].mean() < HEAD_SHARE_OF_COLOURED_HIGHLIGHTS:
        return chroma
    return float(np.hypot(np.median(bright[neutral, 1]), np.median(bright[neutral, 2])))


def is_neutral(lab: np.ndarray) -> np.ndarray:
    """Whether each CIELAB colour of ``lab`` (..., 3) is neutral: chroma <= :data:`NEUTRAL_LIGHT_CHROMA`."""
    return np.hypot(lab[..., 1], lab[..., 2]) <= NEUTRAL_LIGHT_CHROMA


def brightest_unclipped(rgb: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
    """The brightest 3 % (by L*) of the photo's unclipped pixels (sampled as :func:`_sample`).

    Returns
    -------
    (lab, (x, y)) or None
        lab: (N, 3) float32 CIELAB; x, y: their positions as fractions of the photo's width and
        height. None when fewer than 100 sampled pixels are unclipped (any channel >= 250 is clipped).
    """
    small = _sample(rgb)
    unclipped = small.reshape(-1, 3).max(axis=1) < 250
    if unclipped.sum() < 100:
        return None
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)[unclipped]
    is_bright = lab[:, 0] >= np.percentile(lab[:, 0], 97)
    rows, cols = np.divmod(np.flatnonzero(unclipped)[is_bright], small.shape[1])
    return lab[is_bright], ((cols + 0.5) / small.shape[1], (rows + 0.5) / small.shape[0])


def head_area(geometry, width: int, height: int) -> tuple[float, float, float, float]:
    """The subject's head and neck, (x0, y0, x1, y1) as fractions of the photo's width and height:
    the face box grown by half its width to each side, half its height up and one height down."""
    x, y, w, h = geometry.box
    return ((x - 0.5 * w) / width, (y - 0.5 * h) / height, (x + 1.5 * w) / width, (y + 2.0 * h) / height)


#: Checks of the light's colour, judged on the chart-corrected photo when a ColorChecker was found.
LIGHT_COLOUR_CHECKS = ("skin_hue_deg", "skin_chroma", "highlight_chroma")


def chart_corrected(rgb: np.ndarray, correction) -> np.ndarray:
    """uint8 sRGB of ``rgb`` through a ColorChecker correction (:mod:`imaging.colour`)."""
    from imaging.colour import apply_colour_correction
    from imaging.colour_space import linear_to_srgb_uint8

    return linear_to_srgb_uint8(apply_colour_correction(rgb, correction))


def assess_quality(decoded, geometry, baseline_geometry=None, correction=None) -> QualityReport:
    """Run every quality check on a decoded photo.

    Parameters
    ----------
    decoded : imaging.decode.DecodedImage
        Ideally decoded with a long side of ~1000 px (see :func:`quality_gate`).
    geometry : imaging.face.FaceGeometry or None
        From :func:`imaging.face.detect_face` on ``decoded.rgb``; None means no face.
    baseline_geometry : imaging.face.FaceGeometry or None
        The patient's baseline photo geometry (any image size: compared in relative units).
    correction : imaging.colour.ColourCorrection or None
        The photo's colour correction; when its reference is a ColorChecker, the checks of the
        light's colour (:data:`LIGHT_COLOUR_CHECKS`) judge the corrected photo.

    Returns
    -------
    QualityReport
    """
    from imaging.align import to_canonical
    from imaging.regions import LowerFace, canonical_lab, non_skin_mask, skin_reference, specular_mask, template_mask

    rgb = decoded.rgb
    checks: dict[str, Check] = {}
    if geometry is None:
        checks["face_count"] = Check(0.0, 1.0, False, "no_face")
        return _report(checks)
    checks["face_count"] = Check(float(geometry.n_faces), 1.0, geometry.n_faces <= 1, "multiple_faces")
    if np.isfinite(geometry.face_score):
        checks["face_score"] = _check("face_score", geometry.face_score)
        if not checks["face_score"].passed:
            # Not a face: nothing else about it means anything.
            return _report(checks)
    short_side = float(min(rgb.shape[:2]))
    # Face width from the IOD (the same for any detector's box convention).
    checks["face_width_fraction"] = _check("face_width_fraction", FACE_WIDTH_IOD * geometry.iod / short_side)

    canonical = to_canonical(rgb, geometry, scale=GATE_CANONICAL_SCALE)
    scale, face = canonical.scale, LowerFace.of(canonical)
    shape = canonical.valid.shape
    face_area = np.zeros(shape, bool)
    core = np.zeros(shape, bool)
    for name in REGION_NAMES:
        template = template_mask(name, shape, scale, face)
        face_area |= template
        if name != "forehead":
            core |= template
    outside = 1.0 - float(canonical.valid[core].mean())
    checks["face_outside_fraction"] = _check("face_outside_fraction", outside)

    checks["blur_percent_of_face_width"] = _check("blur_percent_of_face_width", face_blur_percent(rgb, geometry))

    skin = face_area & canonical.valid
    no_skin = False
    if skin.sum() >= 100:
        lab = canonical_lab(canonical.rgb)
        lightness = float(np.median(lab[..., 0][skin]))
        checks["highlight_lightness"] = _check("highlight_lightness", highlight_lightness(rgb))
        checks["skin_lightness_low"] = _check("skin_lightness_low", lightness)
        checks["skin_lightness_high"] = _check("skin_lightness_high", lightness)
        glare = specular_mask(canonical.rgb)
        # Clipped = all three channels near 255 (white): a saturated red channel alone is
        # normal for light skin in a bright, correctly exposed photo.
        clipped = float((canonical.rgb[skin].min(axis=1) >= 250).mean())
        checks["skin_clipped_fraction"] = _check("skin_clipped_fraction", clipped)
        luminance = srgb_luminance(canonical.rgb)

        # Only skin-coloured pixels (by chroma, so shadowed skin still counts): a fringe over
        # the forehead must not read as shadow.
        skin_like = ~non_skin_mask(lab, skin_reference(lab, canonical.valid, scale, face), use_lightness=False)

        def region_light(name: str) -> float:
            template = template_mask(name, shape, scale, face)
            m = template & canonical.valid & ~glare & skin_like
            return float(np.percentile(luminance[m], LIGHT_PERCENTILE)) if m.sum() >= max(20, 0.1 * template.sum()) else float("nan")

        right, left, forehead = region_light("right_cheek"), region_light("left_cheek"), region_light("forehead")
        if np.isfinite(right) and np.isfinite(left):
            lr = min(right, left) / max(right, left, 1e-6)
            checks["left_right_light_ratio"] = _check("left_right_light_ratio", lr)
            if np.isfinite(forehead):
                cheeks = (right + left) / 2
                tb = min(forehead, cheeks) / max(forehead, cheeks, 1e-6)
                checks["top_bottom_light_ratio"] = _check("top_bottom_light_ratio", tb)
        cheek_skin = (template_mask("right_cheek", shape, scale, face) | template_mask("left_cheek", shape, scale, face)
                      | template_mask("nose", shape, scale, face)) & canonical.valid & ~glare
        # The light's colour: on the chart-corrected photo when there is a chart (see module doc).
        charted = correction is not None and correction.reference == "colorchecker"
        light_lab = canonical_lab(chart_corrected(canonical.rgb, correction)) if charted else lab
        light_photo = chart_corrected(_sample(rgb), correction) if charted else rgb
        if cheek_skin.sum() >= 20:
            a = float(np.median(light_lab[..., 1][cheek_skin]))
            b = float(np.median(light_lab[..., 2][cheek_skin]))
            checks["skin_hue_deg"] = _check("skin_hue_deg", float(np.degrees(np.arctan2(b, a))))
            checks["skin_chroma"] = _check("skin_chroma", float(np.hypot(a, b)))
        head = head_area(geometry, rgb.shape[1], rgb.shape[0])
        checks["highlight_chroma"] = _check("highlight_chroma", highlight_chroma(light_photo, head))
        checks["glare_fraction"] = _check("glare_fraction", float(glare[skin].mean()))
        no_skin = _no_skin(checks, light_photo)

    checks["yaw_deg"] = _check("yaw_deg", abs(geometry.yaw_deg))
    checks["pitch_deg"] = _check("pitch_deg", abs(geometry.pitch_deg))
    checks["roll_deg"] = _check("roll_deg", abs(geometry.roll_deg))
    if no_skin and all(checks[k].passed for k in (*_EXPOSURE_CHECKS, "yaw_deg", "pitch_deg", "roll_deg")
                       if k in checks):
        # Well exposed (clipping and darkness bend colour) and facing the camera (so the cheek
        # templates lie on the face), with no skin colour under white light: not a face, and
        # nothing else about it means anything.
        face_checks = {k: checks[k] for k in ("face_count", "face_score") if k in checks}
        return _report({**face_checks, **{k: replace(checks[k], code="no_face")
                                          for k in ("skin_hue_deg", "skin_chroma") if k in checks}})

    if baseline_geometry is not None:
        _baseline_checks(checks, geometry, baseline_geometry, rgb.shape[1], rgb.shape[0])
    return _report(checks)


#: Nod read from eye-mouth foreshortening below which it is landmark noise (degrees): 20 degrees
#: is a 6 % change of the eye-mouth distance relative to the IOD.
FORESHORTENING_NOISE_DEG = 20.0


def pitch_change_deg(ratio: float, baseline_ratio: float) -> float:
    """Nod between two photos from eye-mouth/IOD foreshortening, degrees (>= 0)."""
    if not (np.isfinite(ratio) and np.isfinite(baseline_ratio)) or min(ratio, baseline_ratio) <= 0:
        return 0.0
    return float(np.degrees(np.arccos(min(ratio, baseline_ratio) / max(ratio, baseline_ratio))))


def _baseline_checks(checks: dict, geometry, baseline, width: int, height: int) -> None:
    # Pitch from the face mesh's 3D pose; the foreshortening of the eye-mouth distance
    # (pitch_change_deg) counts only beyond FORESHORTENING_NOISE_DEG: it reads a 2.5 % landmark
    # jitter as a 13 degree nod (arccos is steep near 1), which refused identical re-takes.
    pitch = abs(geometry.pitch_deg - baseline.pitch_deg) if np.isfinite(geometry.pitch_deg - baseline.pitch_deg) else 0.0
    foreshortening = pitch_change_deg(geometry.eye_mouth_ratio, baseline.eye_mouth_ratio)
    if foreshortening > FORESHORTENING_NOISE_DEG:
        pitch = max(pitch, foreshortening)
    change = max(abs(geometry.yaw_deg - baseline.yaw_deg), abs(geometry.roll_deg - baseline.roll_deg), pitch)
    checks["pose_change_deg"] = _check("pose_change_deg", change)
    base_w, base_h = baseline.image_size if baseline.image_size[0] else (width, height)
    size_now = geometry.iod / min(width, height)
    size_then = baseline.iod / min(base_w, base_h)
    checks["framing_scale_change"] = _check("framing_scale_change", abs(size_now / max(size_then, 1e-9) - 1.0))
    mx, my = geometry.eye_midpoint
    bx, by = baseline.eye_midpoint
    offset = float(np.hypot(mx / width - bx / base_w, my / height - by / base_h))
    checks["framing_offset"] = _check("framing_offset", offset)
    # Expression: only when both geometries carry the mouth measures (older baselines do not).
    for name, now, then in (("mouth_width_change", geometry.mouth_width_ratio, baseline.mouth_width_ratio),
                            ("mouth_open_change", geometry.mouth_open_ratio, baseline.mouth_open_ratio)):
        if np.isfinite(now) and np.isfinite(then):
            checks[name] = _check(name, abs(now - then))
    # Smoothing: a beauty filter erases the fine texture the baseline had (a warning).
    if np.isfinite(geometry.fine_texture) and np.isfinite(baseline.fine_texture) and baseline.fine_texture > 0:
        checks["fine_texture_ratio"] = _check("fine_texture_ratio", geometry.fine_texture / baseline.fine_texture)


_PROBLEM_ORDER = ["no_face", "multiple_faces", "face_too_small", "face_cut_off", "blurred", "underexposed",
                  "overexposed", "uneven_lighting", "coloured_lighting", "glare", "head_turned",
                  "pose_differs_from_baseline", "framing_differs_from_baseline", "expression_differs_from_baseline",
                  "smoothing_filter"]


def _report(checks: dict[str, Check]) -> QualityReport:
    found: dict[str, Problem] = {}
    for check in checks.values():
        if not check.passed and check.code not in found:
            found[check.code] = Problem(check.code, MESSAGES[check.code], check.value, check.threshold)
    problems = [found[c] for c in _PROBLEM_ORDER if c in found and c not in WARNING_CODES]
    warnings = [found[c] for c in _PROBLEM_ORDER if c in found and c in WARNING_CODES]
    return QualityReport(ok=not problems, problems=problems, checks=checks, warnings=warnings)


def quality_gate(data: bytes, baseline_geometry=None) -> QualityReport:
    """Decode an upload at reduced scale, find the face and run every check.

    Parameters
    ----------
    data : bytes
        The uploaded photo.
    baseline_geometry : imaging.face.FaceGeometry or None

    Returns
    -------
    QualityReport

    Raises
    ------
    imaging.errors.ImageError
        If the bytes are refused by the decoder (the API turns it into a 4xx problem).
    """
    from imaging.decode import decode_image
    from imaging.face import detect_face

    decoded = decode_image(data, min_long_side=GATE_DECODE_LONG_SIDE)
    geometry = detect_face(decoded.rgb)
    needed = GATE_CANONICAL_SCALE * CANONICAL_IOD_PX
    if geometry is not None and decoded.scale < 1.0 and geometry.iod < 0.8 * needed:
        # A small face in a reduced decode would be upsampled into the canonical frame and
        # read as blurred: decode again at a scale giving the face its canonical resolution.
        factor = min(1.0 / decoded.scale, needed / geometry.iod)
        finer = decode_image(data, min_long_side=int(np.ceil(max(decoded.rgb.shape[:2]) * factor)))
        geometry = geometry.scaled(finer.scale / decoded.scale)
        decoded = finer
    return judge_photo(decoded, geometry, baseline_geometry)


def judge_photo(decoded, geometry, baseline_geometry=None) -> QualityReport:
    """The upload gate's verdict on a decoded photo (:func:`quality_gate`, and the backend's
    upload, which decodes once for sanitising too): :func:`assess_quality`, then
    :func:`with_chart_light` looking for a ColorChecker only when a light-colour check failed."""
    from imaging.colour import colorchecker_correction

    report = assess_quality(decoded, geometry, baseline_geometry)
    return with_chart_light(report, decoded, geometry, baseline_geometry, lambda: colorchecker_correction(decoded.rgb))


def with_chart_light(report: QualityReport, decoded, geometry, baseline_geometry, chart) -> QualityReport:
    """``report``, judged again on the chart-corrected photo when one of its light-colour checks
    (:data:`LIGHT_COLOUR_CHECKS`) failed and the photo has a ColorChecker: a cast the chart
    corrects is no reason to refuse. The one rule for the upload gate and the analysis.

    Parameters
    ----------
    report : the photo's :func:`assess_quality` report without a correction
    decoded, geometry, baseline_geometry : as for :func:`assess_quality`
    chart : imaging.colour.ColourCorrection, None, or a callable returning one
        The photo's colour correction, or how to find it (called only when needed: finding a chart
        costs about a quarter of an analysis).
    """
    if not any(not report.checks[name].passed for name in LIGHT_COLOUR_CHECKS if name in report.checks):
        return report
    correction = chart() if callable(chart) else chart
    if correction is None or correction.reference != "colorchecker":
        return report
    return assess_quality(decoded, geometry, baseline_geometry, correction)


def thresholds_table() -> str:
    """The README's table of checks, codes and thresholds (Markdown), generated from
    :data:`CHECKS` and :data:`THRESHOLDS`."""
    def limit(spec: CheckSpec) -> str:
        if not spec.threshold:
            return "<= 1"
        value = THRESHOLDS[spec.threshold]
        if spec.compare == "within":
            return f"{value[0]:g} .. {value[1]:g}"
        return ("<= " if spec.compare == "at_most" else ">= ") + f"{value:g}"

    lines = ["| check | code | passes when | what is measured |", "|---|---|---|---|"]
    for name, spec in CHECKS.items():
        kind = " (warning)" if spec.code in WARNING_CODES else ""
        lines.append(f"| `{name}` | `{spec.code}`{kind} | {limit(spec)} | {spec.what} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """``python -m imaging.quality --table``: print the README's thresholds table."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m imaging.quality", description=main.__doc__)
    parser.add_argument("--table", action="store_true", help="print the checks/thresholds table (Markdown)")
    args = parser.parse_args(argv)
    if args.table:
        print(thresholds_table(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
