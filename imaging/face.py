"""Face geometry from a photo, offline: face box, eye centres, mouth, pose, face count.

Method
------
Two small neural networks of Google's MediaPipe (Apache-2.0), vendored as TensorFlow Lite
files in ``imaging/models`` (SHA-256 checked when loaded) and run with OpenCV's DNN module
(``cv2.dnn.readNetFromTFLite``, classic engine; no MediaPipe package is needed):

1. Face boxes: BlazeFace short range (Bazarevsky et al. 2019, "BlazeFace: Sub-millisecond
   Neural Face Detection on Mobile GPUs"), 128x128 input, 896 SSD anchors, on a letterboxed
   copy of the whole photo. When no face at least :data:`TILE_SEARCH_BELOW` of the short side
   wide is found, overlapping square tiles are searched too, so the small faces of a group
   photo are counted (a selfie's face is found in the whole view).
2. Landmarks: FaceMesh (Kartynnik et al. 2019, "Real-time Facial Surface Geometry from
   Monocular Video on Mobile GPUs"), 468 3-D points from a 192x192 crop around each box,
   rotated upright by the detector's eye keypoints, plus the network's face-presence score
   (:attr:`FaceGeometry.face_score`): animals, drawings and objects score low.
3. From the landmarks: eye centres (mean of each eye's two corners: the middle of the eye
   opening), mouth corners and inner lips (mouth width and opening, for the expression check),
   roll from the eye line, yaw and pitch from the 3-D face axes (cheek-to-cheek and
   brow-to-chin vectors of the mesh).
4. The skin's fine texture (:mod:`imaging.detail`), kept with the geometry so a follow-up's
   quality gate can compare it with its baseline's (smoothing filters).

Conventions: coordinates (x, y) px in the image passed in; right/left are the SUBJECT's
(the right eye is the image-left eye: photos are assumed unmirrored); angles in degrees.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.detail import face_detail_crop, fine_texture

import cv2  # noqa: E402

MODELS_DIR = Path(__file__).with_name("models")
#: Vendored model files and their SHA-256 (checked at load: a changed file is refused).
MODEL_FILES = {
    "detector": ("face_detection_short_range.tflite", "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "mesh": ("face_landmark.tflite", "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
}

#: Detector input side (px) and its minimum score for a box.
DETECTOR_INPUT = 128
DETECTION_SCORE_MIN = 0.5
#: Boxes overlapping more than this (intersection over union) are one face.
NMS_IOU = 0.3
#: Tiles are searched when the largest face found in the whole view is narrower than this
#: fraction of the short side (a selfie's face is far wider; a group photo's faces are not).
TILE_SEARCH_BELOW = 0.1
#: Tile side as a fraction of the photo's short side; tiles overlap by half.
TILE_FRACTION = 0.4
#: FaceMesh input side (px) and the crop side as a multiple of the detector's box.
MESH_INPUT = 192
MESH_CROP_SCALE = 1.5
#: A detection counts as a face only when FaceMesh's face-presence score reaches this.
FACE_SCORE_MIN = 0.5
#: Secondary faces at least this fraction of the subject's box width count as faces.
SECOND_FACE_MIN_RELATIVE_SIZE = 0.5
#: Pitch of the mesh's brow-to-chin axis on frontal faces (the mesh's forehead point lies
#: behind its chin point): subtracted so a frontal face reads ~0 (median over the 33 portraits
#: of the real-face set, whose signed values span -12..+22).
PITCH_OFFSET_DEG = 4.5

# FaceMesh landmark indices (MediaPipe's canonical face model).
_RIGHT_EYE_CORNERS = (33, 133)   # subject's right eye (image left): outer, inner
_LEFT_EYE_CORNERS = (362, 263)   # subject's left eye: inner, outer
_MOUTH_CORNERS = (61, 291)
_INNER_LIPS = (13, 14)           # upper and lower inner lip, on the midline
_LOWER_LIP_EDGE = 17             # the lower lip's lower edge, on the midline
_CHIN_TIP = 152                  # the lowest point of the chin, on the midline
_FACE_SIDES = (234, 454)         # right and left cheek contour at eye level
_BROW_CHIN = (10, _CHIN_TIP)     # top of forehead, chin


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
        Centre of the mouth (between the inner lips).
    roll_deg : float
        Eye-line angle; positive when the subject's left eye (image-right) is lower.
    yaw_deg : float
        Head turn; positive when the face turns towards the image's right (subject's left).
    pitch_deg : float
        Magnitude of head nod (>= 0).
    n_faces : int
        Number of faces in the photo (>= 1).
    confidence : float
        0..1: detector score x face-presence score.
    eye_mouth_ratio : float
        Eye-midpoint-to-mouth distance / IOD (compare with a baseline for pitch change).
    skin_extent_ratio : float
        Kept for stored geometries of earlier versions (no longer measured: 0).
    image_size : (int, int)
        (width, height) of the image these coordinates refer to.
    face_score : float
        FaceMesh's face-presence score (0..1) of the subject: low for animals, objects and
        most drawings.
    mouth_width_ratio : float
        Mouth-corner distance / IOD (a smile widens the mouth).
    mouth_open_ratio : float
        Inner-lip gap / IOD (a laugh or a teeth-showing smile opens the mouth).
    fine_texture : float
        Fine skin texture of this photo, % (:func:`imaging.detail.fine_texture`): a follow-up
        whose texture fell far below its baseline's was smoothed by a beauty filter.
    lower_lip : (x, y), float px
        The lower lip's lower edge on the midline (FaceMesh point 17); NaN in geometries stored
        before 2026.12.8.
    chin : (x, y), float px
        The chin's tip, the lowest point of the face on the midline (FaceMesh point 152); NaN as
        ``lower_lip``. The chin region lies between the two (:class:`imaging.regions.LowerFace`).
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
    face_score: float = float("nan")
    mouth_width_ratio: float = float("nan")
    mouth_open_ratio: float = float("nan")
    fine_texture: float = float("nan")
    lower_lip: tuple[float, float] = (float("nan"), float("nan"))
    chin: tuple[float, float] = (float("nan"), float("nan"))

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
            lower_lip=s(self.lower_lip),
            chin=s(self.chin),
            image_size=(round(self.image_size[0] * factor), round(self.image_size[1] * factor)),
        )


class ModelError(RuntimeError):
    """A vendored model file is missing or is not the file this code was validated with."""


_NET_LOCK = threading.Lock()  # a cv2.dnn.Net is not safe to run from two threads at once


@functools.cache
def _net(name: str):
    filename, expected = MODEL_FILES[name]
    path = MODELS_DIR / filename
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"model file {path} is missing") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ModelError(f"model file {path} has SHA-256 {digest}, expected {expected}")
    return cv2.dnn.readNetFromTFLite(str(path), cv2.dnn.ENGINE_CLASSIC)


def _run(name: str, blob: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
    with _NET_LOCK:
        net = _net(name)
        net.setInput(blob)
        return [np.array(o) for o in net.forward(outputs)]


@functools.lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    """BlazeFace short-range SSD anchor centres (896 x 2, fractions of the input side).

    MediaPipe's options for this model: 4 layers with strides 8, 16, 16, 16, two anchors per
    layer, layers of equal stride share one grid, fixed anchor size, offset 0.5.
    """
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        grid = DETECTOR_INPUT // stride
        for y in range(grid):
            for x in range(grid):
                centres.extend([((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell)
    return np.array(centres, np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


@dataclass(frozen=True)
class Detection:
    """One BlazeFace box: score, (x, y, w, h) px, and its 6 keypoints (x, y) px
    (subject's right eye, left eye, nose tip, mouth, right ear, left ear)."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(1e-9, a[2] * a[3] + b[2] * b[3] - inter)


def _detect_square(rgb: np.ndarray, x0: int, y0: int, side: int) -> list[Detection]:
    """BlazeFace on the square ``[x0, x0 + side) x [y0, y0 + side)`` of ``rgb`` (padded black)."""
    h, w = rgb.shape[:2]
    scale = DETECTOR_INPUT / side
    # Area-downscale the square (pixels outside the photo are black, as in MediaPipe's letterbox).
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    source = rgb
    if scale < 0.5:
        # Pre-shrink with area averaging so the warp does not alias.
        source = cv2.resize(rgb, None, fx=2 * scale, fy=2 * scale, interpolation=cv2.INTER_AREA)
        fx, fy = source.shape[1] / w, source.shape[0] / h
        matrix = np.array([[scale / fx, 0.0, -x0 * scale], [0.0, scale / fy, -y0 * scale]])
    square = cv2.warpAffine(source, matrix, (DETECTOR_INPUT, DETECTOR_INPUT), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    blob = (square.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
    scores, regressors = _run("detector", blob, ["classificators", "regressors"])
    scores = _sigmoid(scores.reshape(-1))
    regressors = regressors.reshape(-1, 16) / DETECTOR_INPUT
    anchors = _anchors()
    found = []
    for i in np.flatnonzero(scores >= DETECTION_SCORE_MIN):
        r = regressors[i]
        cx, cy = r[0] + anchors[i, 0], r[1] + anchors[i, 1]
        box = ((cx - r[2] / 2) * side + x0, (cy - r[3] / 2) * side + y0, r[2] * side, r[3] * side)
        keypoints = (r[4:].reshape(6, 2) + anchors[i]) * side + (x0, y0)
        found.append(Detection(float(scores[i]), tuple(float(v) for v in box), keypoints.astype(np.float64)))
    return found


def _suppress(detections: list[Detection]) -> list[Detection]:
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        if all(_iou(d.box, k.box) <= NMS_IOU for k in kept):
            kept.append(d)
    return kept


def detect_face_boxes(rgb: np.ndarray) -> list[Detection]:
    """Every face box BlazeFace finds, largest first (see the module's method, step 1).

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3 (RGB)

    Returns
    -------
    list of :class:`Detection`, in ``rgb`` px.
    """
    h, w = rgb.shape[:2]
    side = max(h, w)
    found = _detect_square(rgb, (w - side) // 2, (h - side) // 2, side)
    short = min(h, w)
    if not any(d.box[2] >= TILE_SEARCH_BELOW * short for d in found):
        tile = max(32, int(TILE_FRACTION * short))
        step = tile // 2
        for y0 in _starts(h, tile, step):
            for x0 in _starts(w, tile, step):
                found.extend(_detect_square(rgb, x0, y0, tile))
    return sorted(_suppress(found), key=lambda d: -d.box[2])


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


@dataclass(frozen=True)
class Mesh:
    """FaceMesh output for one detection: 468 points (x, y px in the photo; z in px, smaller
    is nearer the camera) and the face-presence score."""

    points: np.ndarray
    face_score: float


def face_mesh(rgb: np.ndarray, detection: Detection) -> Mesh:
    """Run FaceMesh on the crop around one detection (see the module's method, step 2)."""
    right_eye, left_eye = detection.keypoints[0], detection.keypoints[1]
    angle = np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])
    x, y, bw, bh = detection.box
    centre = np.array([x + bw / 2, y + bh / 2])
    scale = MESH_INPUT / (MESH_CROP_SCALE * max(bw, bh))
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    linear = np.array([[c, s], [-s, c]])
    matrix = np.hstack([linear, (np.array([MESH_INPUT / 2, MESH_INPUT / 2]) - linear @ centre)[:, None]])
    source, on_source = rgb, matrix
    if scale < 0.5:
        # Pre-shrink with area averaging so the warp does not alias.
        pre = 2 * scale
        source = cv2.resize(rgb, None, fx=pre, fy=pre, interpolation=cv2.INTER_AREA)
        fx, fy = source.shape[1] / rgb.shape[1], source.shape[0] / rgb.shape[0]
        on_source = matrix @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1.0]])
    crop = cv2.warpAffine(source, on_source, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    blob = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    presence, points = _run("mesh", blob, ["conv2d_31", "conv2d_21"])
    points = points.reshape(468, 3).astype(np.float64)
    back = cv2.invertAffineTransform(matrix)
    xy = points[:, :2] @ back[:, :2].T + back[:, 2]
    return Mesh(np.column_stack([xy, points[:, 2] / scale]), float(_sigmoid(float(presence.reshape(-1)[0]))))


def pose_from_mesh(points: np.ndarray) -> tuple[float, float, float]:
    """(roll, yaw, pitch) in degrees from the 3-D mesh (see :class:`FaceGeometry` for signs).

    Roll is the eye line's angle; yaw and pitch are the angles out of the image plane of the
    mesh's cheek-to-cheek and brow-to-chin axes (pitch as a magnitude).
    """
    right_eye = points[list(_RIGHT_EYE_CORNERS), :2].mean(axis=0)
    left_eye = points[list(_LEFT_EYE_CORNERS), :2].mean(axis=0)
    roll = float(np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])))
    across = points[_FACE_SIDES[1]] - points[_FACE_SIDES[0]]
    down = points[_BROW_CHIN[1]] - points[_BROW_CHIN[0]]
    # Turning towards the image's right brings the subject's right cheek (image left) nearer
    # the camera (smaller z) than the left: the cheek-to-cheek axis points away (dz > 0).
    yaw = float(np.degrees(np.arctan2(across[2], np.hypot(across[0], across[1]))))
    pitch = float(np.degrees(np.arctan2(down[2], np.hypot(down[0], down[1])))) - PITCH_OFFSET_DEG
    return roll, yaw, abs(pitch)


