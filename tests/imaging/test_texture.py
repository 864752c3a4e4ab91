"""Texture: IBSI digital-phantom GLCM reference values, fixed quantisation, line/pore/roughness."""

import numpy as np
import pytest

from imaging import texture
from imaging.geometry import CANONICAL_PX_PER_MM

# IBSI digital phantom (5 x 4 x 4 voxels (x, y, z); grey levels 1..6, 2 and 5 absent; 74 voxels
# in the ROI, one internal voxel excluded), from the IBSI reference manual (Zwanenburg et al.,
# arXiv:1612.07003, chapter "Reference data sets", figure of the test volume) and the data set
# https://github.com/theibsi/data_sets/tree/master/ibsi_1_digital_phantom. One row (y) per line,
# 5 columns (x); None = outside the ROI mask (20/19/17/18 ROI voxels in slices z = 1..4).
N = None
IBSI_PHANTOM_SLICES = [
    [[1, 4, 4, 1, 1], [1, 4, 6, 1, 1], [4, 1, 6, 4, 1], [4, 4, 6, 4, 1]],
    [[1, 4, 4, 1, 1], [1, 1, 6, 1, 1], [N, 1, 3, 1, 1], [4, 4, 6, 1, 1]],
    [[1, 4, 4, N, N], [1, 1, 1, 1, 1], [1, 1, N, 1, 1], [1, 1, 6, 1, 1]],
    [[1, 4, 4, N, N], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 6, 1, 1]],
]

# IBSI reference values, digital phantom, GLCM "2D, averaged" aggregation (features per slice
# and direction, then averaged), distance 1, fixed bin size 1 (levels = phantom values, Ng 6).
# Source: IBSI reference manual (Zwanenburg et al. 2020, arXiv:1612.07003v11, section 3.6),
# all with "very strong" consensus (also tabulated in PolusAI/nyxus tests/test_2d_glcm_ibsi.h).
# The manual gives 3 significant digits, so agreement is checked to that precision.
IBSI_GLCM_2D_AVERAGED = {
    "joint_maximum": 0.519,
    "joint_average": 2.14,
    "joint_variance": 2.69,
    "joint_entropy": 2.05,
    "difference_average": 1.42,
    "difference_variance": 2.9,
    "difference_entropy": 1.4,
    "sum_average": 4.28,
    "sum_variance": 5.47,
    "sum_entropy": 1.6,
    "angular_second_moment": 0.368,
    "contrast": 5.28,
    "dissimilarity": 1.42,
    "inverse_difference": 0.678,
    "inverse_difference_normalised": 0.851,
    "inverse_difference_moment": 0.619,
    "inverse_difference_moment_normalised": 0.899,
    "inverse_variance": 0.0567,
    "correlation": -0.0121,
    "autocorrelation": 5.09,
    "cluster_tendency": 5.47,
    "cluster_shade": 7.0,
    "cluster_prominence": 79.1,
    "information_correlation_1": -0.155,
    "information_correlation_2": 0.487,
}


def _phantom_slice(rows):
    levels = np.array([[1 if v is None else v for v in r] for r in rows], dtype=np.int32)
    mask = np.array([[v is not None for v in r] for r in rows])
    return levels, mask


def _ibsi_2d_averaged():
    """Features per slice and direction, averaged over all 16 matrices (IBSI 2D:avg)."""
    per_matrix = []
    for rows in IBSI_PHANTOM_SLICES:
        levels, mask = _phantom_slice(rows)
        for off in texture.GLCM_OFFSETS:
            per_matrix.append(texture.glcm_features(texture.glcm_matrix(levels, mask, 6, off)))
    return {k: float(np.mean([f[k] for f in per_matrix])) for k in per_matrix[0]}


def test_phantom_has_74_roi_voxels():
    assert sum(_phantom_slice(r)[1].sum() for r in IBSI_PHANTOM_SLICES) == 74


