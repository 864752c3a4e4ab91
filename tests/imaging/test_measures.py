"""Per-region measures: formulas, output contract, robustness to bad regions, speed."""

import json
import math

import numpy as np
import pytest

from imaging import measures
from imaging.catalogue import REGION_NAMES
from imaging.colour_space import linear_to_lab
from imaging.testing import skin_edits
from measures_fixtures import PX_PER_MM, canonical_face_linear, region_masks

MASKS = region_masks()


def _uniform(rgb, shape=(200, 200)):
    return np.broadcast_to(np.asarray(rgb, np.float32), (*shape, 3)).copy()


def test_output_contract_is_json_and_complete():
    result = measures.measure_regions(canonical_face_linear(), MASKS, PX_PER_MM)
    json.dumps(result, allow_nan=False)
    assert set(result) == {"metrics", "regions", "reference"} and result["reference"] == "forehead"
    assert set(result["regions"]) == set(REGION_NAMES)
    # Redness is a contrast against the forehead: the forehead itself has no value.
    assert result["regions"]["forehead"]["redness"] is None
    for entry in (result["metrics"], *(v for k, v in result["regions"].items() if k != "forehead")):
        for key in ("redness", "pigmentation", "texture", "a_star", "delta_a_star", "erythema_index",
                    "haemoglobin_density", "red_area_fraction", "l_star", "ita_deg", "melanin_index",
                    "melanin_density", "spot_count", "spot_area_fraction", "melanin_spread", "roughness",
                    "wrinkle_density_mm_per_cm2", "pore_density_per_cm2", "pixel_count"):
            assert isinstance(entry[key], (int, float)), key
        assert "joint_entropy" in entry["glcm"] and "contrast" in entry["glcm"]
    assert result["regions"]["forehead"]["delta_a_star"] == 0.0
    assert result["metrics"]["pixel_count"] == sum(r["pixel_count"] for r in result["regions"].values())


def test_uniform_patch_formulas():
    rgb = np.array([0.45, 0.30, 0.25], np.float32)
    mask = np.ones((200, 200), bool)
    result = measures.measure_regions(_uniform(rgb), {"forehead": mask}, PX_PER_MM)["metrics"]
    lab = linear_to_lab(rgb[None])[0]
    assert result["a_star"] == pytest.approx(lab[1], abs=1e-3)
    assert result["l_star"] == pytest.approx(lab[0], abs=1e-3)
    assert result["ita_deg"] == pytest.approx(math.degrees(math.atan2(lab[0] - 50, lab[2])), abs=1e-3)
    assert result["erythema_index"] == pytest.approx(100 * (math.log10(1 / 0.30) - math.log10(1 / 0.45)), abs=1e-3)
    assert result["melanin_index"] == pytest.approx(100 * math.log10(1 / 0.45), abs=1e-3)
    assert result["spot_count"] == 0 and result["red_area_fraction"] == 0
    assert result["melanin_spread"] == pytest.approx(0.0, abs=1e-6)
    assert result["roughness"] == pytest.approx(0.0, abs=1e-3)


def test_small_or_missing_regions_report_none():
    masks = dict(MASKS)
    masks["chin"] = np.zeros_like(MASKS["chin"])
    masks["chin"][500:505, 380:385] = True
    result = measures.measure_regions(canonical_face_linear(), masks, PX_PER_MM)
    chin = result["regions"]["chin"]
    assert chin["pixel_count"] == 25
    assert chin["redness"] is None and chin["a_star"] is None and chin["glcm"]["contrast"] is None
    without_references = {k: v for k, v in MASKS.items() if k not in ("forehead", "chin", "skin")}
    result = measures.measure_regions(canonical_face_linear(), without_references, PX_PER_MM)
    assert "forehead" not in result["regions"] and result["reference"] is None
    assert result["metrics"]["delta_a_star"] is None  # no reference region
    assert result["metrics"]["redness"] is None  # a contrast against the reference region
    assert result["metrics"]["pigmentation"] is not None


