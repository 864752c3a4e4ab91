"""Canonical frame and registration to a baseline."""

from __future__ import annotations

import numpy as np
import pytest

from capture_helpers import detect, truth_geometry, truth_in_canonical
from imaging.testing import synthetic
from imaging.align import register_to_baseline, to_canonical, warp_into_frame
from imaging.geometry import CANONICAL_EYES, apply_affine, canonical_shape


@pytest.fixture(scope="module")
def baseline(phone_photo):
    return to_canonical(phone_photo.rgb, detect(phone_photo))


def test_truth_eyes_land_on_canonical_eyes(phone_photo):
    face = to_canonical(phone_photo.rgb, truth_geometry(phone_photo))
    assert face.rgb.shape == canonical_shape() + (3,) and face.rgb.dtype == np.uint8
    assert truth_in_canonical(face, phone_photo) == pytest.approx(np.array(CANONICAL_EYES), abs=1e-6)
    assert face.valid.all()
    # to_image is the inverse of to_canonical.
    points = np.array([[10.0, 20.0], [700.0, 900.0]])
    assert apply_affine(face.to_image, apply_affine(face.to_canonical, points)) == pytest.approx(points)
    assert face.px_per_mm == pytest.approx(256 / 63)


def test_pixels_outside_the_photo_are_marked_invalid(phone_photo):
    cut = synthetic.cut_off(phone_photo, 0.0, "bottom")
    face = to_canonical(cut.rgb, truth_geometry(cut))
    valid_rows = face.valid.any(axis=1)
    assert valid_rows[:700].all() and not valid_rows[-50:].any()
    assert (face.rgb[~face.valid] == 0).all()


def test_downscaling_is_antialiased():
    # A 1-px checkerboard shrunk 8x must become flat grey, not moire.
    checker = ((np.indices((2048, 2048)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(checker[..., None], 3, axis=2)
    matrix = np.array([[0.125, 0.0, 0.0], [0.0, 0.125, 0.0]])
    out, valid = warp_into_frame(rgb, matrix, (256, 256))
    inner = out[4:-4, 4:-4].astype(float)
    assert abs(inner.mean() - 127.5) < 3 and inner.std() < 3


@pytest.mark.parametrize("change", ["rotate", "rescale", "shift_exposure"])
def test_registration_brings_the_same_skin_to_the_same_place(phone_photo, baseline, change):
    follow = {"rotate": lambda p: synthetic.rotate(p, 5),
              "rescale": lambda p: synthetic.rescale(p, 0.75),
              "shift_exposure": lambda p: synthetic.exposure(synthetic.shift(p, 250, 150), 1.2)}[change](phone_photo)
    eye_based = to_canonical(follow.rgb, detect(follow))
    registered = to_canonical(follow.rgb, detect(follow), baseline=baseline)
    assert registered.registration is not None and registered.registration.converged
    assert registered.registration.correlation > 0.95
    target = truth_in_canonical(baseline, phone_photo)
    before = np.abs(truth_in_canonical(eye_based, follow) - target).max()
    after = np.abs(truth_in_canonical(registered, follow) - target).max()
    # Registration removes the detector's jitter: the truth eyes agree to ~1 canonical px.
    assert after < 2.0 and after <= before + 0.5


def test_register_canonical_images_directly(phone_photo, baseline):
    follow = synthetic.rotate(phone_photo, -4)
    eye_based = to_canonical(follow.rgb, detect(follow))
    registered, transform, score = register_to_baseline(eye_based, baseline)
    assert transform.shape == (2, 3) and score > 0.95
    target = truth_in_canonical(baseline, phone_photo)
    assert np.abs(truth_in_canonical(registered, follow) - target).max() < 2.5


def test_registration_falls_back_when_faces_differ(baseline):
    other = synthetic.mirror(synthetic.turn_head(synthetic.phone_photo(), 30))
    face = to_canonical(other.rgb, detect(other))
    # A blank image cannot be registered: ECC must fail or be rejected, never silently applied.
    blank = type(face)(np.full_like(face.rgb, 128), face.valid, face.to_canonical, face.to_image, face.source_size)
    registered, transform, score = register_to_baseline(blank, baseline)
    assert not registered.registration.converged and registered.registration.message
    assert np.array_equal(transform, np.eye(2, 3)) and np.array_equal(registered.rgb, blank.rgb)


def test_half_scale_canonical(phone_photo):
    face = to_canonical(phone_photo.rgb, truth_geometry(phone_photo), scale=0.5)
    assert face.rgb.shape == (512, 384, 3) and face.scale == 0.5
    assert truth_in_canonical(face, phone_photo) == pytest.approx(np.array(CANONICAL_EYES) / 2, abs=1e-6)
