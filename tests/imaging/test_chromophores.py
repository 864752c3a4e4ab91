"""Tsumura-style haemoglobin / melanin separation in optical density."""

import numpy as np
import pytest

from imaging.chromophores import (
    HAEMOGLOBIN_OD_VECTOR,
    MELANIN_OD_VECTOR,
    chromophore_od,
    separate_chromophores,
)
from imaging.colour_space import density_to_linear, optical_density
from measures_fixtures import canonical_face_linear, region_masks


def _skin():
    face = canonical_face_linear()
    return face, region_masks()["skin"]


def test_vectors_have_the_published_spectral_shape():
    # Melanin absorbs most in blue, least in red; haemoglobin most in green, least in red.
    assert MELANIN_OD_VECTOR[2] > MELANIN_OD_VECTOR[0] > MELANIN_OD_VECTOR[1] * 0.9
    assert HAEMOGLOBIN_OD_VECTOR[1] == HAEMOGLOBIN_OD_VECTOR.max()
    assert HAEMOGLOBIN_OD_VECTOR[0] == HAEMOGLOBIN_OD_VECTOR.min()
    assert np.linalg.norm(MELANIN_OD_VECTOR) == pytest.approx(1.0, abs=1e-3)
    assert np.linalg.norm(HAEMOGLOBIN_OD_VECTOR) == pytest.approx(1.0, abs=1e-3)


def test_exact_recovery_of_synthetic_densities():
    rng = np.random.default_rng(0)
    m = rng.uniform(0.0, 0.5, (30, 40)).astype(np.float32)
    h = rng.uniform(0.0, 0.4, (30, 40)).astype(np.float32)
    s = rng.uniform(0.1, 0.6, (30, 40)).astype(np.float32)
    od = chromophore_od(m, h) + s[..., None]
    maps = separate_chromophores(density_to_linear(od))
    assert np.abs(maps.melanin - m).max() < 1e-4
    assert np.abs(maps.haemoglobin - h).max() < 1e-4
    assert np.abs(maps.shading - s).max() < 1e-4


def test_adding_haemoglobin_raises_haemoglobin_only():
    face, skin = _skin()
    before = separate_chromophores(face)
    redder = density_to_linear(optical_density(face) + chromophore_od(0.0, 0.1))
    after = separate_chromophores(redder)
    d_h = (after.haemoglobin - before.haemoglobin)[skin]
    d_m = (after.melanin - before.melanin)[skin]
    assert np.median(d_h) == pytest.approx(0.1, abs=0.005)
    assert abs(np.median(d_m)) < 0.005


def test_adding_melanin_raises_melanin_only():
    face, skin = _skin()
    before = separate_chromophores(face)
    darker = density_to_linear(optical_density(face) + chromophore_od(0.1, 0.0))
    after = separate_chromophores(darker)
    assert np.median((after.melanin - before.melanin)[skin]) == pytest.approx(0.1, abs=0.005)
    assert abs(np.median((after.haemoglobin - before.haemoglobin)[skin])) < 0.005


@pytest.mark.parametrize("exposure", [0.7, 1.3])
def test_exposure_changes_only_shading(exposure):
    face, skin = _skin()
    before = separate_chromophores(face)
    after = separate_chromophores(np.clip(face * exposure, 0, 1))
    unclipped = skin & (face.max(axis=2) * exposure < 0.99)
    assert np.abs((after.melanin - before.melanin)[unclipped]).max() < 1e-3
    assert np.abs((after.haemoglobin - before.haemoglobin)[unclipped]).max() < 1e-3
    assert np.median((after.shading - before.shading)[unclipped]) == pytest.approx(-np.log10(exposure), abs=1e-3)


def test_melanin_vector_agrees_with_the_melanin_absorption_spectrum():
    """Independent derivation: melanin absorption mu_a ~ lambda^-3.33 (Jacques 1998), weighted
    by the (non-negative) sRGB colour-matching functions under D65, gives the OD direction a
    small melanin density produces in linear sRGB. It must match the fixed vector."""
    import colour as colour_science

    shape = colour_science.SpectralShape(400, 700, 5)
    cmfs = colour_science.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape)
    to_srgb = colour_science.models.RGB_COLOURSPACE_sRGB.matrix_XYZ_to_RGB
    bands = np.clip(cmfs.values @ to_srgb.T, 0, None)
    weights = bands * colour_science.SDS_ILLUMINANTS["D65"].copy().align(shape).values[:, None]
    absorption = cmfs.wavelengths**-3.33
    direction = (weights * absorption[:, None]).sum(axis=0) / weights.sum(axis=0)
    direction /= np.linalg.norm(direction)
    assert float(direction @ MELANIN_OD_VECTOR) > 0.98
