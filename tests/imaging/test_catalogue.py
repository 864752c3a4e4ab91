"""The one definition of every measure and face region (imaging.catalogue) matches what is measured,
the published reliability table and the README."""

from __future__ import annotations

from pathlib import Path

from imaging import catalogue
from imaging.catalogue import (
    ALL_SKIN,
    GROUPS,
    HEADLINE_MEASURES,
    MEASURES,
    REGION_NAMES,
    STUDIED_MEASURES,
    Comparability,
)
from imaging.geometry import CANONICAL_PX_PER_MM
from imaging.measures import measure_regions
from imaging.texture import GLCM_FEATURE_NAMES
from measures_fixtures import canonical_face_linear, region_masks

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_measures_table_is_the_catalogue():
    expected = catalogue.markdown_table()
    assert expected in README.read_text(), ("README measures table differs from imaging.catalogue; paste the "
                                            "output of `python -m imaging.catalogue`:\n" + expected)


def test_every_measured_key_is_defined_and_every_definition_is_measured():
    result = measure_regions(canonical_face_linear(), region_masks(), CANONICAL_PX_PER_MM)
    for entry in (result["metrics"], *result["regions"].values()):
        assert set(entry) - {"pixel_count"} == {m.key for m in MEASURES}
        assert set(entry["glcm"]) == set(GLCM_FEATURE_NAMES)
    assert list(result["regions"]) == list(REGION_NAMES)


def test_definitions_are_complete_and_consistent():
    keys = [m.key for m in MEASURES]
    assert len(keys) == len(set(keys))
    assert HEADLINE_MEASURES == ("redness", "pigmentation", "texture")
    assert [m.group for m in MEASURES] == sorted((m.group for m in MEASURES), key=GROUPS.index)
    for m in MEASURES:
        assert m.label and m.unit and m.formula and m.direction and m.reference and m.value_range, m.key
        assert m.worse_when in ("higher", "lower", None) and isinstance(m.comparability, Comparability)
        assert m.decimals >= 0
    # Absolute colour needs a ColorChecker; densities, ratios and local contrasts do not.
    absolute = {m.key for m in MEASURES if m.comparability is Comparability.NEEDS_COLOUR_REFERENCE}
    assert absolute == {"a_star", "delta_a_star", "erythema_index", "haemoglobin_density", "l_star", "b_star",
                        "ita_deg", "melanin_index", "melanin_density", "glcm"}
    # Nothing that needs a colour chart is studied (charted and flagged as change without one).
    assert not absolute & set(STUDIED_MEASURES)
    assert "Measure listing" in catalogue.__doc__ and "``melanin_index`` - Melanin index" in catalogue.__doc__


def test_studied_measures_are_the_series_measures_in_their_order():
    assert STUDIED_MEASURES == (
        "redness", "pigmentation", "texture", "red_area_fraction", "spot_area_fraction", "melanin_spread",
        "roughness")
    # Every studied measure is worse when higher (more redness, pigment, lines, roughness).
    assert {m.worse_when for m in MEASURES if m.key in STUDIED_MEASURES} == {"higher"}


def test_regions():
    assert REGION_NAMES == ("forehead", "left_cheek", "right_cheek", "nose", "chin")
    assert ALL_SKIN.key == "all_skin" and ALL_SKIN.key not in REGION_NAMES
    assert catalogue.REGION_BY_KEY["left_cheek"].label == "Left cheek"


def test_wrinkle_density_formula_states_the_line_filters_constants():
    from imaging import texture

    formula = catalogue.MEASURE_BY_KEY["wrinkle_density_mm_per_cm2"].formula
    for stated in (f"above {texture.LINE_DEPTH_MIN:g} OD",
                   f"sigma {texture.LINE_SIGMA_ALONG_MM:g} mm and with {texture.LINE_CHECK_SIGMA_ALONG_MM:g} mm along",
                   f"lines >= {texture.WRINKLE_MIN_LENGTH_MM:g} mm",
                   f"over {texture.LINE_ORIENTATIONS} directions",
                   f"s = {texture.LINE_SIGMA_ACROSS_MM:g} mm across",
                   f"more than {texture.BRIGHT_SPECK_OD:g} OD brighter than the median of the "
                   f"{texture.skin_level_window_px(CANONICAL_PX_PER_MM) / CANONICAL_PX_PER_MM:.1f} mm square"):
        assert stated in formula, stated