def test_clipped_pixels_are_not_measured():
    face = canonical_face_linear()
    blown = face.copy()
    blown[MASKS["left_cheek"]] = 1.0
    result = measures.measure_regions(blown, MASKS, PX_PER_MM)
    assert result["regions"]["left_cheek"]["pixel_count"] == 0
    assert result["regions"]["left_cheek"]["redness"] is None
    assert result["metrics"]["pixel_count"] == sum(
        MASKS[n].sum() for n in REGION_NAMES if n != "left_cheek"
    )


def test_red_area_and_delta_a_star_show_a_reddened_cheek():
    face = canonical_face_linear()
    base = measures.measure_regions(face, MASKS, PX_PER_MM)["regions"]
    red = measures.measure_regions(skin_edits.add_haemoglobin(face, MASKS["left_cheek"], 0.15), MASKS, PX_PER_MM)
    cheek = red["regions"]["left_cheek"]
    assert cheek["red_area_fraction"] > base["left_cheek"]["red_area_fraction"] + 0.3
    assert cheek["delta_a_star"] > base["left_cheek"]["delta_a_star"] + 3.0
    assert red["regions"]["right_cheek"]["redness"] == pytest.approx(base["right_cheek"]["redness"], abs=1e-6)


def test_spots_are_counted_only_above_their_minimum_size():
    background = _uniform([0.5, 0.38, 0.32], (400, 400))
    mask = np.ones((400, 400), bool)
    grain = 1 + 0.005 * np.random.default_rng(0).standard_normal((400, 400, 1)).astype(np.float32)
    background = background * grain

    def count(diameter_mm):
        img = skin_edits.add_melanin_spots(background, mask, 6, diameter_mm, 0.25, PX_PER_MM, seed=3)
        return measures.measure_regions(img, {"forehead": mask}, PX_PER_MM)["metrics"]

    assert count(0.4)["spot_count"] == 0  # below 1 mm: not a spot at this scale
    three = count(3.0)
    assert three["spot_count"] == 6
    expected_area = 6 * math.pi * 1.5**2 / (400 * 400 / PX_PER_MM**2)
    assert three["spot_area_fraction"] == pytest.approx(expected_area, rel=0.35)
    assert count(3.0)["pigmentation"] > count(0.4)["pigmentation"]


def test_bad_inputs_are_refused_with_a_reason():
    face = canonical_face_linear()
    with pytest.raises(ValueError, match="float"):
        measures.measure_regions((face * 255).astype(np.uint8), MASKS, PX_PER_MM)
    with pytest.raises(ValueError, match="shape"):
        measures.measure_regions(face, {"forehead": np.ones((10, 10), bool)}, PX_PER_MM)
    with pytest.raises(ValueError, match="px_per_mm"):
        measures.measure_regions(face, MASKS, 0.0)


def test_redness_reference_is_the_same_diffuse_skin_whether_or_not_highlights_clip():
    from imaging.measures import SHEEN_FRACTION, diffuse_mean

    rng = np.random.default_rng(5)
    diffuse = rng.normal(0.9, 0.05, 4000)
    sheen = rng.normal(0.3, 0.1, 600)  # specular sheen: white light dilutes the density
    forehead = np.concatenate([diffuse, sheen])
    unclipped = diffuse_mean(forehead, 0)
    # The brightest sheen clips in a brighter photo: those pixels are gone, counted as clipped.
    order = np.argsort(forehead)
    clipped = diffuse_mean(forehead[order[400:]], 400)
    assert clipped == pytest.approx(unclipped, abs=1e-12)
    # ... while a plain mean of what is left would move by far more than the redness MDC.
    assert abs(forehead[order[400:]].mean() - forehead.mean()) > 0.02
    # The reference is the diffuse skin, not diluted by sheen.
    assert unclipped == pytest.approx(np.sort(forehead)[int(SHEEN_FRACTION * forehead.size):].mean())
    assert abs(unclipped - 0.9) < 0.02
    # More clipped than the sheen share: every unclipped pixel is kept; too few pixels: NaN.
    assert diffuse_mean(forehead[order[1500:]], 1500) == pytest.approx(forehead[order[1500:]].mean())
    assert np.isnan(diffuse_mean(forehead[:100], 0))


