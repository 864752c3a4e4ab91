"""Validation of the whole pipeline (``imaging.analysis.analyze``) on synthetic phone photos.

Ground truth comes from a real face (``skimage.data.astronaut()`` via :mod:`imaging.testing.synthetic`)
with physiological changes added in optical density (:mod:`imaging.testing.skin_edits`); see
:mod:`imaging.testing.recapture_study` for the subjects and capture conditions.

Criteria (stated once, asserted below):

- Graded changes: each headline rises strictly monotonically over 5 grades of its own change,
  and over the same grades of each OTHER change moves by less than 25 % of its own total
  response (cross-response < 0.25 x own response).
- Recapture reliability: ICC(2,1) over 6 subjects x 6 captures of at least
  :data:`MIN_ICC` for each listed measure (set from the measured values in
  ``imaging/reliability_table.json``, rounded down, never below Koo & Li "good", 0.75);
  measures below that are marked as known failures with the reason.
- ColorChecker in the frame: region colour after a colour cast and exposure change within
  CIEDE2000 2 of the uncorrected true colour.
- Follow-up shifted, rotated and rescaled against its baseline: registration converges, region
  masks overlap (IoU >= 0.9) and headlines agree within 3 %.
"""

from __future__ import annotations

import colour as colour_science
import numpy as np
import pytest

from imaging.analysis import analyze, baseline_reference_from
from imaging.catalogue import REGION_NAMES, STUDIED_MEASURES
from imaging.colour import apply_colour_correction
from imaging.colour_space import linear_to_lab, srgb_to_linear
from imaging.reliability import reliability
from imaging.testing import synthetic
from imaging.testing.recapture_study import (
    CAPTURES,
    SUBJECTS,
    SkinChange,
    edited_photo,
    recapture,
    run_study,
)

HEADLINES = ("redness", "pigmentation", "texture")
#: Five grades of each kind of change (index 0 = untouched).
GRADES = {
    "redness": [SkinChange(haemoglobin=0.02 * g) for g in range(5)],
    "pigmentation": [SkinChange(spots=15 * g) for g in range(5)],
    "texture": [SkinChange(lines=10 * g) for g in range(5)],
}
MAX_CROSS_RESPONSE = 0.25

#: Minimum ICC(2,1) per measure: the values measured by `bench/reliability.py` (README table,
#: imaging/reliability_table.json) rounded down with a margin, never below 0.75 (Koo & Li "good").
MIN_ICC = {
    "redness": 0.95,  # measured 0.997
    "erythema_index": 0.95,  # measured 0.997
    "wrinkle_density_mm_per_cm2": 0.90,  # measured 0.948
    "a_star": 0.80,  # measured 0.830
    "pigmentation": 0.75,  # measured 0.773
}
#: Measures that do not reach ICC 0.75 under these recaptures, with the measured cause.
KNOWN_UNRELIABLE = {
    "texture": "ICC 0.55: roughness rises with sensor noise and JPEG q70 about as much as 20 fine lines",
    "spot_area_fraction": "ICC 0.72: spot detection (0.06 OD local contrast) moves with noise and JPEG q70",
    "melanin_spread": "ICC 0.21: subjects differ by SD 0.009 OD, about what noise and JPEG add",
    "l_star": "ICC 0.07: absolute exposure is not normalised without a ColorChecker",
    "ita_deg": "ICC 0.07: follows L*; absolute exposure is not normalised without a ColorChecker",
    "melanin_index": "ICC 0.02: 100 log10(1/R) follows exposure without a ColorChecker",
}


def _headlines(change: SkinChange) -> dict:
    result = analyze(recapture(edited_photo(change), CAPTURES[0]))
    assert result.metrics is not None
    return {k: result.metrics[k] for k in HEADLINES}


@pytest.fixture(scope="module")
def graded() -> dict:
    untouched = _headlines(SkinChange())
    return {kind: [untouched] + [_headlines(change) for change in changes[1:]] for kind, changes in GRADES.items()}