@pytest.mark.parametrize("name", sorted(IBSI_GLCM_2D_AVERAGED))
def test_glcm_matches_ibsi_phantom(name):
    got = _ibsi_2d_averaged()[name]
    ref = IBSI_GLCM_2D_AVERAGED[name]
    # Rounded to 3 significant digits in the manual: half a unit in the last digit.
    tol = 0.5 * 10 ** (np.floor(np.log10(abs(ref))) - 2)
    assert abs(got - ref) <= tol, (name, got, ref)


def test_glcm_pairs_only_inside_mask():
    levels = np.array([[1, 2, 3]], dtype=np.int32)
    mask = np.array([[True, True, False]])
    counts = texture.glcm_matrix(levels, mask, 3, (0, 1))
    assert counts.sum() == 2 and counts[0, 1] == 1 and counts[1, 0] == 1


def test_quantisation_is_fixed_not_per_image():
    low = np.full((4, 4), 40.0)
    high = np.full((4, 4), 60.0)
    assert texture.quantise_fixed_bins(low, 2.0, 0.0, 50)[0, 0] == 21
    assert texture.quantise_fixed_bins(high, 2.0, 0.0, 50)[0, 0] == 31
    # A brighter image has a higher joint average (per-image min/max would make them equal).
    mask = np.ones((4, 4), bool)
    assert texture.glcm_lstar_features(texture.quantise_lstar(high), mask)["joint_average"] > texture.glcm_lstar_features(texture.quantise_lstar(low), mask)[
        "joint_average"
    ]


def _canvas(seed=0, shape=(400, 400)):
    rng = np.random.default_rng(seed)
    import cv2

    noise = cv2.GaussianBlur(rng.normal(0, 0.01, shape).astype(np.float32), (0, 0), 1.0)
    return (0.5 + noise).astype(np.float32)


def _draw_lines(shading, n, depth, seed):
    import cv2

    rng = np.random.default_rng(seed)
    out = shading.copy()
    layer = np.zeros_like(out)
    for _ in range(n):
        y = int(rng.integers(40, 360))
        x0 = int(rng.integers(20, 100))
        cv2.line(layer, (x0, y), (x0 + 250, y + int(rng.integers(-20, 20))), 1.0, 2, cv2.LINE_AA)
    return out + depth * cv2.GaussianBlur(layer, (0, 0), 0.8)


def test_wrinkle_density_rises_with_lines():
    ppm = CANONICAL_PX_PER_MM
    mask = np.ones((400, 400), bool)
    base = _canvas()
    densities = []
    for n in (0, 3, 6, 12):
        shading = _draw_lines(base, n, 0.15, seed=1)
        maps = texture.texture_maps(shading, mask, ppm)
        densities.append(texture.line_density_mm_per_cm2(maps["wrinkles"], mask, ppm))
    assert densities[0] < 2.0
    assert all(b > a for a, b in zip(densities, densities[1:])), densities