def test_a_regions_redness_is_its_diffuse_skin_whether_or_not_its_sheen_clips():
    face = canonical_face_linear()
    cheek = MASKS["left_cheek"]
    ys, xs = np.nonzero(cheek)
    cy, cx = ys.mean(), xs.mean()
    yy, xx = np.mgrid[: face.shape[0], : face.shape[1]]
    distance = np.hypot(yy - cy, xx - cx)
    # A highlight on the cheekbone: white light added (it dilutes every density), strongest at its centre.
    sheen = cheek & (distance < 30)
    shiny = face.copy()
    shiny[sheen] += (0.8 * (1 - distance[sheen] / 30))[:, None].astype(np.float32)
    shiny = np.minimum(shiny, 0.97)
    # A brighter photo of the same skin: the highlight's centre clips.
    clipped = shiny.copy()
    clipped[cheek & (distance < 14)] = 0.99
    assert 0.02 < (cheek & (distance < 14)).sum() / cheek.sum() < measures.SHEEN_FRACTION
    unclipped = measures.measure_regions(shiny, MASKS, PX_PER_MM)
    clipped_result = measures.measure_regions(clipped, MASKS, PX_PER_MM)
    # Both read the diffuse skin: far within the redness MDC (~0.6 centi-OD) of each other, the
    # cheek and all skin (each region leaves out its own sheen; the clipped pixels keep their weight) ...
    assert clipped_result["regions"]["left_cheek"]["redness"] == pytest.approx(
        unclipped["regions"]["left_cheek"]["redness"], abs=0.05)
    assert clipped_result["metrics"]["redness"] == pytest.approx(unclipped["metrics"]["redness"], abs=0.05)
    # All skin is the regions' redness weighted by their skin pixels (the reference has none), the
    # clipped ones included: a highlight that clips keeps its region's weight.
    others = [name for name in REGION_NAMES if name != clipped_result["reference"]]
    weights = [(MASKS[name] & MASKS["skin"]).sum() for name in others]
    assert clipped_result["metrics"]["redness"] == pytest.approx(
        np.average([clipped_result["regions"][name]["redness"] for name in others], weights=weights), abs=1e-9)
    # ... where the plain mean of what each photo measures moves by more than that MDC.
    means = []
    for image in (shiny, clipped):
        maps = measures.compute_maps(image, MASKS["skin"], PX_PER_MM)
        means.append(100 * maps.contrast_haemoglobin[cheek & maps.valid].mean())
    assert abs(means[1] - means[0]) > 1.0


def test_skin_redness_averages_the_regions_with_a_value():
    maps = measures.compute_maps(canonical_face_linear(), MASKS["skin"], PX_PER_MM)
    regions = {name: MASKS[name] for name in REGION_NAMES}
    sizes = {name: int(mask.sum()) for name, mask in regions.items()}
    redness = {"forehead": float("nan"), "left_cheek": 2.0, "right_cheek": None, "nose": 5.0, "chin": -1.0}
    expected = (2.0 * sizes["left_cheek"] + 5.0 * sizes["nose"] - sizes["chin"]) / (
        sizes["left_cheek"] + sizes["nose"] + sizes["chin"])
    assert measures.skin_redness(maps, regions, redness) == pytest.approx(expected)
    # A region missing from the values is left out; none with a value: NaN.
    assert measures.skin_redness(maps, regions, {"nose": 5.0}) == pytest.approx(5.0)
    assert math.isnan(measures.skin_redness(maps, regions, {"forehead": float("nan"), "chin": None}))


