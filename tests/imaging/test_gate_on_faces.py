"""The quality gate on the real-face set and its made-bad versions (imaging.testing.made_bad).

Every case is gated once (module fixture); ``python -m bench.gate_on_faces`` prints the same
outcomes as a table. KNOWN_GAPS lists, per photo kind, the photos on which the gate is measured
to be wrong today (see README "Quality codes" and the closing note): a photo newly going wrong
fails the test, and a known gap that becomes right is reported so the list can shrink.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from imaging.testing import faces, made_bad

#: Photos on which the gate is wrong today, per kind, and why.
KNOWN_GAPS = {
    # Natively soft: the blur estimate is 0.47-0.76 % of the face width on these tiny or
    # heavily compressed photos (IOD 57-80 px), above the 0.44 % limit.
    "portrait": {"pyfeat_young_man", "justin_shenk", "john_salley_outdoor"},
    # The 45-degree cylinder warp reads as 13.5 degrees of mesh yaw on this face.
    "turned": {"dajuan_gordon"},
    # Eyes shut, head bowed, in shadow: every check is within its limit (pitch 18.5 < 25).
    "hard_case": {"family_father_laughing"},
    # A painting scores as a face on FaceMesh and its varnish makes its highlights yellow, as a
    # tinted lamp would; a black skull mask is too dark for its colour to say anything: both are
    # refused, but for light and exposure (see test_known_non_faces_are_still_refused).
    "non_face": {"mona_lisa", "skull_mask"},
}


@pytest.fixture(scope="module")
def outcomes() -> list[made_bad.Outcome]:
    faces.fetch()
    return made_bad.evaluate()


def _by_kind(outcomes, kind):
    return [o for o in outcomes if o.case.kind == kind]


@pytest.mark.parametrize("kind", ["portrait", "blurred", "dark", "turned", "smoothed", "hard_case", "group",
                                  "non_face", "expression", "same_expression"])
def test_gate_is_right_on_every_photo_of_the_kind_but_the_known_gaps(outcomes, kind):
    selected = _by_kind(outcomes, kind)
    assert selected, kind
    wrong = {o.case.image_id: o.codes for o in selected if not o.right}
    new = {k: v for k, v in wrong.items() if k not in KNOWN_GAPS.get(kind, set())}
    assert not new, f"newly wrong {kind}: {new}"
    fixed = KNOWN_GAPS.get(kind, set()) - set(wrong)
    assert not fixed, f"known gaps now right (remove them from KNOWN_GAPS): {sorted(fixed)}"


def test_most_of_each_made_bad_kind_is_right(outcomes):
    for kind in ("portrait", "blurred", "dark", "turned", "smoothed"):
        selected = _by_kind(outcomes, kind)
        assert sum(o.right for o in selected) >= 0.8 * len(selected), kind


def test_known_non_faces_are_still_refused(outcomes):
    for outcome in _by_kind(outcomes, "non_face"):
        assert not outcome.passed, outcome.case.image_id


def test_smoothing_is_a_warning_that_keeps_the_photo_usable(outcomes):
    warned = [o for o in _by_kind(outcomes, "smoothed") if "smoothing_filter" in o.codes]
    assert warned
    for outcome in warned:
        report = outcome.report
        assert report.texture_comparable is False
        assert "smoothing_filter" not in report.codes  # a warning, not a problem
        assert report.to_dict()["warnings"][0]["code"] == "smoothing_filter"


def test_every_check_reports_its_value_and_threshold(outcomes):
    for outcome in outcomes:
        for name, check in outcome.report.checks.items():
            assert isinstance(check.value, float) and not math.isnan(check.value), (outcome.case.image_id, name)
            assert check.threshold is not None


def test_detected_eyes_match_the_hand_annotations_on_every_portrait():
    from imaging.face import detect_face

    for entry in faces.portraits():
        geometry = detect_face(faces.load(entry.id))
        assert geometry is not None and geometry.n_faces == 1, entry.id
        error = max(np.hypot(*np.subtract(geometry.right_eye, entry.eye_right)),
                    np.hypot(*np.subtract(geometry.left_eye, entry.eye_left)))
        assert error < 0.15 * entry.iod, (entry.id, error / entry.iod)


def test_a_changed_model_file_is_refused(tmp_path, monkeypatch):
    from imaging import face

    for name, (filename, _) in face.MODEL_FILES.items():
        data = (face.MODELS_DIR / filename).read_bytes()
        (tmp_path / filename).write_bytes(data[:-1] + bytes([data[-1] ^ 1]) if name == "mesh" else data)
    monkeypatch.setattr(face, "MODELS_DIR", tmp_path)
    face._net.cache_clear()
    try:
        with pytest.raises(face.ModelError, match="SHA-256"):
            face._net("mesh")
    finally:
        face._net.cache_clear()


def test_no_skin_under_white_light_is_no_face_but_a_black_and_white_photo_is_not(outcomes):
    # A drawing and masks that FaceMesh takes for faces: their "skin" has no skin colour while
    # the light is white (neutral highlights), so the gate says no_face and nothing else.
    for image_id in ("picasso_drawing", "mask_vendetta"):
        outcome = next(o for o in outcomes if o.case.image_id == image_id)
        assert outcome.codes == ("no_face",), (image_id, outcome.codes)
    # A real face in a black-and-white photo has no colour anywhere: not called "no face".
    grey = next(o for o in outcomes if o.case.image_id == "glasses_greyscale")
    assert "no_face" not in grey.codes
    # Real portraits of every skin type are never taken for no skin.
    assert not any("no_face" in o.codes for o in _by_kind(outcomes, "portrait"))
