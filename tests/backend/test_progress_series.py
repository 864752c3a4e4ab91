"""Progress series against hand-computed values: changes, MDC flags, unusable photos, split-face."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from backend.services.progress import change_from_baseline, mdc_table, plain_words
from imaging.version import ALGORITHM_VERSION
from schemas.progress import SERIES_MEASURES, SERIES_REGIONS
from tests import factories
from tests.backend.clinical_helpers import BASELINE, assert_problem
from tests.backend.progress_helpers import add_result, supersede, write_mdc_table

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

#: MDC95 of the test table (measure units) per (region, measure): chosen so that 4 is beyond
#: and 1 within on all skin; the left cheek is noisier (its own, larger MDC).
TEST_MDC = {("all_skin", "redness"): 3.0, ("all_skin", "pigmentation"): 5.0, ("all_skin", "texture"): 0.5,
            ("left_cheek", "redness"): 6.5}


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path) -> dict[str, Any]:
    return {**app_config, "RELIABILITY_TABLE_PATH": write_mdc_table(tmp_path / "reliability.json", TEST_MDC)}


def day(n: int) -> dt.date:
    return BASELINE + dt.timedelta(days=n)


def series_of(body: dict, measure: str, region: str) -> dict:
    return next(s for s in body["series"] if s["measure"] == measure and s["region"] == region)


def test_change_from_baseline_pure():
    assert change_from_baseline(36.0, 40.0) == (-4.0, -10.0)
    assert change_from_baseline(-3.0, -2.0) == (-1.0, -50.0)  # percent of |baseline|
    assert change_from_baseline(1.0, 0.0) == (1.0, None)
    assert change_from_baseline(None, 40.0) == (None, None)


def test_mdc_table_of_another_version_is_not_used(tmp_path):
    table = tmp_path / "t.json"
    table.write_text(json.dumps({"algorithm_version": "1999.1.1", "measures": {"redness": {
        "mdc95": 1.0, "icc": 0.9, "band": "good"}}}))
    assert mdc_table("1999.1.1", str(table))[("all_skin", "redness")].mdc95 == 1.0
    assert mdc_table(ALGORITHM_VERSION, str(table)) == {}


def test_each_region_has_its_own_mdc_never_borrowed_from_all_skin(tmp_path):
    table = tmp_path / "t.json"
    entry = {"icc": 0.9, "band": "good"}
    table.write_text(json.dumps({"algorithm_version": "1999.1.1",
                                 "measures": {"redness": {**entry, "mdc95": 1.0}},
                                 "regions": {"nose": {"redness": {**entry, "mdc95": 2.5}}}}))
    mdcs = mdc_table("1999.1.1", str(table))
    assert mdcs[("nose", "redness")].mdc95 == 2.5 and mdcs[("all_skin", "redness")].mdc95 == 1.0
    assert ("forehead", "redness") not in mdcs  # no flag rather than the all-skin MDC


def test_published_table_has_an_mdc_for_every_series_region_and_measure():
    mdcs = mdc_table(ALGORITHM_VERSION)
    assert mdcs, "imaging/reliability_table.json is not of the current algorithm version"
    for region in SERIES_REGIONS:
        for measure in SERIES_MEASURES:
            if (region, measure) == ("forehead", "redness"):
                assert (region, measure) not in mdcs  # the forehead is redness's reference: no value
                continue
            assert mdcs[(region, measure)].mdc95 > 0, (region, measure)


def test_series_numbers_mdc_flags_and_left_out_photos(app, client, world, headers_of):
    course = world.course
    add_result(app, course, "baseline", day(0), {("all_skin", "redness"): 40.0, ("left_cheek", "redness"): 42.0,
                                                  ("all_skin", "texture"): 2.0})
    add_result(app, course, "2_weeks", day(15), {("all_skin", "redness"): 39.0, ("left_cheek", "redness"): 41.5,
                                                  ("all_skin", "texture"): 2.6})
    # 1 month: a usable photo, then an unusable retake that supersedes it -> no value, listed.
    older = add_result(app, course, "1_month", day(30), {("all_skin", "redness"): 30.0},
                       created_at=dt.datetime(2026, 3, 31, 10, tzinfo=dt.timezone.utc))
    retake = add_result(app, course, "1_month", day(31), {("all_skin", "redness"): 99.0}, usable=False,
                        created_at=dt.datetime(2026, 4, 1, 10, tzinfo=dt.timezone.utc))
    supersede(app, older, retake)
    add_result(app, course, "3_months", day(92), {("all_skin", "redness"): 36.0, ("left_cheek", "redness"): 35.0,
                                                   ("all_skin", "texture"): 1.7})
    # 6 months: only analysed by an older algorithm -> not compared, listed as not analysed.
    old_version = add_result(app, course, "6_months", day(180), {("all_skin", "redness"): 10.0}, version="2025.1.1")
    # A photo of another view does not mix into the front series.
    add_result(app, course, "3_months", day(92), {("all_skin", "redness"): 5.0}, view="left")

    response = client.get(f"/api/v1/courses/{course.id}/progress?measure=redness&measure=texture"
                          "&region=all_skin&region=left_cheek", headers=headers_of("clinician_a"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["algorithm_version"] == ALGORITHM_VERSION
    assert {(s["measure"], s["region"]) for s in body["series"]} == {
        ("redness", "all_skin"), ("redness", "left_cheek"), ("texture", "all_skin"), ("texture", "left_cheek")}

    redness = series_of(body, "redness", "all_skin")
    assert redness["mdc95"] == 3.0 and redness["baseline_value"] == 40.0
    points = [(p["milestone_name"], p["days_since_baseline"], p["value"], p["change"], p["change_percent"],
               p["exceeds_mdc"]) for p in redness["points"]]
    assert points == [
        ("baseline", 0, 40.0, 0.0, 0.0, False),
        ("2_weeks", 15, 39.0, -1.0, -2.5, False),
        ("3_months", 92, 36.0, -4.0, -10.0, True),
    ]
    cheek = series_of(body, "redness", "left_cheek")
    assert [p["change"] for p in cheek["points"]] == [0.0, -0.5, -7.0]
    assert cheek["points"][2]["change_percent"] == pytest.approx(-700.0 / 42.0)
    assert cheek["mdc95"] == 6.5  # the cheek's own MDC, not all skin's 3.0
    assert [p["exceeds_mdc"] for p in cheek["points"]] == [False, False, True]
    texture = series_of(body, "texture", "all_skin")
    assert [p["change"] for p in texture["points"]] == pytest.approx([0.0, 0.6, -0.3])
    assert [p["exceeds_mdc"] for p in texture["points"]] == [False, True, False]
    # A region without stored values has points with nulls, never invented numbers.
    assert all(p["value"] is None and p["exceeds_mdc"] is None for p in series_of(body, "texture", "left_cheek")["points"])

    excluded = {(e["photo_id"], e["milestone_name"], e["reason"]) for e in body["excluded"]}
    assert excluded == {(str(retake), "1_month", "unusable"), (str(old_version), "6_months", "not_analysed")}
    assert body["split_face"] == []


def test_older_algorithm_version_is_compared_only_with_itself(app, client, world, headers_of):
    course = world.course
    add_result(app, course, "baseline", day(0), {("all_skin", "redness"): 20.0}, version="2025.1.1")
    add_result(app, course, "2_weeks", day(14), {("all_skin", "redness"): 18.0}, version="2025.1.1")
    add_result(app, course, "3_months", day(90), {("all_skin", "redness"): 50.0})
    body = client.get(f"/api/v1/courses/{course.id}/progress?measure=redness&region=all_skin"
                      "&algorithm_version=2025.1.1", headers=headers_of("clinician_a")).get_json()
    redness = series_of(body, "redness", "all_skin")
    assert [(p["value"], p["change"], p["change_percent"]) for p in redness["points"]] == [
        (20.0, 0.0, 0.0), (18.0, -2.0, -10.0)]
    # The test table is of the running version: no MDC for 2025.1.1 results.
    assert redness["mdc95"] is None and redness["points"][1]["exceeds_mdc"] is None


def test_values_the_imaging_says_are_not_comparable_are_left_out_with_the_reasons(app, client, world, headers_of):
    course = world.course
    add_result(app, course, "baseline", day(0), {("all_skin", "redness"): 20.0, ("all_skin", "pigmentation"): 1.0})
    follow = add_result(app, course, "2_weeks", day(14), {("all_skin", "redness"): 35.0, ("all_skin", "pigmentation"): 1.2},
                        not_comparable={"redness": ["other_camera"]})
    body = client.get(f"/api/v1/courses/{course.id}/progress?region=all_skin",
                      headers=headers_of("clinician_a")).get_json()
    redness = series_of(body, "redness", "all_skin")
    # Never charted or flagged as change: the point has no value, change or flag.
    assert [(p["value"], p["change"], p["exceeds_mdc"]) for p in redness["points"]] == [
        (20.0, 0.0, False), (None, None, None)]
    pigmentation = series_of(body, "pigmentation", "all_skin")
    assert [p["value"] for p in pigmentation["points"]] == [1.0, 1.2]
    assert body["left_out"] == [{"photo_id": str(follow), "milestone_name": "2_weeks", "measure": "redness",
                                 "reasons": ["other_camera"]}]


def test_each_milestone_says_which_region_its_redness_is_a_contrast_against(app, client, world, headers_of):
    course = world.course
    # The forehead was hidden at the baseline: redness against the chin throughout; a photo with
    # neither region measurable has no reference (and no redness).
    add_result(app, course, "baseline", day(0), {("all_skin", "redness"): 20.0}, redness_reference="chin")
    add_result(app, course, "2_weeks", day(14), {("all_skin", "texture"): 1.0}, redness_reference=None)
    add_result(app, course, "1_month", day(30), {("all_skin", "redness"): 18.0}, redness_reference="chin")
    body = client.get(f"/api/v1/courses/{course.id}/progress?measure=redness&region=all_skin",
                      headers=headers_of("clinician_a")).get_json()
    assert body["redness_reference"] == {"baseline": "chin", "2_weeks": None, "1_month": "chin"}


def test_split_face_differences(app, client, world, headers_of):
    course = factories.make_course(app, world.patient, split_face_treated_side="left",
                                   treated_regions=["forehead", "left_cheek"])
    add_result(app, course, "baseline", day(0), {("left_cheek", "redness"): 42.0, ("right_cheek", "redness"): 41.0})
    add_result(app, course, "1_month", day(30), {("left_cheek", "redness"): 38.0, ("right_cheek", "redness"): 40.5})
    add_result(app, course, "3_months", day(88), {("left_cheek", "redness"): 35.0, ("right_cheek", "redness"): 40.0})
    body = client.get(f"/api/v1/courses/{course.id}/progress?measure=redness",
                      headers=headers_of("clinician_a")).get_json()
    assert body["split_face_treated_side"] == "left"
    rows = [(d["milestone_name"], d["days_since_baseline"], d["treated_region"], d["control_region"],
             d["treated_value"], d["control_value"], d["difference"], d["change_from_baseline"])
            for d in body["split_face"]]
    assert rows == [
        ("baseline", 0, "left_cheek", "right_cheek", 42.0, 41.0, 1.0, 0.0),
        ("1_month", 30, "left_cheek", "right_cheek", 38.0, 40.5, -2.5, -3.5),
        ("3_months", 88, "left_cheek", "right_cheek", 35.0, 40.0, -5.0, -6.0),
    ]


def test_right_side_treated_swaps_regions(app, client, world, headers_of):
    course = factories.make_course(app, world.patient, split_face_treated_side="right",
                                   treated_regions=["right_cheek"])
    add_result(app, course, "baseline", day(0), {("left_cheek", "redness"): 10.0, ("right_cheek", "redness"): 12.0})
    body = client.get(f"/api/v1/courses/{course.id}/progress?measure=redness",
                      headers=headers_of("clinician_a")).get_json()
    assert [(d["treated_region"], d["difference"]) for d in body["split_face"]] == [("right_cheek", 2.0)]


def test_no_baseline_photo_gives_values_without_changes(app, client, world, headers_of):
    add_result(app, world.course, "2_weeks", day(14), {("all_skin", "redness"): 30.0})
    body = client.get(f"/api/v1/courses/{world.course.id}/progress?measure=redness&region=all_skin",
                      headers=headers_of("clinician_a")).get_json()
    point = series_of(body, "redness", "all_skin")["points"][0]
    assert (point["value"], point["change"], point["exceeds_mdc"], point["days_since_baseline"]) == (30.0, None, None, 14)


def test_access_rules(client, world, headers_of):
    url = f"/api/v1/courses/{world.course.id}/progress"
    assert client.get(url, headers=headers_of("patient_user")).status_code == 200
    assert client.get(url, headers=headers_of("admin_a")).status_code == 200
    assert_problem(client.get(url, headers=headers_of("clinician_b")), 404)
    assert_problem(client.get(url, headers=headers_of("other_patient_user")), 404)
    assert_problem(client.get(url, headers=headers_of("researcher")), 403)
    assert_problem(client.get(url), 401)


def test_bad_arguments_are_422(client, world, headers_of):
    url = f"/api/v1/courses/{world.course.id}/progress"
    assert_problem(client.get(url + "?measure=beauty", headers=headers_of("clinician_a")), 422)
    assert_problem(client.get(url + "?view=top", headers=headers_of("clinician_a")), 422)
    assert_problem(client.get(url + "?algorithm_version=x;drop", headers=headers_of("clinician_a")), 422)


def test_plain_words():
    assert plain_words("redness", "left_cheek", -4.8, -12.0, 2.0, 40.0, True) == (
        "Redness on your left cheek is 12 % lower than at baseline; this is more than the measurement noise (MDC 5 %).")
    assert plain_words("texture", "all_skin", 0.1, 4.0, 0.5, 2.5, False) == (
        "Texture on your face overall is 4 % higher than at baseline; this is within the measurement noise "
        "(MDC 20 %), so it may not be a real change yet.")
    assert plain_words("pigmentation", "chin", 0.0, 0.0, None, 3.0, None) == (
        "Pigmentation on your chin is about the same as at baseline.")