def test_wrinkle_density_is_per_area_where_a_line_is_accepted():
    # Pigment spots keep lines out of the skin around them (texture_maps' not_lines); that skin is
    # out of the density's area too, so spots covering part of a region leave its line density as
    # it was instead of lowering it by the share they cover (the study's spots -> texture cross-talk).
    ppm = CANONICAL_PX_PER_MM
    mask = np.ones((400, 400), bool)
    import cv2

    rng = np.random.default_rng(2)
    layer = np.zeros(mask.shape, np.float32)
    for y in np.linspace(20, 380, 16):  # lines across the whole width: the same density in every column
        cv2.line(layer, (-10, int(y)), (410, int(y + rng.integers(-12, 12))), 1.0, 2, cv2.LINE_AA)
    shading = _canvas() + 0.15 * cv2.GaussianBlur(layer, (0, 0), 0.8)
    levels = np.ones(mask.shape, np.int32)
    free = texture.region_texture(texture.texture_maps(shading, mask, ppm), levels, mask, ppm)
    spots = np.zeros(mask.shape, bool)
    spots[:, 120:280] = True  # 40 % of the region, across the middle of every line
    maps = texture.texture_maps(shading, mask, ppm, not_lines=spots)
    assert not (maps["wrinkles"] & spots).any() and np.array_equal(maps["line_area"], mask & ~spots)
    spotted = texture.region_texture(maps, levels, mask, ppm)
    assert free["wrinkle_density_mm_per_cm2"] > 5.0
    assert spotted["wrinkle_density_mm_per_cm2"] == pytest.approx(free["wrinkle_density_mm_per_cm2"], rel=0.15)
    # Spots over the whole region leave no skin to read lines on: no value, not zero; nor on less
    # skin than the minimum asked for.
    covered = texture.texture_maps(shading, mask, ppm, not_lines=mask)
    assert np.isnan(texture.region_texture(covered, levels, mask, ppm)["wrinkle_density_mm_per_cm2"])
    almost = np.ones(mask.shape, bool)
    almost[:20, :20] = False
    nearly_covered = texture.texture_maps(shading, mask, ppm, not_lines=almost)
    assert np.isnan(texture.region_texture(nearly_covered, levels, mask, ppm, min_line_pixels=401)["wrinkle_density_mm_per_cm2"])
    assert np.isfinite(texture.region_texture(nearly_covered, levels, mask, ppm, min_line_pixels=400)["wrinkle_density_mm_per_cm2"])


