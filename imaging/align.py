"""The canonical face frame: similarity warp from eye centres, and registration to a baseline.

Every measurement runs in the canonical frame (see :mod:`imaging.geometry`): 768x1024 px with
the eyes at fixed points, so one canonical pixel is the same size of skin (~0.25 mm) in every
photo. A follow-up photo is additionally registered to its baseline's canonical image with
OpenCV's ECC maximisation (Evangelidis & Psarakis 2008, affine motion with bounded scale and
shear) on smoothed grey over the central face, so its baseline's regions cover the same skin
in both. A canonical face also carries the geometry's lower-face landmarks (mouth, lower lip,
chin) in canonical px, which place the region templates (:class:`imaging.regions.LowerFace`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.geometry import (
    CANONICAL_EYES,
    CANONICAL_IOD_PX,
    CANONICAL_SIZE,
    affine_scale,
    apply_affine,
    compose_affine,
    invert_affine,
    similarity_from_eyes,
)

import cv2  # noqa: E402

#: Registration is rejected (eye-based placement kept) beyond these corrections, since the
#: eye-based warp is already within a few px: larger moves mean ECC locked onto something else.
MAX_REGISTRATION_SHIFT_PX = 0.12 * CANONICAL_IOD_PX
MAX_REGISTRATION_ROTATION_DEG = 6.0
#: The eye-based scale can be off by a few % (eye-centre error / IOD); faces are not rigid
#: under expression and slight turns, so ECC is affine, but a correction that shears or
#: rescales more than this is not a re-framing of the same face and is rejected.
MAX_REGISTRATION_SCALE_CHANGE = 0.10
MAX_REGISTRATION_ANISOTROPY = 0.06
#: Downscale of the canonical images for ECC (speed; smoothed grey has no finer detail anyway).
_ECC_SCALE = 0.5
#: What differs between the baseline and the follow-up beyond light (hair that fell over the
#: forehead, a hat, a hand) is left out of the match: pixels where the two eye-placed images,
#: each normalised to zero mean and unit SD over the face and averaged over ~2 mm, differ by more
#: than this many SDs. Matching them too, the same photo registered onto its copy with a fringe
#: down to the brows failed on 10 of 32 faces of the set and registered off by enough to move
#: cheek redness 1.4-8.5 centi-OD on 9 more (tests/imaging/test_redness_reference.py).
OUTLIER_SD = 1.0


@dataclass(frozen=True)
class Registration:
    """Outcome of refining a follow-up's canonical placement against its baseline.

    Attributes
    ----------
    converged : bool
        ECC converged and its correction was within the plausible range.
    correlation : float
        Enhanced correlation coefficient (-1..1) between baseline and registered follow-up
        over the central face, less what differs beyond light (:data:`OUTLIER_SD`), after
        registration (1 = identical up to brightness/contrast);
        computed on the eye-based placement when ECC did not converge.
    shift_px : float
        Translation of the applied correction, canonical px.
    rotation_deg : float
        Rotation of the applied correction, degrees.
    scale : float
        Scale of the applied correction (1 = none).
    message : str
        Why registration was not applied, or "" when it was.
    """

    converged: bool
    correlation: float
    shift_px: float
    rotation_deg: float
    scale: float
    message: str = ""


@dataclass(frozen=True)
class CanonicalFace:
    """A face warped into the canonical frame.

    Attributes
    ----------
    rgb : ndarray uint8 (1024, 768, 3) at scale 1 (``round(1024*scale), round(768*scale)`` otherwise)
        sRGB RGB face in the canonical frame; pixels from outside the photo are 0.
    valid : ndarray bool, same height/width
        True where the pixel came from inside the photo.
    to_canonical : ndarray float64 (2, 3)
        Maps (x, y) px of the source image passed to :func:`to_canonical` into ``rgb``.
    to_image : ndarray float64 (2, 3)
        Inverse of ``to_canonical`` (draw overlays back on the photo).
    source_size : (int, int)
        (width, height) of that source image, px.
    scale : float
        Output scale relative to the full canonical frame (1.0 = 768x1024).
    registration : Registration or None
        Set when the face was registered to a baseline.
    mouth, lower_lip, chin : (float, float)
        The geometry's mouth centre (between the inner lips), lower lip's lower edge and chin tip
        in canonical px at scale 1, NaN when unknown.
    mouth_gap : float
        The gap between the inner lips, canonical px at scale 1 (0 closed; NaN when unknown). The
        region templates below the eye line follow these (:class:`imaging.regions.LowerFace`).
    """

    rgb: np.ndarray
    valid: np.ndarray
    to_canonical: np.ndarray
    to_image: np.ndarray
    source_size: tuple[int, int]
    scale: float = 1.0
    registration: Registration | None = None
    mouth: tuple[float, float] = (float("nan"), float("nan"))
    mouth_gap: float = float("nan")
    lower_lip: tuple[float, float] = (float("nan"), float("nan"))
    chin: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def px_per_mm(self) -> float:
        """Canonical px per mm of skin at this output scale (nominal IOD 63 mm)."""
        from imaging.geometry import CANONICAL_PX_PER_MM

        return CANONICAL_PX_PER_MM * self.scale


def canonical_transform(right_eye, left_eye, scale: float = 1.0) -> np.ndarray:
    """2x3 similarity mapping image px to canonical px (times ``scale``) from the eye centres."""
    targets = [(x * scale, y * scale) for x, y in CANONICAL_EYES]
    return similarity_from_eyes(right_eye, left_eye, targets[0], targets[1])


def canonical_point(matrix: np.ndarray, point, scale: float = 1.0) -> tuple[float, float]:
    """A photo point (x, y px) in canonical px at scale 1 through ``matrix`` (photo px -> canonical px
    times ``scale``); NaN when the point is missing or not finite."""
    if point is None or not np.all(np.isfinite(point)):
        return float("nan"), float("nan")
    x, y = apply_affine(matrix, np.asarray([point], np.float64))[0] / scale
    return float(x), float(y)


#: The face geometry's points a canonical face carries (see :class:`CanonicalFace`).
LANDMARKS = ("mouth", "lower_lip", "chin")


def canonical_landmarks(matrix: np.ndarray, geometry, scale: float = 1.0) -> dict:
    """The :class:`CanonicalFace` fields of a face geometry's lower-face points through ``matrix``
    (photo px -> canonical px times ``scale``): :data:`LANDMARKS` and ``mouth_gap``."""
    out = {name: canonical_point(matrix, getattr(geometry, name, None), scale) for name in LANDMARKS}
    out["mouth_gap"] = mouth_gap(geometry)
    return out


def _corrected_landmarks(face: "CanonicalFace", correction: np.ndarray) -> dict:
    """A canonical face's landmarks after a registration ``correction`` (canonical px at its scale)."""
    out = {name: canonical_point(correction, np.multiply(getattr(face, name), face.scale), face.scale)
           for name in LANDMARKS}
    out["mouth_gap"] = face.mouth_gap
    return out