def test_the_chin_is_the_reference_when_the_forehead_is_hidden():
    face = canonical_face_linear()
    with_forehead = measures.measure_regions(face, MASKS, PX_PER_MM)
    assert with_forehead["reference"] == "forehead"
    hidden = {k: v for k, v in MASKS.items() if k not in ("forehead", "skin")}
    chin = measures.measure_regions(face, hidden, PX_PER_MM)
    assert chin["reference"] == "chin"
    assert chin["regions"]["chin"]["redness"] is None and chin["regions"]["chin"]["delta_a_star"] == 0.0
    # Another reference shifts every region's redness by the same amount (the two references' difference).
    shifts = [with_forehead["regions"][r]["redness"] - chin["regions"][r]["redness"]
              for r in ("left_cheek", "right_cheek", "nose")]
    assert max(shifts) - min(shifts) < 1e-6
    # Exposure still cancels against the chin.
    darker = measures.measure_regions(face * np.float32(0.6), hidden, PX_PER_MM)
    assert darker["regions"]["left_cheek"]["redness"] == pytest.approx(chin["regions"]["left_cheek"]["redness"], abs=0.05)


def test_a_given_reference_is_kept_and_a_sliver_is_no_reference():
    face = canonical_face_linear()
    # A follow-up keeps its baseline's reference even where the forehead would be chosen.
    kept = measures.measure_regions(face, MASKS, PX_PER_MM, reference="chin")
    assert kept["reference"] == "chin" and kept["regions"]["forehead"]["redness"] is not None
    # A strip of forehead (a fringe down to just above the brows) is measurable as a region but
    # too small to be the reference: the chin is chosen, or nothing when the baseline's was the forehead.
    forehead = MASKS["forehead"]
    rows = np.flatnonzero(forehead.any(axis=1))
    strip = forehead & (np.arange(forehead.shape[0])[:, None] > rows[-1] - 10)
    assert measures.MIN_REGION_PIXELS < strip.sum() < measures.MIN_REFERENCE_AREA_MM2 * PX_PER_MM**2
    fringed = {**{k: v for k, v in MASKS.items() if k != "skin"}, "forehead": strip}
    assert measures.measure_regions(face, fringed, PX_PER_MM)["reference"] == "chin"
    given = measures.measure_regions(face, fringed, PX_PER_MM, reference="forehead")
    assert given["reference"] == "forehead"
    assert given["metrics"]["redness"] is None and given["metrics"]["delta_a_star"] is None
    assert all(entry["redness"] is None for entry in given["regions"].values())
    nothing = {k: v for k, v in MASKS.items() if k not in ("forehead", "chin", "skin")}
    assert measures.measure_regions(face, nothing, PX_PER_MM)["reference"] is None
    with pytest.raises(ValueError, match="reference"):
        measures.measure_regions(face, MASKS, PX_PER_MM, reference="left_cheek")


def test_reference_fill_in_restores_the_whole_regions_mean():
    face = canonical_face_linear()
    forehead = MASKS["forehead"]
    rows = np.flatnonzero(forehead.any(axis=1))
    lower = forehead & (np.arange(forehead.shape[0])[:, None] > np.median(rows))
    # Foreheads are not uniform; this one, moreover, has 0.05 OD more haemoglobin on its lower half.
    face = skin_edits.add_haemoglobin(face, lower, 0.05)
    assert measures.reference_fill_in(face, forehead, forehead, PX_PER_MM) == 0.0
    whole = measures.measure_regions(face, MASKS, PX_PER_MM)
    upper_hidden = {**{k: v for k, v in MASKS.items() if k != "skin"}, "forehead": lower}
    fill_in = measures.reference_fill_in(face, forehead, lower, PX_PER_MM)
    assert abs(fill_in) > 0.01  # the seen (lower) part differs from the whole forehead
    bare = measures.measure_regions(face, upper_hidden, PX_PER_MM, reference="forehead")
    filled = measures.measure_regions(face, upper_hidden, PX_PER_MM, reference="forehead", fill_in=fill_in)
    for region in ("left_cheek", "right_cheek", "nose", "chin"):
        assert abs(bare["regions"][region]["redness"] - whole["regions"][region]["redness"]) > 1.0
        assert filled["regions"][region]["redness"] == pytest.approx(whole["regions"][region]["redness"], abs=1e-3)
