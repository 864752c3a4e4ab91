"""Face geometry from a photo, offline: face box, eye centres, mouth, pose, face count.

Method
------
1. Face boxes: scikit-image's LBP frontal-face cascade (shipped with the package, no
   download) on a grey copy area-downscaled so its long side is :data:`CASCADE_LONG_SIDE`
   px; the cascade's own grouping merges overlapping windows. The largest box is the
   subject. Other boxes count as extra faces only when at least half its width and not
   overlapping it (small false positives in backgrounds are ignored). When no confident
   face is found, the search is repeated for smaller faces and then on copies rotated by
   +-22 degrees (tilted heads), keeping the most plausible result.
2. Eye centres: gradient-vector voting (Timm & Barth 2011, "Accurate eye centre
   localisation by means of gradients"), darkness-weighted, in the upper-left and
   upper-right parts of the face box resampled to :data:`EYE_SEARCH_BOX_PX` px, then refined
   once at twice that resolution around the first estimate.
3. Pose, from a small eye-aligned patch of the face (IOD = 64 px):
   roll = angle of the eye line; yaw from the asymmetry of the skin extent either side of
   the eye midpoint at cheek level, skin found with a Gaussian L*a*b* model of the face's
   own central cheeks (cylinder head model whose visible skin ends at
   :data:`FACE_EDGE_ANGLE_DEG`: (L - R) / (L + R) = tan(yaw) tan(edge / 2)); pitch from
   foreshortening of the eye-to-mouth distance relative to the IOD
   (cos(pitch) = ratio / :data:`NOMINAL_EYE_MOUTH_RATIO`; magnitude only, the sign is not
   observable this way). The mouth is the centroid of the reddest pixels (CIELAB a*) in the
   band where lips lie below the eyes.

Conventions: coordinates (x, y) px in the image passed in; right/left are the SUBJECT's
(the right eye is the image-left eye: photos are assumed unmirrored); angles in degrees.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.geometry import similarity_from_eyes
from imaging.raster import downscale_long_side

import cv2  # noqa: E402

#: Long side (px) of the grey copy the cascade runs on.
CASCADE_LONG_SIDE = 320
#: Smallest face box searched, as a fraction of the image's short side.
MIN_FACE_FRACTION = 0.15
#: Second, slower search for small faces (only when the first finds no confident face).
SMALL_FACE_FRACTION = 0.075
#: Eye-layout confidence above which a detection is accepted without further searches.
CONFIDENT_FACE = 0.5
#: Width (px) the face box is resampled to for the first eye search.
EYE_SEARCH_BOX_PX = 96
#: Frontal eye-line-to-mouth distance / IOD (anthropometric adult mean, pupils to stomion ~1.0).
NOMINAL_EYE_MOUTH_RATIO = 1.02
#: Angle on a cylinder head model where visible cheek skin ends at cheek level (model constant).
FACE_EDGE_ANGLE_DEG = 60.0
#: Secondary detections at least this fraction of the subject's box width count as faces.
SECOND_FACE_MIN_RELATIVE_SIZE = 0.5

# Eye-aligned pose patch: IOD in px and where the eyes sit (same proportions as canonical/4).
_POSE_IOD = 64.0
_POSE_SIZE = (192, 256)
_POSE_EYES = ((64.0, 96.0), (128.0, 96.0))


@dataclass(frozen=True)
class FaceGeometry:
    """Where the subject's face is and how it is posed.

    Attributes
    ----------
    box : (x, y, width, height), float px
        Face box from the detector (roughly brows to chin, cheek to cheek).
    right_eye, left_eye : (x, y), float px
        Subject's right eye (image-left) and left eye (image-right) centres.
    mouth : (x, y), float px
        Centre of the mouth (lip line).
    roll_deg : float
        Eye-line angle; positive when the subject's left eye (image-right) is lower.
    yaw_deg : float
        Head turn; positive when the face turns towards the image's right (subject's left).
    pitch_deg : float
        Magnitude of head nod (>= 0) from eye-mouth foreshortening.
    n_faces : int
        Number of faces in the photo (>= 1).
    confidence : float
        0..1 plausibility of the eye/mouth layout given the face box.
    eye_mouth_ratio : float
        Eye-midpoint-to-mouth distance / IOD (compare with a baseline for pitch change).
    skin_extent_ratio : float
        (L - R) / (L + R) skin extent asymmetry behind ``yaw_deg``.
    image_size : (int, int)
        (width, height) of the image these coordinates refer to.
    """

    box: tuple[float, float, float, float]
    right_eye: tuple[float, float]
    left_eye: tuple[float, float]
    mouth: tuple[float, float]
    roll_deg: float
    yaw_deg: float
    pitch_deg: float
    n_faces: int
    confidence: float
    eye_mouth_ratio: float = float("nan")
    skin_extent_ratio: float = 0.0
    image_size: tuple[int, int] = (0, 0)

    @property
    def iod(self) -> float:
        """Inter-ocular distance, px."""
        return float(np.hypot(self.left_eye[0] - self.right_eye[0], self.left_eye[1] - self.right_eye[1]))

    @property
    def eye_midpoint(self) -> tuple[float, float]:
        """Midpoint between the eye centres, (x, y) px."""
        return ((self.right_eye[0] + self.left_eye[0]) / 2, (self.right_eye[1] + self.left_eye[1]) / 2)

    def scaled(self, factor: float) -> "FaceGeometry":
        """Same geometry in an image resized by ``factor`` (e.g. 4.0 from a 1/4 decode to full).

        Parameters
        ----------
        factor : float
            New px per old px (> 0). Angles, ratios and counts are unchanged.
        """

        def s(point):
            return tuple(float(v * factor) for v in point)

        return replace(
            self,
            box=s(self.box),
            right_eye=s(self.right_eye),
            left_eye=s(self.left_eye),
            mouth=s(self.mouth),
            image_size=(round(self.image_size[0] * factor), round(self.image_size[1] * factor)),
        )


@functools.lru_cache(maxsize=1)
def _cascade():
    from skimage import data
    from skimage.feature import Cascade

    return Cascade(data.lbp_frontal_face_cascade_filename())


def detect_face_boxes(rgb: np.ndarray, min_face_fraction: float = MIN_FACE_FRACTION) -> list[tuple[float, float, float, float]]:
    """All face boxes found by the LBP cascade, largest first.

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3 (RGB) or HxW grey
    min_face_fraction : smallest box searched, fraction of the short side (smaller is slower)

    Returns
    -------
    list of (x, y, width, height), float px in ``rgb`` coordinates.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    small, factor = downscale_long_side(grey, CASCADE_LONG_SIDE, resampling="exact")
    short = min(small.shape)
    min_side = max(24, int(min_face_fraction * short))
    found = _cascade().detect_multi_scale(
        img=small, scale_factor=1.15, step_ratio=1, min_size=(min_side, min_side),
        max_size=(short, short), min_neighbor_number=3, intersection_score_threshold=0.5,
    )
    boxes = [(d["c"] / factor, d["r"] / factor, d["width"] / factor, d["height"] / factor) for d in found]
    return sorted(boxes, key=lambda b: -b[2])