def _gaussian_line(shape, angle_deg, depth, sigma_px, centre=None):
    """A long straight line with a Gaussian cross-profile (sigma in px) through ``centre``."""
    h, w = shape
    cy, cx = centre if centre is not None else (h / 2, w / 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = np.radians(angle_deg)
    across = -(x - cx) * np.sin(t) + (y - cy) * np.cos(t)
    return (depth * np.exp(-across**2 / (2 * sigma_px**2))).astype(np.float32)


@pytest.mark.parametrize("angle_deg", [0.0, 3.75, 20.0, 45.0, 86.0, 135.0])
def test_line_depth_reads_a_matched_line_at_any_angle(angle_deg):
    ppm = CANONICAL_PX_PER_MM
    sigma = texture.LINE_SIGMA_ACROSS_MM * ppm
    line = 0.5 + _gaussian_line((300, 300), angle_deg, 0.08, sigma)
    depth = texture.line_depth(line, ppm)
    centre = depth[140:160, 140:160].max()
    # 0.08 on a filter direction; at least 70 % halfway between two directions (3.75 degrees off).
    assert 0.7 * 0.08 <= centre <= 0.08 * 1.02
    # Beside the line (4 sigma across it) there is no line.
    t = np.radians(angle_deg)
    beside = depth[int(round(150 + 4 * sigma * np.cos(t))), int(round(150 - 4 * sigma * np.sin(t)))]
    assert beside < 0.1 * centre


def test_line_depth_ignores_offsets_and_gradients_and_matches_spatial_filtering():
    import cv2

    ppm = CANONICAL_PX_PER_MM
    y, x = np.mgrid[0:240, 0:260].astype(np.float32)
    ramp = 0.4 + 0.002 * x - 0.001 * y
    assert np.abs(texture.line_depth(ramp, ppm)[60:-60, 60:-60]).max() < 1e-4
    rng = np.random.default_rng(5)
    image = cv2.GaussianBlur(rng.normal(0, 0.02, (240, 260)).astype(np.float32), (0, 0), 1.0)
    fourier = texture.line_depth(image, ppm)
    # The same filters built in space (-s_a^2 d2/dv2 of the anisotropic Gaussian) and applied by
    # direct convolution: the Fourier implementation must agree away from the borders.
    s_a = texture.LINE_SIGMA_ACROSS_MM * ppm
    s_l = texture.LINE_SIGMA_ALONG_MM * ppm
    half = int(np.ceil(4 * s_l))
    ky, kx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    best = None
    for i in range(texture.LINE_ORIENTATIONS):
        t = np.pi * i / texture.LINE_ORIENTATIONS
        u = kx * np.cos(t) + ky * np.sin(t)
        v = -kx * np.sin(t) + ky * np.cos(t)
        g = np.exp(-u**2 / (2 * s_l**2) - v**2 / (2 * s_a**2)) / (2 * np.pi * s_l * s_a)
        kernel = ((1 - v**2 / s_a**2) * g).astype(np.float32)
        r = cv2.filter2D(image, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
        best = r if best is None else np.maximum(best, r)
    spatial = best * 2 * np.sqrt(2)
    inner = (slice(half, -half), slice(half, -half))
    assert np.abs(fourier[inner] - spatial[inner]).max() < 2e-3 * np.abs(spatial[inner]).max()


def test_line_depth_of_an_empty_image_is_empty_and_non_finite_values_are_refused():
    ppm = CANONICAL_PX_PER_MM
    assert texture.line_depth(np.zeros((0, 5), np.float32), ppm).shape == (0, 5)
    image = np.full((40, 40), 0.5, np.float32)
    image[20, 20] = np.nan
    with pytest.raises(ValueError, match="finite"):
        texture.line_depth(image, ppm)


def test_line_depth_prefers_a_line_to_a_spot_of_the_same_depth():
    import cv2

    ppm = CANONICAL_PX_PER_MM
    sigma = texture.LINE_SIGMA_ACROSS_MM * ppm
    line = texture.line_depth(0.5 + _gaussian_line((240, 240), 10.0, 0.1, sigma), ppm)
    spot = np.zeros((240, 240), np.float32)
    cv2.circle(spot, (120, 120), int(round(1.5 * ppm)), 1.0, -1)  # a 3 mm pigment spot
    spot = texture.line_depth(0.5 + 0.1 * cv2.GaussianBlur(spot, (0, 0), 0.2 * ppm), ppm)
    assert spot.max() < 0.5 * line[100:140, 100:140].max()


def _line_length_mm(image, depth_fn, ppm):
    return texture.wrinkle_lines(depth_fn(image, ppm), np.ones(image.shape, bool), ppm).sum() / ppm


def test_the_short_check_removes_a_dark_dots_star_and_keeps_a_lines_length():
    import cv2

    ppm = CANONICAL_PX_PER_MM
    dot = np.zeros((200, 200), np.float32)
    cv2.circle(dot, (100, 100), int(round(0.5 * ppm)), 1.0, -1)  # a 1 mm dot of 0.4 OD (stubble)
    dot = 0.5 + 0.4 * cv2.GaussianBlur(dot, (0, 0), 0.15 * ppm)
    # The long filter alone smears the dot into a star of lines; the short check leaves none.
    assert _line_length_mm(dot, texture.line_depth, ppm) > 8.0
    assert _line_length_mm(dot, texture.checked_line_depth, ppm) == 0.0
    # ... and the texture maps use the checked depth.
    maps = texture.texture_maps(dot, np.ones(dot.shape, bool), ppm)
    assert not maps["wrinkles"].any()
    np.testing.assert_array_equal(maps["line_depth"], texture.checked_line_depth(dot, ppm))
    line = np.zeros((200, 300), np.float32)
    cv2.line(line, (150 - int(10 * ppm), 100), (150 + int(10 * ppm), 100), 1.0, 1)
    line = cv2.GaussianBlur(line, (0, 0), texture.LINE_SIGMA_ACROSS_MM * ppm)
    for depth in (0.06, 0.12, 0.3):  # 20 mm lines, faint to deep
        image = 0.5 + depth * line / line.max()
        assert 18.0 <= _line_length_mm(image, texture.checked_line_depth, ppm) <= 22.5, depth
    # Alone, the long filter reads the deep line past its ends.
    deep = 0.5 + 0.3 * line / line.max()
    assert _line_length_mm(deep, texture.line_depth, ppm) > 28.0


def _sheen(shape, ppm, seed=11, contrast=0.12):
    """Bright specks of sheen (lower density) scattered over skin: 0.6-1 mm, 1.5 mm apart on average."""
    import cv2

    rng = np.random.default_rng(seed)
    layer = np.zeros(shape, np.float32)
    h, w = shape
    for _ in range(int(h * w / (1.5 * ppm) ** 2)):
        cv2.circle(layer, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(round(rng.uniform(0.3, 0.5) * ppm)),
                   1.0, -1)
    return -contrast * cv2.GaussianBlur(np.minimum(layer, 1.0), (0, 0), 0.15 * ppm)


def test_sheen_specks_make_no_lines_and_a_crease_among_them_keeps_its_length():
    import cv2

    ppm = CANONICAL_PX_PER_MM
    skin = _canvas(seed=12, shape=(320, 320)) + _sheen((320, 320), ppm)
    mask = np.ones(skin.shape, bool)
    # The gaps between bright specks read as dark ridges to the line filter ...
    assert _line_length_mm(skin, texture.checked_line_depth, ppm) > 500.0
    # ... not once the specks are flattened to the skin around them (what texture_maps reads).
    assert texture.texture_maps(skin, mask, ppm)["wrinkles"].sum() / ppm < 10.0
    line = np.zeros(skin.shape, np.float32)
    cv2.line(line, (160 - int(10 * ppm), 160), (160 + int(10 * ppm), 160), 1.0, 1)
    line = cv2.GaussianBlur(line, (0, 0), texture.LINE_SIGMA_ACROSS_MM * ppm)
    creased = skin + 0.12 * line / line.max()
    assert 18.0 <= texture.texture_maps(creased, mask, ppm)["wrinkles"].sum() / ppm <= 26.0


def test_flattening_bright_specks_keeps_darker_structure_and_follows_exposure():
    ppm = CANONICAL_PX_PER_MM
    skin = _canvas(seed=13, shape=(200, 240)) + _sheen((200, 240), ppm, seed=14)
    flat = texture.without_bright_specks(skin, ppm)
    assert (flat >= skin).all()  # only bright pixels are raised
    raised = flat > skin
    assert 0.05 < raised.mean() < 0.5
    assert (skin[raised] < 0.5 - texture.BRIGHT_SPECK_OD + 0.01).all()  # and only specks, not skin noise
    # A gain (exposure) adds a constant density: the same pixels are flattened, by the same amount.
    brighter = texture.without_bright_specks(skin - 0.1, ppm)
    np.testing.assert_allclose(brighter, flat - 0.1, atol=1.5 * texture.SKIN_LEVEL_STEP_OD)
    assert texture.without_bright_specks(np.zeros((0, 4), np.float32), ppm).shape == (0, 4)


def test_pores_counted_in_size_band():
    import cv2

    ppm = CANONICAL_PX_PER_MM
    mask = np.ones((400, 400), bool)
    shading = _canvas(seed=3)
    dots = np.zeros_like(shading)
    centres = [(60 + 40 * (k % 8), 60 + 40 * (k // 8)) for k in range(40)]
    for cx, cy in centres:
        cv2.circle(dots, (cx, cy), 2, 1.0, -1)  # ~1 mm diameter
    shading = shading + 0.1 * cv2.GaussianBlur(dots, (0, 0), 0.7)
    found = texture.pore_centres(shading, mask, ppm)
    assert abs(len(found) - 40) <= 2
    assert len(texture.pore_centres(_canvas(seed=3), mask, ppm)) < 5


def test_roughness_ignores_exposure_and_rises_with_detail():
    ppm = CANONICAL_PX_PER_MM
    mask = np.ones((400, 400), bool)
    base = _canvas(seed=4)
    r0 = texture.roughness_index(texture.band_pass(base, mask, ppm), mask)
    r_exposed = texture.roughness_index(texture.band_pass(base + 0.15, mask, ppm), mask)
    r_lined = texture.roughness_index(texture.band_pass(_draw_lines(base, 12, 0.15, 2), mask, ppm), mask)
    assert r_exposed == pytest.approx(r0, rel=1e-3)
    assert r_lined > 1.5 * r0
