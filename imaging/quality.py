"""Photo quality gate: is this photo usable for measurement, and if not, what should the
patient do? Every check reports its value and threshold, pass or fail.

All face measurements are taken in the canonical frame at half scale (384x512, IOD 128 px),
so values do not depend on the photo's pixel size. Problem codes (stable, machine-readable):

=================================  ======================================================
``no_face``                        no face found
``multiple_faces``                 more than one face of comparable size
``face_too_small``                 face box width < 25 % of the photo's short side
``face_cut_off``                   > 3 % of the measured face area lies outside the photo
``blurred``                        normalised Laplacian energy of the face < 0.13 (see sharpness)
``underexposed`` / ``overexposed`` median skin L* outside 35..90, or > 10 % of skin clipped white
``uneven_lighting``                left/right cheek ratio < 0.6 or forehead/cheeks < 0.35 (linear
                                   light, 75th percentile over skin-chroma pixels)
``coloured_lighting``              skin hue angle or chroma outside the range of human skin
``glare``                          > 3 % of skin is specular (near-white, unsaturated)
``head_turned``                    |yaw| > 22, pitch > 25 or |roll| > 10 degrees
``pose_differs_from_baseline``     yaw/roll/pitch change vs the baseline > 10 degrees
``framing_differs_from_baseline``  face size changes > 30 % or moves > 12 % of the frame
=================================  ======================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.catalogue import REGION_NAMES
from imaging.colour_space import srgb_to_linear
from imaging.geometry import CANONICAL_IOD_PX

import cv2  # noqa: E402

#: Canonical scale at which the gate measures the face (IOD 128 px).
GATE_CANONICAL_SCALE = 0.5
#: Region brightness for lighting checks: this percentile of linear luminance over skin-
#: chroma pixels, so dark hair covering part of a region (a fringe) does not read as shadow.
LIGHT_PERCENTILE = 75
#: Long side the gate decodes at (JPEG DCT scaling gives 1/4 of a 4032 px photo).
GATE_DECODE_LONG_SIDE = 1000

THRESHOLDS = {
    "face_width_fraction": 0.25,
    "face_outside_fraction": 0.03,
    "sharpness": 0.13,
    "skin_lightness_min": 35.0,
    "skin_lightness_max": 90.0,
    "skin_clipped_fraction": 0.10,
    "left_right_light_ratio": 0.6,
    "top_bottom_light_ratio": 0.35,
    "skin_hue_deg": (18.0, 80.0),
    "skin_chroma": (6.0, 36.0),
    "glare_fraction": 0.03,
    "yaw_deg": 22.0,
    "pitch_deg": 25.0,
    "roll_deg": 10.0,
    "pose_change_deg": 10.0,
    "framing_scale_change": 0.30,
    "framing_offset": 0.12,
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
}

# Which checks raise which problem code (several checks may map to one code).
_CHECK_CODES = {
    "face_count": "multiple_faces",
    "face_width_fraction": "face_too_small",
    "face_outside_fraction": "face_cut_off",
    "sharpness": "blurred",
    "skin_lightness_low": "underexposed",
    "skin_lightness_high": "overexposed",
    "skin_clipped_fraction": "overexposed",
    "left_right_light_ratio": "uneven_lighting",
    "top_bottom_light_ratio": "uneven_lighting",
    "skin_hue_deg": "coloured_lighting",
    "skin_chroma": "coloured_lighting",
    "glare_fraction": "glare",
    "yaw_deg": "head_turned",
    "pitch_deg": "head_turned",
    "roll_deg": "head_turned",
    "pose_change_deg": "pose_differs_from_baseline",
    "framing_scale_change": "framing_differs_from_baseline",
    "framing_offset": "framing_differs_from_baseline",
}


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
    """

    ok: bool
    problems: list[Problem] = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        """Problem codes, in report order."""
        return [p.code for p in self.problems]

    def to_dict(self) -> dict:
        """JSON-ready dict: ``{"ok", "problems": [{code, message, value, threshold}], "checks"}``."""
        def plain(threshold):
            return list(threshold) if isinstance(threshold, tuple) else threshold

        return {
            "ok": self.ok,
            "problems": [{**asdict(p), "threshold": plain(p.threshold)} for p in self.problems],
            "checks": {k: {**asdict(c), "threshold": plain(c.threshold)} for k, c in self.checks.items()},
        }