def _overlap_fraction(a, b) -> float:
    """Intersection area over the smaller box's area."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / min(a[2] * a[3], b[2] * b[3])


#: A detection counts as a face only if its eye layout confidence reaches this.
FACE_CONFIDENCE_MIN = 0.3


#: In-plane rotations (degrees) tried when no upright face is found: the frontal cascade
#: tolerates about +-15 degrees of roll, so a tilted head would otherwise read as "no face".
FALLBACK_ROTATIONS_DEG = (22.0, -22.0)


def detect_face(rgb: np.ndarray) -> FaceGeometry | None:
    """Find the subject's face, eyes, mouth and pose.

    Parameters
    ----------
    rgb : ndarray, uint8, HxWx3, sRGB RGB
        Any size; for speed pass a reduced decode (long side ~1000 px is plenty).

    Returns
    -------
    FaceGeometry or None
        None when no face is found (the quality gate reports ``no_face``).

    Notes
    -----
    When no face (or only an implausible one) is found upright, the image is rotated by each of
    :data:`FALLBACK_ROTATIONS_DEG` and searched again; the geometry is mapped back, so a
    strongly tilted head is reported with its roll (``head_turned``) instead of as no face.
    """
    best = _detect_upright(rgb)
    if best is not None and best.confidence >= CONFIDENT_FACE:
        return best
    # A face smaller than the first search's minimum is either missed or boxed together with
    # its hair (wrong eyes, low confidence): search again for smaller faces.
    small = _detect_upright(rgb, SMALL_FACE_FRACTION)
    if small is not None and (best is None or small.confidence >= best.confidence + 0.2):
        best = small
    if best is not None and best.confidence >= CONFIDENT_FACE:
        return best
    h, w = rgb.shape[:2]
    for angle in FALLBACK_ROTATIONS_DEG:
        rotation = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
        rotated = cv2.warpAffine(rgb, rotation, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        found = _detect_upright(rotated)
        # A rotated result must be plausible and clearly better than the upright one.
        floor = CONFIDENT_FACE if best is None else max(CONFIDENT_FACE, best.confidence + 0.3)
        if found is not None and found.confidence >= floor:
            best = _rotate_back(found, rotation)
    return best


def _rotate_back(geometry: FaceGeometry, rotation: np.ndarray) -> FaceGeometry:
    """Map a geometry found in a rotated copy back to the original image."""
    back = np.linalg.inv(np.vstack([rotation, [0.0, 0.0, 1.0]]))[:2]

    def move(point):
        return tuple(float(v) for v in back @ np.array([point[0], point[1], 1.0]))

    x, y, bw, bh = geometry.box
    cx, cy = move((x + bw / 2, y + bh / 2))
    right_eye, left_eye = move(geometry.right_eye), move(geometry.left_eye)
    roll = float(np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])))
    return replace(geometry, box=(cx - bw / 2, cy - bh / 2, bw, bh), right_eye=right_eye, left_eye=left_eye,
                   mouth=move(geometry.mouth), roll_deg=roll)


def _detect_upright(rgb: np.ndarray, min_face_fraction: float = MIN_FACE_FRACTION) -> FaceGeometry | None:
    """Find the subject's face, eyes, mouth and pose (faces within ~15 degrees of upright).

    Parameters
    ----------
    rgb : ndarray, uint8, HxWx3, sRGB RGB
        Any size; for speed pass a reduced decode (long side ~1000 px is plenty).

    Returns
    -------
    FaceGeometry or None
        None when no face is found (the quality gate reports ``no_face``).

    Notes
    -----
    Each cascade box of at least half the largest box's width is verified by locating eyes
    in it; the subject is the box with the most plausible eyes (the cascade alone yields
    occasional large false positives). Faces are counted among verified, non-overlapping
    boxes at least half the subject's width, so small background faces are not counted.
    """
    boxes = detect_face_boxes(rgb, min_face_fraction)
    if not boxes:
        return None
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    candidates = []
    for box in boxes[:5]:
        if box[2] < SECOND_FACE_MIN_RELATIVE_SIZE * boxes[0][2]:
            continue
        right_eye, left_eye, eye_strength = locate_eyes(grey, box)
        iod = float(np.hypot(left_eye[0] - right_eye[0], left_eye[1] - right_eye[1]))
        # Plausibility: the IOD is ~0.46 of the cascade's box width on frontal faces.
        layout = float(np.clip(1.0 - abs(iod / box[2] - 0.46) / 0.25, 0.0, 1.0))
        candidates.append((layout * eye_strength, box, right_eye, left_eye))
    confidence, box, right_eye, left_eye = max(candidates, key=lambda c: c[0])
    counted = [box]
    for other_conf, other, _, _ in candidates:
        if other is box or other_conf < FACE_CONFIDENCE_MIN or other[2] < SECOND_FACE_MIN_RELATIVE_SIZE * box[2]:
            continue
        if all(_overlap_fraction(other, kept) <= 0.3 for kept in counted):
            counted.append(other)
    pose = estimate_pose(rgb, right_eye, left_eye)
    return FaceGeometry(
        box=tuple(float(v) for v in box),
        right_eye=right_eye,
        left_eye=left_eye,
        mouth=pose["mouth"],
        roll_deg=pose["roll_deg"],
        yaw_deg=pose["yaw_deg"],
        pitch_deg=pose["pitch_deg"],
        n_faces=len(counted),
        confidence=float(confidence),
        eye_mouth_ratio=pose["eye_mouth_ratio"],
        skin_extent_ratio=pose["skin_extent_ratio"],
        image_size=(int(rgb.shape[1]), int(rgb.shape[0])),
    )


# ---------------------------------------------------------------- eye centres

def eye_centre_by_gradients(patch: np.ndarray) -> tuple[float, float, float]:
    """Timm & Barth (2011) eye centre in a grey patch.

    Parameters
    ----------
    patch : ndarray, uint8 or float, HxW grey, roughly one eye with some surround

    Returns
    -------
    (x, y, strength) : float
        Centre in patch px (sub-pixel by a 3x3 parabolic fit) and the peak objective
        relative to the patch's mean objective (>= 1; ~1 means no circular dark structure).

    Notes
    -----
    Objective at candidate c: mean_i max(0, d_i . g_i)^2 over strong-gradient pixels i,
    where d_i is the unit vector from c to pixel i and g_i the unit image gradient, weighted
    by the darkness of the smoothed patch at c (pupils/irises are dark).
    """
    p = patch.astype(np.float32)
    gx = cv2.Sobel(p, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(p, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    threshold = float(mag.mean() + 0.5 * mag.std())
    ys, xs = np.nonzero(mag > threshold)
    h, w = p.shape
    if len(xs) < 5:
        return w / 2.0, h / 2.0, 1.0
    gxs = gx[ys, xs] / mag[ys, xs]
    gys = gy[ys, xs] / mag[ys, xs]
    cy, cx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = cx.ravel()[:, None]
    cy = cy.ravel()[:, None]
    dx = xs[None, :].astype(np.float32) - cx
    dy = ys[None, :].astype(np.float32) - cy
    norm = np.hypot(dx, dy)
    norm[norm == 0] = np.inf
    dot = (dx * gxs[None, :] + dy * gys[None, :]) / norm
    objective = (np.maximum(dot, 0.0) ** 2).mean(axis=1).reshape(h, w)
    smooth = cv2.GaussianBlur(p, (0, 0), max(1.0, w / 30))
    darkness = (smooth.max() - smooth) / max(1e-6, float(smooth.max() - smooth.min()))
    objective *= 0.2 + darkness
    # Maxima touching the border are eyelid/brow edges, not pupils.
    margin = max(2, w // 12)
    inner = objective[margin:-margin, margin:-margin]
    iy, ix = np.unravel_index(int(np.argmax(inner)), inner.shape)
    iy += margin
    ix += margin
    fx = _parabolic_offset(objective[iy, ix - 1], objective[iy, ix], objective[iy, ix + 1])
    fy = _parabolic_offset(objective[iy - 1, ix], objective[iy, ix], objective[iy + 1, ix])
    strength = float(objective[iy, ix] / max(1e-9, float(objective.mean())))
    return float(ix + fx), float(iy + fy), strength


def _parabolic_offset(left: float, centre: float, right: float) -> float:
    denom = left - 2 * centre + right
    if denom >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def _crop_resampled(grey: np.ndarray, x0: float, y0: float, width: float, height: float, scale: float) -> np.ndarray:
    """Crop a rectangle (image px) and resample it by ``scale`` (area when shrinking)."""
    out_w, out_h = max(8, int(round(width * scale))), max(8, int(round(height * scale)))
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    if scale < 0.5:
        # Pre-shrink with area averaging so the affine does not alias.
        xs0, ys0 = int(max(0, np.floor(x0))), int(max(0, np.floor(y0)))
        xs1 = int(min(grey.shape[1], np.ceil(x0 + width)))
        ys1 = int(min(grey.shape[0], np.ceil(y0 + height)))
        region = grey[ys0:ys1, xs0:xs1]
        if region.size == 0:
            return np.full((out_h, out_w), 128, np.uint8)
        region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        matrix = np.array([[1.0, 0.0, (xs0 - x0) * scale], [0.0, 1.0, (ys0 - y0) * scale]])
        return cv2.warpAffine(region, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(grey, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# Eye search windows as fractions of the face box (x0, y0, x1, y1), image-left then image-right.
_EYE_WINDOWS = ((0.12, 0.22, 0.50, 0.52), (0.50, 0.22, 0.88, 0.52))


def locate_eyes(grey: np.ndarray, box) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Eye centres inside a face box.

    Parameters
    ----------
    grey : ndarray uint8 HxW
    box : (x, y, width, height) px

    Returns
    -------
    right_eye, left_eye : (x, y) px in ``grey`` coordinates (subject's right = image-left)
    strength : float in 0..1, how clearly both eyes stood out.
    """
    bx, by, bw, bh = box
    centres, strengths = [], []
    for fx0, fy0, fx1, fy1 in _EYE_WINDOWS:
        x0, y0 = bx + fx0 * bw, by + fy0 * bh
        ww, wh = (fx1 - fx0) * bw, (fy1 - fy0) * bh
        coarse_scale = EYE_SEARCH_BOX_PX / bw
        patch = _crop_resampled(grey, x0, y0, ww, wh, coarse_scale)
        px, py, strength = eye_centre_by_gradients(patch)
        cx, cy = x0 + px / coarse_scale, y0 + py / coarse_scale
        # Refine at twice the resolution in a window ~0.2 box wide around the estimate.
        fine_scale = 2 * coarse_scale
        half = 0.1 * bw
        patch = _crop_resampled(grey, cx - half, cy - 0.75 * half, 2 * half, 1.5 * half, fine_scale)
        px, py, _ = eye_centre_by_gradients(patch)
        centres.append((float(cx - half + px / fine_scale), float(cy - 0.75 * half + py / fine_scale)))
        strengths.append(strength)
    # Peak/mean objective of ~1.5 is weak, >= 3 is a clear pupil.
    strength = float(np.clip((min(strengths) - 1.2) / 1.8, 0.0, 1.0))
    return centres[0], centres[1], strength