def geometry_from_mesh(mesh: Mesh, detection: Detection, n_faces: int, image_size: tuple[int, int]) -> FaceGeometry:
    """The subject's :class:`FaceGeometry` from its mesh."""
    p = mesh.points
    right_eye = tuple(float(v) for v in p[list(_RIGHT_EYE_CORNERS), :2].mean(axis=0))
    left_eye = tuple(float(v) for v in p[list(_LEFT_EYE_CORNERS), :2].mean(axis=0))
    mouth = tuple(float(v) for v in p[list(_INNER_LIPS), :2].mean(axis=0))
    iod = max(1e-6, float(np.hypot(left_eye[0] - right_eye[0], left_eye[1] - right_eye[1])))
    mid = np.add(right_eye, left_eye) / 2
    roll, yaw, pitch = pose_from_mesh(p)
    return FaceGeometry(
        box=tuple(float(v) for v in detection.box),
        right_eye=right_eye,
        left_eye=left_eye,
        mouth=mouth,
        roll_deg=roll,
        yaw_deg=yaw,
        pitch_deg=pitch,
        n_faces=n_faces,
        confidence=float(detection.score * mesh.face_score),
        eye_mouth_ratio=float(np.hypot(*(np.subtract(mouth, mid))) / iod),
        image_size=image_size,
        face_score=mesh.face_score,
        mouth_width_ratio=float(np.hypot(*(p[_MOUTH_CORNERS[1], :2] - p[_MOUTH_CORNERS[0], :2])) / iod),
        mouth_open_ratio=float(np.hypot(*(p[_INNER_LIPS[1], :2] - p[_INNER_LIPS[0], :2])) / iod),
        lower_lip=tuple(float(v) for v in p[_LOWER_LIP_EDGE, :2]),
        chin=tuple(float(v) for v in p[_CHIN_TIP, :2]),
    )