def mouth_gap(geometry) -> float:
    """The inner-lip gap of a face geometry in canonical px at scale 1 (its ``mouth_open_ratio`` x the
    canonical IOD; NaN when unknown)."""
    ratio = getattr(geometry, "mouth_open_ratio", float("nan"))
    return float(ratio) * CANONICAL_IOD_PX if ratio is not None else float("nan")


def warp_into_frame(rgb: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Warp an image by a similarity into an output of ``size``, with anti-aliasing.

    Only the part of ``rgb`` that lands in the output is resampled. When the warp shrinks
    by more than 1.5x, that part is first area-averaged (cv2.INTER_AREA) to the output's pixel
    density, so fine texture does not alias; the remaining rotation uses bicubic
    interpolation.

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3
    matrix : ndarray (2, 3), image px -> output px
    size : (width, height) of the output, px

    Returns
    -------
    (warped uint8 size[1] x size[0] x 3, valid bool size[1] x size[0])
    """
    h, w = rgb.shape[:2]
    out_w, out_h = size
    inverse = invert_affine(matrix)
    corners = np.array([[0, 0], [out_w, 0], [0, out_h], [out_w, out_h]], np.float64)
    src = corners @ inverse[:, :2].T + inverse[:, 2]
    x0 = int(np.clip(np.floor(src[:, 0].min()) - 2, 0, w))
    x1 = int(np.clip(np.ceil(src[:, 0].max()) + 3, 0, w))
    y0 = int(np.clip(np.floor(src[:, 1].min()) - 2, 0, h))
    y1 = int(np.clip(np.ceil(src[:, 1].max()) + 3, 0, h))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((out_h, out_w, 3), np.uint8), np.zeros((out_h, out_w), bool)
    crop = rgb[y0:y1, x0:x1]
    to_crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    matrix_on_crop = compose_affine(invert_affine(to_crop), matrix)
    scale = affine_scale(matrix)
    if scale < 1 / 1.5:
        shrunk = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        shrink = np.array([[shrunk.shape[1] / crop.shape[1], 0.0, 0.0], [0.0, shrunk.shape[0] / crop.shape[0], 0.0]])
        matrix_on_crop = compose_affine(invert_affine(shrink), matrix_on_crop)
        crop = shrunk
    ones = np.full(crop.shape[:2], 255, np.uint8)
    warped = cv2.warpAffine(crop, matrix_on_crop, size, flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    # Valid only where the whole interpolation kernel was inside the photo (no border bleed).
    valid = cv2.warpAffine(ones, matrix_on_crop, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0) == 255
    if x0 > 0 or y0 > 0 or x1 < w or y1 < h:
        # The crop edge is not the photo edge: recompute validity against the full photo.
        grid_x, grid_y = np.meshgrid(np.arange(out_w, dtype=np.float32), np.arange(out_h, dtype=np.float32))
        sx = inverse[0, 0] * grid_x + inverse[0, 1] * grid_y + inverse[0, 2]
        sy = inverse[1, 0] * grid_x + inverse[1, 1] * grid_y + inverse[1, 2]
        valid = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    warped[~valid] = 0  # partly interpolated border pixels are not photo pixels
    return warped, valid


def to_canonical(rgb: np.ndarray, geometry, baseline: CanonicalFace | None = None, scale: float = 1.0) -> CanonicalFace:
    """Warp a photo's face into the canonical frame (and register it to a baseline if given).

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3 sRGB
        The photo (any decode scale) that ``geometry`` refers to.
    geometry : imaging.face.FaceGeometry
        Eye centres in ``rgb`` px.
    baseline : CanonicalFace or None
        The patient's baseline in the canonical frame; when given, the eye-based placement is
        refined by ECC registration to it and the photo re-warped once with the combined
        transform (a single interpolation).
    scale : float
        Output scale (1.0 = 768x1024; 0.25 = 192x256 for fast quality checks).

    Returns
    -------
    CanonicalFace
    """
    width, height = CANONICAL_SIZE
    size = (round(width * scale), round(height * scale))
    matrix = canonical_transform(geometry.right_eye, geometry.left_eye, scale)
    warped, valid = warp_into_frame(rgb, matrix, size)
    face = CanonicalFace(warped, valid, matrix, invert_affine(matrix), (int(rgb.shape[1]), int(rgb.shape[0])), scale,
                         **canonical_landmarks(matrix, geometry, scale))
    if baseline is None:
        return face
    correction, registration = estimate_registration(face, baseline)
    if not registration.converged:
        return replace(face, registration=registration)
    combined = compose_affine(matrix, correction)
    warped, valid = warp_into_frame(rgb, combined, size)
    return CanonicalFace(warped, valid, combined, invert_affine(combined), face.source_size, scale, registration,
                         **canonical_landmarks(combined, geometry, scale))


def register_to_baseline(follow: CanonicalFace, baseline: CanonicalFace) -> tuple[CanonicalFace, np.ndarray, float]:
    """Refine a follow-up's canonical image onto its baseline's canonical image.

    Use :func:`to_canonical` with ``baseline=`` when the original photo is at hand (one
    interpolation instead of two); this works from the canonical images alone.

    Parameters
    ----------
    follow, baseline : CanonicalFace at the same scale

    Returns
    -------
    registered : CanonicalFace
        Follow-up re-warped onto the baseline (``registration`` says whether ECC was applied;
        if not, the follow-up is returned unchanged).
    transform : ndarray float64 (2, 3)
        Follow-up canonical px -> baseline canonical px (identity when not applied).
    correlation : float
        ECC correlation after registration (see :class:`Registration`).
    """
    correction, registration = estimate_registration(follow, baseline)
    if not registration.converged:
        return replace(follow, registration=registration), correction, registration.correlation
    size = (follow.rgb.shape[1], follow.rgb.shape[0])
    warped = cv2.warpAffine(follow.rgb, correction, size, flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    valid = cv2.warpAffine(follow.valid.astype(np.uint8), correction, size, flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    combined = compose_affine(follow.to_canonical, correction)
    registered = CanonicalFace(warped, valid, combined, invert_affine(combined), follow.source_size,
                               follow.scale, registration, **_corrected_landmarks(follow, correction))
    return registered, correction, registration.correlation


def central_face_mask(shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Bool mask of the central face (brows to chin, cheek to cheek) in a canonical frame.

    An ellipse centred below the eyes, 1.7 IOD wide and 2.2 IOD tall: it holds the skin and
    facial features used to register and check photos, and excludes hair and background.
    """
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    centre = (round(384 * scale), round((384 + 0.45 * CANONICAL_IOD_PX) * scale))
    axes = (round(0.85 * CANONICAL_IOD_PX * scale), round(1.1 * CANONICAL_IOD_PX * scale))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return mask.astype(bool)


def _ecc_image(face: CanonicalFace) -> np.ndarray:
    grey = cv2.cvtColor(face.rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, None, fx=_ECC_SCALE, fy=_ECC_SCALE, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small.astype(np.float32), (0, 0), 1.5)


def estimate_registration(follow: CanonicalFace, baseline: CanonicalFace) -> tuple[np.ndarray, Registration]:
    """ECC (affine, bounded) alignment of ``follow`` onto ``baseline`` over the central face.

    Returns
    -------
    (correction, registration)
        ``correction`` maps follow canonical px -> baseline canonical px (identity when not
        applied); ``registration`` describes the outcome.
    """
    if follow.rgb.shape != baseline.rgb.shape:
        raise ValueError("follow-up and baseline canonical faces must have the same scale")
    template = _ecc_image(baseline)
    moving = _ecc_image(follow)
    small_shape = template.shape
    mask = central_face_mask(small_shape, follow.scale * _ECC_SCALE)
    for face in (baseline, follow):
        mask &= cv2.resize(face.valid.astype(np.uint8), (small_shape[1], small_shape[0]),
                           interpolation=cv2.INTER_NEAREST).astype(bool)
    identity = np.eye(2, 3, dtype=np.float64)
    if mask.sum() < 500:
        return identity, Registration(False, _masked_correlation(template, moving, mask), 0.0, 0.0, 1.0,
                                      "too little overlapping face to register")
    differs = _differing(template, moving, mask, follow.px_per_mm * _ECC_SCALE)
    if (mask & ~differs).sum() >= 500:
        mask = mask & ~differs
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 80, 1e-5)
    try:
        correlation, warp = cv2.findTransformECC(template, moving, np.eye(2, 3, dtype=np.float32), cv2.MOTION_AFFINE,
                                                 criteria, mask.astype(np.uint8), 5)
    except cv2.error:
        return identity, Registration(False, _masked_correlation(template, moving, mask), 0.0, 0.0, 1.0,
                                      "registration did not converge")
    # ECC's warp maps template (baseline) px to input (follow) px, at ECC scale.
    baseline_to_follow = warp.astype(np.float64)
    baseline_to_follow[:, 2] /= _ECC_SCALE
    correction = invert_affine(baseline_to_follow)
    shift = float(np.hypot(*correction[:, 2]))
    # Shift measured at the eye midpoint, the pivot of the eye-based placement.
    pivot = np.array([384.0, 384.0]) * follow.scale
    moved = correction[:, :2] @ pivot + correction[:, 2] - pivot
    shift = float(np.hypot(*moved)) / follow.scale
    rotation = float(np.degrees(np.arctan2(correction[1, 0], correction[0, 0])))
    singular = np.linalg.svd(correction[:, :2], compute_uv=False)
    scale = float(np.sqrt(singular[0] * singular[1]))
    anisotropy = float(singular[0] / singular[1] - 1.0)
    if (shift > MAX_REGISTRATION_SHIFT_PX or abs(rotation) > MAX_REGISTRATION_ROTATION_DEG
            or abs(scale - 1.0) > MAX_REGISTRATION_SCALE_CHANGE or anisotropy > MAX_REGISTRATION_ANISOTROPY):
        return identity, Registration(False, _masked_correlation(template, moving, mask), shift, rotation, scale,
                                      "registration correction implausibly large; eye-based placement kept")
    return correction, Registration(True, float(correlation), shift, rotation, scale)


def _differing(template: np.ndarray, moving: np.ndarray, mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Pixels of ``mask`` where the two ECC images differ by more than OUTLIER_SD (bool, dilated).

    Both are normalised to zero mean and unit SD over ``mask`` (ECC's own photometric invariance)
    and compared as placed by the eyes, averaged over ~2 mm so that the few px the eye-based
    placement may be off do not count, only what is new or gone."""
    def normalised(image: np.ndarray) -> np.ndarray:
        values = image[mask]
        return (image - values.mean()) / max(float(values.std()), 1e-6)

    sigma = 2.0 * px_per_mm  # 2 mm
    difference = cv2.GaussianBlur(np.abs(normalised(template) - normalised(moving)).astype(np.float32), (0, 0), sigma)
    differs = (difference > OUTLIER_SD) & mask
    return cv2.dilate(differs.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def _masked_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Zero-mean normalised correlation of two images over a mask (-1..1)."""
    if mask.sum() < 2:
        return 0.0
    x = a[mask] - a[mask].mean()
    y = b[mask] - b[mask].mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else 0.0