# ---------------------------------------------------------------- pose

def pose_patch(rgb: np.ndarray, right_eye, left_eye) -> tuple[np.ndarray, np.ndarray]:
    """Eye-aligned face patch (IOD 64 px, 192x256) and the 2x3 transform image -> patch."""
    matrix = similarity_from_eyes(right_eye, left_eye, _POSE_EYES[0], _POSE_EYES[1])
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    source = rgb
    if scale < 0.5:
        pre = scale * 2.0
        source = cv2.resize(rgb, None, fx=pre, fy=pre, interpolation=cv2.INTER_AREA)
        pre_matrix = np.array([[source.shape[1] / rgb.shape[1], 0, 0], [0, source.shape[0] / rgb.shape[0], 0]])
        matrix_on_source = (np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(np.vstack([pre_matrix, [0, 0, 1]])))[:2]
    else:
        matrix_on_source = matrix
    patch = cv2.warpAffine(source, matrix_on_source, _POSE_SIZE, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return patch, matrix


def skin_colour_model(lab: np.ndarray, sample_mask: np.ndarray, channels: tuple[int, ...] = (0, 1, 2),
                      floor_std: tuple[float, ...] = (5.0, 2.0, 2.0)) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Gaussian colour model (mean, inverse covariance) of sample pixels in OpenCV 8-bit Lab.

    Parameters
    ----------
    lab : ndarray uint8 HxWx3, OpenCV Lab (L* x 2.55, a* + 128, b* + 128)
    sample_mask : bool HxW, pixels known to be skin
    channels : which Lab channels to model, e.g. (1, 2) for chroma only
    floor_std : per-channel standard deviation floors (same order as ``channels``), so a very
        uniform sample does not make the model reject ordinary skin variation

    Returns
    -------
    (mean, inverse covariance, channels)
    """
    x = lab[..., list(channels)][sample_mask].astype(np.float64)
    mean = x.mean(axis=0)
    cov = np.atleast_2d(np.cov(x, rowvar=False)) + np.diag(np.square(floor_std))
    return mean, np.linalg.inv(cov), tuple(channels)


def colour_distance(lab: np.ndarray, model) -> np.ndarray:
    """Mahalanobis distance (float32 HxW) of each pixel to a :func:`skin_colour_model`."""
    mean, inv_cov, channels = model
    d = lab[..., list(channels)].astype(np.float32) - mean.astype(np.float32)
    return np.sqrt(np.maximum(0.0, np.einsum("hwi,ij,hwj->hw", d, inv_cov.astype(np.float32), d)))


def estimate_pose(rgb: np.ndarray, right_eye, left_eye) -> dict:
    """Roll, yaw, pitch and mouth position from the eye centres and the face's pixels.

    Returns
    -------
    dict with ``roll_deg``, ``yaw_deg``, ``pitch_deg`` (float degrees), ``mouth`` ((x, y) px
    in ``rgb``), ``eye_mouth_ratio`` and ``skin_extent_ratio`` (floats).
    """
    roll = float(np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])))
    patch, matrix = pose_patch(rgb, right_eye, left_eye)
    lab = cv2.cvtColor(patch, cv2.COLOR_RGB2Lab)
    valid = patch.any(axis=2)
    eye_y = _POSE_EYES[0][1]
    mid_x = (_POSE_EYES[0][0] + _POSE_EYES[1][0]) / 2
    iod = _POSE_IOD

    # Mouth: centroid of the reddest pixels (lips, CIELAB a*) in the band below the nose;
    # with an open smile the teeth split the lips, and the centroid falls between them.
    y0, y1 = int(eye_y + 0.65 * iod), int(eye_y + 1.45 * iod)
    x0, x1 = int(mid_x - 0.4 * iod), int(mid_x + 0.4 * iod)
    redness = cv2.GaussianBlur(lab[..., 1].astype(np.float32), (0, 0), 1.5)[y0:y1, x0:x1]
    weights = np.maximum(redness - np.percentile(redness, 80), 0.0) * valid[y0:y1, x0:x1]
    if weights.sum() > 0:
        yy, xx = np.mgrid[y0:y1, x0:x1]
        mouth_x = float((weights * xx).sum() / weights.sum())
        mouth_y = float((weights * yy).sum() / weights.sum())
    else:
        mouth_x, mouth_y = mid_x, eye_y + NOMINAL_EYE_MOUTH_RATIO * iod
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    mouth = tuple(float(v) for v in inverse @ np.array([mouth_x, mouth_y, 1.0]))
    eye_mouth_ratio = float(np.hypot(mouth_x - mid_x, mouth_y - eye_y) / iod)
    pitch = float(np.degrees(np.arccos(np.clip(eye_mouth_ratio / NOMINAL_EYE_MOUTH_RATIO, 0.0, 1.0))))

    # Yaw: skin extent either side of the eye midpoint at cheek level.
    sample = np.zeros(valid.shape, bool)
    sy0, sy1 = int(eye_y + 0.3 * iod), int(eye_y + 0.6 * iod)
    # Sample close to the midline: on a turned head the far cheek is compressed towards it.
    sample[sy0:sy1, int(mid_x - 0.5 * iod) : int(mid_x - 0.2 * iod)] = True
    sample[sy0:sy1, int(mid_x + 0.2 * iod) : int(mid_x + 0.5 * iod)] = True
    sample[int(eye_y + 0.25 * iod) : int(eye_y + 0.55 * iod), int(mid_x - 0.1 * iod) : int(mid_x + 0.1 * iod)] = True
    sample &= valid
    ratio = 0.0
    if sample.sum() > 50:
        # Lightness is modelled too: hair and backdrops often share skin's hue, not its lightness.
        skin = (colour_distance(lab, skin_colour_model(lab, sample)) < 3.0) & valid
        skin = cv2.morphologyEx(skin.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)
        # The face is the skin component under the eye midpoint; its outermost pixels per row
        # are the face edges (nostril shadows or freckles inside do not shorten the extent).
        _, labels = cv2.connectedComponents(skin.astype(np.uint8), connectivity=8)
        rows = range(int(eye_y + 0.3 * iod), int(eye_y + 0.6 * iod), 2)
        label = np.bincount(labels[list(rows), int(mid_x - 0.2 * iod) : int(mid_x + 0.2 * iod)].ravel()).argmax()
        left_ext, right_ext = [], []
        for y in rows if label else ():
            xs = np.flatnonzero(labels[y] == label)
            if xs.size:
                left_ext.append(mid_x - xs[0])
                right_ext.append(xs[-1] - mid_x)
        if left_ext:
            lw, rw = float(np.median(left_ext)), float(np.median(right_ext))
            ratio = (lw - rw) / max(1.0, lw + rw)
    # Cylinder head whose visible skin ends at +-FACE_EDGE_ANGLE_DEG from the facing direction:
    # (L - R) / (L + R) = tan(yaw) * tan(edge / 2).
    yaw = float(np.degrees(np.arctan(ratio / np.tan(np.radians(FACE_EDGE_ANGLE_DEG) / 2))))
    return {
        "roll_deg": roll,
        "yaw_deg": yaw,
        "pitch_deg": pitch,
        "mouth": mouth,
        "eye_mouth_ratio": eye_mouth_ratio,
        "skin_extent_ratio": float(ratio),
    }