def detect_face(rgb: np.ndarray) -> FaceGeometry | None:
    """Find the subject's face, eyes, mouth and pose, and count the faces.

    Parameters
    ----------
    rgb : ndarray, uint8, HxWx3, sRGB RGB
        Any size; for speed pass a reduced decode (long side ~1000 px is plenty).

    Returns
    -------
    FaceGeometry or None
        None when the detector finds no face box (the quality gate reports ``no_face``). A box
        whose mesh says "no face" (an animal, a drawing) is returned with its low
        :attr:`FaceGeometry.face_score`, for the gate to report with its value.

    Notes
    -----
    The subject is the largest box whose mesh scores as a face (else the largest box). Other
    faces are counted when they score as faces, are at least
    :data:`SECOND_FACE_MIN_RELATIVE_SIZE` of the subject's width and do not overlap it.
    """
    detections = detect_face_boxes(rgb)
    if not detections:
        return None
    meshes = [face_mesh(rgb, d) for d in detections[:8]]
    faces = [i for i, m in enumerate(meshes) if m.face_score >= FACE_SCORE_MIN]
    subject = faces[0] if faces else 0
    width = detections[subject].box[2]
    n_faces = 1 + sum(1 for i in faces if i != subject and detections[i].box[2] >= SECOND_FACE_MIN_RELATIVE_SIZE * width)
    geometry = geometry_from_mesh(meshes[subject], detections[subject], n_faces, (int(rgb.shape[1]), int(rgb.shape[0])))
    return replace(geometry, fine_texture=fine_texture(*face_detail_crop(rgb, geometry)))
