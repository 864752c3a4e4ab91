"""Helpers of the capture-side imaging tests: detection as the pipeline does it, truth geometries.

Fixtures (the synthetic photos) are in conftest.py.
"""

from __future__ import annotations

import numpy as np

from imaging.face import FaceGeometry, detect_face
from imaging.geometry import apply_affine
from imaging.quality import GATE_DECODE_LONG_SIDE
from imaging.raster import downscale_long_side
from imaging.testing import synthetic


def detect(photo: synthetic.SyntheticPhoto) -> FaceGeometry | None:
    """Detect on a copy downscaled to the upload gate's long side; coordinates in ``photo`` px."""
    small, factor = downscale_long_side(photo.rgb, GATE_DECODE_LONG_SIDE, resampling="exact")
    geometry = detect_face(small)
    return None if geometry is None else geometry.scaled(1.0 / factor)


def truth_geometry(photo: synthetic.SyntheticPhoto, **pose) -> FaceGeometry:
    """A FaceGeometry built from the synthetic truth (for testing later stages in isolation)."""
    roll = float(np.degrees(np.arctan2(photo.left_eye[1] - photo.right_eye[1], photo.left_eye[0] - photo.right_eye[0])))
    values = dict(roll_deg=roll, yaw_deg=0.0, pitch_deg=0.0, n_faces=1, confidence=1.0, eye_mouth_ratio=1.0)
    values.update(pose)
    return FaceGeometry(box=photo.face_box, right_eye=photo.right_eye, left_eye=photo.left_eye, mouth=photo.mouth,
                        image_size=(photo.rgb.shape[1], photo.rgb.shape[0]), **values)


def eye_error_px(geometry: FaceGeometry, photo: synthetic.SyntheticPhoto) -> float:
    """Largest of the two eye-centre errors, px of ``photo``."""
    return max(float(np.hypot(*np.subtract(geometry.right_eye, photo.right_eye))),
               float(np.hypot(*np.subtract(geometry.left_eye, photo.left_eye))))


def truth_in_canonical(canonical, photo: synthetic.SyntheticPhoto) -> np.ndarray:
    """Truth eye centres mapped into a canonical face's frame, (2, 2) px."""
    return apply_affine(canonical.to_canonical, np.array([photo.right_eye, photo.left_eye]))
