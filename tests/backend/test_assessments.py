"""Assessments (GAIS, satisfaction) at milestones, and adverse events."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from tests import factories
from tests.backend.clinical_helpers import assert_problem
from tests.backend.clock import FakeClock

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def clock() -> FakeClock:
    # Day 14 of the factory course (baseline 2026-03-01): its 2_weeks window is open.
    return FakeClock(dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc))


def milestone_id(world, name: str) -> str:
    return str(next(m.id for m in world.course.milestones if m.name == name))


def rate(client, world, headers, **body):
    return client.post(f"/api/v1/courses/{world.course.id}/assessments", json=body, headers=headers)


def test_patient_and_clinician_each_rate_a_milestone_once(client, world, headers_of):
    baseline = milestone_id(world, "2_weeks")
    own = rate(client, world, headers_of("patient_user"), milestone_id=baseline, gais=2, satisfaction=9,
               notes="Skin feels smoother")
    assert own.status_code == 201
    assert {k: own.get_json()[k] for k in ("rater_role", "gais", "gais_label", "satisfaction")} == {
        "rater_role": "patient", "gais": 2, "gais_label": "much improved", "satisfaction": 9,
    }
    clinical = rate(client, world, headers_of("clinician_a"), milestone_id=baseline, gais=3)
    assert clinical.status_code == 201
    assert clinical.get_json()["rater_role"] == "clinician" and clinical.get_json()["satisfaction"] is None
    assert_problem(rate(client, world, headers_of("patient_user"), milestone_id=baseline, gais=1), 409,
                   type_="assessment-exists")
    listed = client.get(f"/api/v1/courses/{world.course.id}/assessments", headers=headers_of("admin_a"))
    assert [item["rater_role"] for item in listed.get_json()["items"]] == ["patient", "clinician"]


def test_assessment_marks_the_milestone_completed(client, world, headers_of, clock):
    rate(client, world, headers_of("patient_user"), milestone_id=milestone_id(world, "2_weeks"), gais=4)
    course = client.get(f"/api/v1/courses/{world.course.id}", headers=headers_of("clinician_a")).get_json()
    completed = {m["name"]: (m["completed_via"], m["completed_at"]) for m in course["milestones"] if m["completed_at"]}
    assert list(completed) == ["2_weeks"]
    assert completed["2_weeks"][0] == "assessment" and completed["2_weeks"][1].startswith("2026-03-15T12:00:00")


def test_baseline_is_not_rated(client, world, headers_of):
    response = rate(client, world, headers_of("clinician_a"), milestone_id=milestone_id(world, "baseline"), gais=3)
    assert_problem(response, 422, type_="baseline-not-rated", fields=("milestone_id",))


def test_only_patients_rate_satisfaction(client, world, headers_of):
    response = rate(client, world, headers_of("clinician_a"), milestone_id=milestone_id(world, "2_weeks"),
                    gais=3, satisfaction=5)
    assert_problem(response, 422, fields=("satisfaction",))


def test_rating_before_the_window_opens_is_refused(app, client, world, headers_of, clock):
    one_month = milestone_id(world, "1_month")  # window opens 2026-03-26
    assert_problem(rate(client, world, headers_of("patient_user"), milestone_id=one_month, gais=3), 422,
                   type_="milestone-not-open")
    clock.advance(days=10)  # 2026-03-25 UTC: already the 26th in time zones ahead of UTC
    headers = factories.auth_headers(app, world.patient_user)
    assert rate(client, world, headers, milestone_id=one_month, gais=3).status_code == 201


def test_milestone_of_another_course_is_422(client, world, headers_of):
    foreign = str(world.course_b.milestones[0].id)
    assert_problem(rate(client, world, headers_of("clinician_a"), milestone_id=foreign, gais=3), 422,
                   fields=("milestone_id",))


@pytest.mark.parametrize("body, field", [
    ({"gais": 0}, "gais"),
    ({"gais": 6}, "gais"),
    ({"gais": "3"}, "gais"),
    ({"gais": 3, "satisfaction": 11}, "satisfaction"),
    ({"gais": 3, "satisfaction": -1}, "satisfaction"),
    ({}, "gais"),
])
def test_invalid_ratings_are_422(client, world, headers_of, body, field):
    response = rate(client, world, headers_of("patient_user"), milestone_id=milestone_id(world, "2_weeks"), **body)
    assert_problem(response, 422, fields=(field,))


def adverse_url(world) -> str:
    return f"/api/v1/courses/{world.course.id}/adverse-events"


def test_patient_reports_adverse_event_and_clinician_resolves_it(client, world, headers_of):
    reported = client.post(adverse_url(world), json={
        "event_type": "hyperpigmentation", "severity": "moderate", "onset_date": "2026-03-01",
        "milestone_id": milestone_id(world, "baseline"), "notes": "Dark patch left cheek",
    }, headers=headers_of("patient_user"))
    assert reported.status_code == 201
    event = reported.get_json()
    assert (event["ongoing"], event["reporter_role"], event["resolution_date"]) == (True, "patient", None)
    resolved = client.patch(f"/api/v1/adverse-events/{event['id']}",
                            json={"resolution_date": "2026-03-01", "severity": "mild"},
                            headers=headers_of("clinician_a"))
    assert resolved.status_code == 200
    assert (resolved.get_json()["ongoing"], resolved.get_json()["severity"]) == (False, "mild")
    reopened = client.patch(f"/api/v1/adverse-events/{event['id']}", json={"resolution_date": None},
                            headers=headers_of("clinician_a"))
    assert reopened.get_json()["ongoing"] is True
    listed = client.get(adverse_url(world), headers=headers_of("patient_user")).get_json()["items"]
    assert [item["event_type"] for item in listed] == ["erythema", "hyperpigmentation"]  # world's first


@pytest.mark.parametrize("change, field", [
    ({"onset_date": "2026-03-17"}, "onset_date"),  # after tomorrow (UTC) is the future everywhere
    ({"resolution_date": "2026-02-27"}, "resolution_date"),  # before onset
    ({"event_type": "headache"}, "event_type"),
    ({"severity": "fatal"}, "severity"),
    ({"milestone_id": "00000000-0000-4000-8000-000000000000"}, "milestone_id"),
])
def test_invalid_adverse_events_are_422(client, world, headers_of, change, field):
    body = {"event_type": "swelling", "severity": "mild", "onset_date": "2026-02-28", **change}
    assert_problem(client.post(adverse_url(world), json=body, headers=headers_of("clinician_a")), 422,
                   fields=(field,))


def test_resolution_before_onset_is_refused_on_update(client, world, headers_of):
    response = client.patch(f"/api/v1/adverse-events/{world.adverse_event.id}",
                            json={"resolution_date": "2026-02-01"}, headers=headers_of("clinician_a"))
    assert_problem(response, 422, fields=("resolution_date",))


def test_concurrent_duplicate_ratings_give_one_201_and_one_409(app, world, headers_of):
    # Whatever the interleaving (pre-check or unique constraint decides), never a 500.
    body = {"milestone_id": milestone_id(world, "2_weeks"), "gais": 3}
    headers = headers_of("clinician_a")
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post(f"/api/v1/courses/{world.course.id}/assessments", json=body,
                                    headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