def _at_least(value: float, limit: float, code_key: str) -> Check:
    return Check(float(value), limit, bool(value >= limit), _CHECK_CODES[code_key])


def _at_most(value: float, limit: float, code_key: str) -> Check:
    return Check(float(value), limit, bool(value <= limit), _CHECK_CODES[code_key])


def _within(value: float, bounds: tuple[float, float], code_key: str) -> Check:
    return Check(float(value), bounds, bool(bounds[0] <= value <= bounds[1]), _CHECK_CODES[code_key])


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


def _linear_luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance Y (float32 HxW, 0..1) of uint8 sRGB (Rec. 709 weights)."""
    return srgb_to_linear(rgb) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def assess_quality(decoded, geometry, baseline_geometry=None) -> QualityReport:
    """Run every quality check on a decoded photo.

    Parameters
    ----------
    decoded : imaging.decode.DecodedImage
        Ideally decoded with a long side of ~1000 px (see :func:`quality_gate`).
    geometry : imaging.face.FaceGeometry or None
        From :func:`imaging.face.detect_face` on ``decoded.rgb``; None means no face.
    baseline_geometry : imaging.face.FaceGeometry or None
        The patient's baseline photo geometry (any image size: compared in relative units).

    Returns
    -------
    QualityReport
    """
    from imaging.align import to_canonical
    from imaging.regions import canonical_lab, non_skin_mask, skin_reference, specular_mask, template_mask

    rgb = decoded.rgb
    checks: dict[str, Check] = {}
    if geometry is None:
        checks["face_count"] = Check(0.0, 1.0, False, "no_face")
        return _report(checks)
    t = THRESHOLDS
    checks["face_count"] = Check(float(geometry.n_faces), 1.0, geometry.n_faces <= 1, "multiple_faces")
    short_side = float(min(rgb.shape[:2]))
    checks["face_width_fraction"] = _at_least(geometry.box[2] / short_side, t["face_width_fraction"], "face_width_fraction")

    canonical = to_canonical(rgb, geometry, scale=GATE_CANONICAL_SCALE)
    scale = canonical.scale
    shape = canonical.valid.shape
    face_area = np.zeros(shape, bool)
    for name in REGION_NAMES:
        face_area |= template_mask(name, shape, scale)
    outside = 1.0 - float(canonical.valid[face_area].mean())
    checks["face_outside_fraction"] = _at_most(outside, t["face_outside_fraction"], "face_outside_fraction")

    skin = face_area & canonical.valid
    if skin.sum() >= 100:
        grey = cv2.cvtColor(canonical.rgb, cv2.COLOR_RGB2GRAY)
        checks["sharpness"] = _at_least(sharpness(grey, skin), t["sharpness"], "sharpness")
        lab = canonical_lab(canonical.rgb)
        lightness = float(np.median(lab[..., 0][skin]))
        checks["skin_lightness_low"] = _at_least(lightness, t["skin_lightness_min"], "skin_lightness_low")
        checks["skin_lightness_high"] = _at_most(lightness, t["skin_lightness_max"], "skin_lightness_high")
        glare = specular_mask(canonical.rgb)
        # Clipped = all three channels near 255 (white): a saturated red channel alone is
        # normal for light skin in a bright, correctly exposed photo.
        clipped = float((canonical.rgb[skin].min(axis=1) >= 250).mean())
        checks["skin_clipped_fraction"] = _at_most(clipped, t["skin_clipped_fraction"], "skin_clipped_fraction")
        checks["glare_fraction"] = _at_most(float(glare[skin].mean()), t["glare_fraction"], "glare_fraction")
        luminance = _linear_luminance(canonical.rgb)

        # Only skin-coloured pixels (by chroma, so shadowed skin still counts): a fringe over
        # the forehead must not read as shadow.
        skin_like = ~non_skin_mask(lab, skin_reference(lab, canonical.valid, scale), use_lightness=False)

        def region_light(name: str) -> float:
            template = template_mask(name, shape, scale)
            m = template & canonical.valid & ~glare & skin_like
            return float(np.percentile(luminance[m], LIGHT_PERCENTILE)) if m.sum() >= max(20, 0.1 * template.sum()) else float("nan")

        right, left, forehead = region_light("right_cheek"), region_light("left_cheek"), region_light("forehead")
        if np.isfinite(right) and np.isfinite(left):
            lr = min(right, left) / max(right, left, 1e-6)
            checks["left_right_light_ratio"] = _at_least(lr, t["left_right_light_ratio"], "left_right_light_ratio")
            if np.isfinite(forehead):
                cheeks = (right + left) / 2
                tb = min(forehead, cheeks) / max(forehead, cheeks, 1e-6)
                checks["top_bottom_light_ratio"] = _at_least(tb, t["top_bottom_light_ratio"], "top_bottom_light_ratio")
        cheek_skin = (template_mask("right_cheek", shape, scale) | template_mask("left_cheek", shape, scale)
                      | template_mask("nose", shape, scale)) & canonical.valid & ~glare
        if cheek_skin.sum() >= 20:
            a = float(np.median(lab[..., 1][cheek_skin]))
            b = float(np.median(lab[..., 2][cheek_skin]))
            checks["skin_hue_deg"] = _within(float(np.degrees(np.arctan2(b, a))), t["skin_hue_deg"], "skin_hue_deg")
            checks["skin_chroma"] = _within(float(np.hypot(a, b)), t["skin_chroma"], "skin_chroma")

    checks["yaw_deg"] = _at_most(abs(geometry.yaw_deg), t["yaw_deg"], "yaw_deg")
    checks["pitch_deg"] = _at_most(abs(geometry.pitch_deg), t["pitch_deg"], "pitch_deg")
    checks["roll_deg"] = _at_most(abs(geometry.roll_deg), t["roll_deg"], "roll_deg")

    if baseline_geometry is not None:
        _baseline_checks(checks, geometry, baseline_geometry, rgb.shape[1], rgb.shape[0])
    return _report(checks)


def pitch_change_deg(ratio: float, baseline_ratio: float) -> float:
    """Nod between two photos from eye-mouth/IOD foreshortening, degrees (>= 0)."""
    if not (np.isfinite(ratio) and np.isfinite(baseline_ratio)) or min(ratio, baseline_ratio) <= 0:
        return 0.0
    return float(np.degrees(np.arccos(min(ratio, baseline_ratio) / max(ratio, baseline_ratio))))


def _baseline_checks(checks: dict, geometry, baseline, width: int, height: int) -> None:
    t = THRESHOLDS
    change = max(
        abs(geometry.yaw_deg - baseline.yaw_deg),
        abs(geometry.roll_deg - baseline.roll_deg),
        pitch_change_deg(geometry.eye_mouth_ratio, baseline.eye_mouth_ratio),
    )
    checks["pose_change_deg"] = _at_most(change, t["pose_change_deg"], "pose_change_deg")
    base_w, base_h = baseline.image_size if baseline.image_size[0] else (width, height)
    size_now = geometry.iod / min(width, height)
    size_then = baseline.iod / min(base_w, base_h)
    scale_change = abs(size_now / max(size_then, 1e-9) - 1.0)
    checks["framing_scale_change"] = _at_most(scale_change, t["framing_scale_change"], "framing_scale_change")
    mx, my = geometry.eye_midpoint
    bx, by = baseline.eye_midpoint
    offset = float(np.hypot(mx / width - bx / base_w, my / height - by / base_h))
    checks["framing_offset"] = _at_most(offset, t["framing_offset"], "framing_offset")


_PROBLEM_ORDER = ["no_face", "multiple_faces", "face_too_small", "face_cut_off", "blurred", "underexposed",
                  "overexposed", "uneven_lighting", "coloured_lighting", "glare", "head_turned",
                  "pose_differs_from_baseline", "framing_differs_from_baseline"]


def _report(checks: dict[str, Check]) -> QualityReport:
    problems: dict[str, Problem] = {}
    for check in checks.values():
        if not check.passed and check.code not in problems:
            problems[check.code] = Problem(check.code, MESSAGES[check.code], check.value, check.threshold)
    ordered = [problems[c] for c in _PROBLEM_ORDER if c in problems]
    return QualityReport(ok=not ordered, problems=ordered, checks=checks)


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
    return assess_quality(decoded, geometry, baseline_geometry)