@pytest.mark.parametrize("kind", HEADLINES)
def test_headline_rises_monotonically_with_its_own_grade(graded, kind):
    values = [h[kind] for h in graded[kind]]
    assert all(b > a for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("kind, other", [(k, o) for k in HEADLINES for o in HEADLINES if k != o])
def test_headline_moves_far_less_with_other_changes(graded, kind, other):
    own = graded[kind][-1][kind] - graded[kind][0][kind]
    cross = max(abs(h[kind] - graded[other][0][kind]) for h in graded[other])
    assert cross < MAX_CROSS_RESPONSE * own, (kind, other, cross, own)


@pytest.fixture(scope="module")
def study() -> dict:
    return run_study()


def test_every_study_measure_is_asserted_or_flagged():
    assert set(MIN_ICC) | set(KNOWN_UNRELIABLE) == set(STUDIED_MEASURES)
    assert not set(MIN_ICC) & set(KNOWN_UNRELIABLE)
    assert min(MIN_ICC.values()) >= 0.75


def test_study_photos_all_had_faces(study):
    for scores in study["scores"].values():
        assert np.isfinite(scores).all()


@pytest.mark.parametrize("measure", sorted(MIN_ICC))
def test_recapture_reliability_meets_documented_icc(study, measure):
    result = reliability(study["scores"][measure])
    assert result.icc >= MIN_ICC[measure], result
    # MDC95 must be smaller than the spread of the true values, or no change could be seen.
    assert result.mdc95 < np.ptp(study["scores"][measure][:, 0])


@pytest.mark.parametrize("measure", sorted(KNOWN_UNRELIABLE))
def test_known_unreliable_measures_stay_flagged(study, measure, request):
    request.applymarker(pytest.mark.xfail(reason=KNOWN_UNRELIABLE[measure], strict=True))
    assert reliability(study["scores"][measure]).icc >= 0.75


# --- ColorChecker -------------------------------------------------------------------------

def _region_lab(result, masks, corrected: bool) -> dict:
    """Mean CIELAB of each region of ``masks`` in a result's canonical face, with or without
    its colour correction."""
    linear = apply_colour_correction(result.canonical.rgb, result.colour_correction) if corrected \
        else srgb_to_linear(result.canonical.rgb)
    lab = linear_to_lab(linear)
    return {name: lab[masks[name]].mean(axis=0) for name in REGION_NAMES}


def _delta_e00(lab_a, lab_b) -> float:
    return float(colour_science.delta_E(lab_a, lab_b, method="CIE 2000"))


@pytest.mark.parametrize("gains, exposure", [((1.2, 1.0, 0.8), 0.8), ((0.85, 1.0, 1.2), 1.2)])
def test_colorchecker_restores_skin_colour_within_delta_e_2(gains, exposure):
    truth = analyze(synthetic.colorchecker_photo())
    cast = analyze(synthetic.colorchecker_photo(gains, exposure))
    assert cast.color_reference == "colorchecker", cast.colour_correction.details
    # The same skin (the truth photo's regions; both faces land in the same canonical place)
    # so that only colour normalisation is judged, not region placement.
    true_lab = _region_lab(truth, truth.masks, corrected=False)
    corrected = _region_lab(cast, truth.masks, corrected=True)
    for name in REGION_NAMES:
        assert _delta_e00(corrected[name], true_lab[name]) < 2.0, (name, corrected[name], true_lab[name])
    # The reported values (the cast photo's own regions) agree too.
    for name in REGION_NAMES:
        region = cast.regions[name]
        reported = np.array([region["l_star"], region["a_star"], region["b_star"]])
        assert _delta_e00(reported, true_lab[name]) < 2.0, (name, reported, true_lab[name])
    # Without correction the cast would be far outside that tolerance (the test can fail).
    raw = _region_lab(cast, truth.masks, corrected=False)
    assert max(_delta_e00(raw[n], true_lab[n]) for n in REGION_NAMES) > 4.0


# --- Registration of a follow-up ----------------------------------------------------------

@pytest.fixture(scope="module")
def baseline_photo():
    return edited_photo(SUBJECTS[1])


@pytest.fixture(scope="module")
def baseline_result(baseline_photo):
    return analyze(recapture(baseline_photo, CAPTURES[0]))


@pytest.mark.parametrize("dx, dy, degrees, scale", [(60, -40, 5.0, 1.0), (-30, 25, -4.0, 1.15), (0, 0, 2.0, 0.85)])
def test_follow_up_registered_to_baseline_measures_the_same_skin(baseline_photo, baseline_result, dx, dy, degrees, scale):
    moved = synthetic.rotate(synthetic.shift(synthetic.rescale(baseline_photo, scale), dx, dy), degrees)
    follow = analyze(synthetic.to_jpeg(moved.rgb, with_private_metadata=False),
                     baseline=baseline_reference_from(baseline_result))
    assert follow.registration["converged"] is True, follow.registration
    for name in (*REGION_NAMES, "skin"):
        a, b = baseline_result.masks[name], follow.masks[name]
        iou = (a & b).sum() / (a | b).sum()
        assert iou >= 0.9, (name, iou)
    for kind in HEADLINES:
        assert follow.metrics[kind] == pytest.approx(baseline_result.metrics[kind], rel=0.03), kind
