"""The phone app's summary: next milestone, latest results in words with the same numbers, own charts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.backend.clinical_helpers import BASELINE, assert_problem
from tests.backend.progress_helpers import add_result, write_mdc_table

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path, clock) -> dict[str, Any]:
    # Replaces the clinical fixtures' app_config (same name), so it sets the clock itself.
    table = write_mdc_table(tmp_path / "reliability.json", {("left_cheek", "redness"): 2.0,
                                                            ("all_skin", "texture"): 0.5})
    return {**app_config, "CLOCK": clock, "RELIABILITY_TABLE_PATH": table}


def test_summary_in_words_with_the_series_numbers(app, client, world, headers_of, clock):
    course = world.course  # treated: forehead, left and right cheek
    add_result(app, course, "baseline", BASELINE, {("left_cheek", "redness"): 40.0, ("all_skin", "texture"): 2.5})
    add_result(app, course, "1_month", BASELINE + dt.timedelta(days=30),
               {("left_cheek", "redness"): 35.2, ("all_skin", "texture"): 2.6})
    add_result(app, course, "3_months", BASELINE + dt.timedelta(days=90), {}, usable=False)
    clock.advance(days=40)  # 2026-04-10: 1 month done, 3 months upcoming

    response = client.get("/api/v1/me/summary", headers=headers_of("patient_user"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["course_id"] == str(course.id)
    assert body["next_milestone"]["name"] == "3_months"
    assert body["next_milestone"]["status"] == "upcoming"
    assert body["next_milestone"]["target_date"] == "2026-05-30"
    assert body["excluded_photos"] == 1
    by_key = {(r["measure"], r["region"]): r for r in body["results"]}
    cheek = by_key[("redness", "left_cheek")]
    assert cheek["change"] == pytest.approx(-4.8) and cheek["change_percent"] == pytest.approx(-12.0)
    assert cheek["mdc_percent"] == pytest.approx(5.0) and cheek["exceeds_mdc"] is True
    assert cheek["text"] == ("Redness on your left cheek is 12 % lower than at baseline; "
                             "this is more than the measurement noise (MDC 5 %).")
    texture = by_key[("texture", "all_skin")]
    assert texture["exceeds_mdc"] is False
    assert texture["text"] == ("Texture on your face overall is 4 % higher than at baseline; this is within the "
                               "measurement noise (MDC 20 %), so it may not be a real change yet.")
    # Regions without values (nose is not treated; right cheek has no numbers) are not invented.
    assert ("redness", "right_cheek") not in by_key and ("redness", "nose") not in by_key

    # The chart links answer with the patient's own charts.
    chart = client.get(body["charts"]["redness"], headers=headers_of("patient_user"))
    assert chart.status_code == 200 and chart.mimetype == "image/png"


def test_summary_without_results(client, world, headers_of):
    body = client.get("/api/v1/me/summary", headers=headers_of("patient_user")).get_json()
    assert body["results"] == [] and body["next_milestone"]["name"] == "baseline"
    assert body["next_milestone"]["status"] == "due"


def test_my_charts_only_own_courses(client, world, headers_of):
    own = client.get(f"/api/v1/me/charts/texture.svg?course_id={world.course.id}&region=forehead",
                     headers=headers_of("patient_user"))
    assert own.status_code == 200 and own.mimetype == "image/svg+xml"
    assert_problem(client.get(f"/api/v1/me/charts/texture.svg?course_id={world.course_b.id}",
                              headers=headers_of("patient_user")), 404)
    assert_problem(client.get("/api/v1/me/charts/texture.svg", headers=headers_of("other_patient_user")), 404)
    assert_problem(client.get("/api/v1/me/charts/texture.svg", headers=headers_of("clinician_a")), 403)
    assert_problem(client.get("/api/v1/me/summary", headers=headers_of("clinician_a")), 403)
