"""Milestone schedules: validation, replacement, and the due/overdue/upcoming schedule."""

from __future__ import annotations

import datetime as dt

import pytest

from backend.models.clinical import milestone_window
from backend.services.milestones import DEFAULT_SCHEDULE, MilestoneSpec, milestone_status, schedule_errors
from tests import factories
from tests.backend.clinical_helpers import assert_problem

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

BASELINE = dt.date(2026, 3, 1)


def spec(name: str, day: int, before: int, after: int) -> MilestoneSpec:
    return MilestoneSpec(name, day, before, after)


def test_default_schedule_is_valid():
    assert schedule_errors(DEFAULT_SCHEDULE) == []


@pytest.mark.parametrize("specs, message", [
    ([], "at least one"),
    ([spec("a", 0, 0, 1), spec("a", 10, 1, 1)], "unique"),
    ([spec("a", 10, 1, 1), spec("b", 5, 1, 1)], "sorted"),
    ([spec("a", 10, 1, 1), spec("b", 10, 1, 1)], "sorted"),
    ([spec("a", 10, 2, 3), spec("b", 15, 2, 3)], "overlap"),  # a closes day 13, b opens day 13
    ([spec("a", 2, 3, 0)], "before baseline"),
    ([spec(f"m{i}", i * 10, 0, 0) for i in range(25)], "at most"),
])
def test_schedule_rules(specs, message):
    errors = schedule_errors(specs)
    assert any(message in error for error in errors), errors


def test_adjacent_windows_are_allowed():
    assert schedule_errors([spec("a", 10, 2, 2), spec("b", 15, 2, 2)]) == []  # closes 12, opens 13


@pytest.mark.parametrize("today, completed, status", [
    (dt.date(2026, 3, 11), False, "upcoming"),   # day before the window opens
    (dt.date(2026, 3, 12), False, "due"),        # opening day
    (dt.date(2026, 3, 18), False, "due"),        # closing day
    (dt.date(2026, 3, 19), False, "overdue"),    # day after
    (dt.date(2026, 3, 1), True, "completed"),
])
def test_milestone_status_boundaries(today, completed, status):
    window = milestone_window(BASELINE, 14, 3, 3)
    assert (window.opens, window.closes) == (dt.date(2026, 3, 12), dt.date(2026, 3, 18))
    assert milestone_status(window, completed, today) == status


def schedule(client, headers, url, on=None):
    response = client.get(url + (f"?on={on}" if on else ""), headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return body["as_of"], {status: [item["name"] for item in body[status]]
                           for status in ("due", "overdue", "upcoming", "completed")}


def test_schedule_follows_the_injected_clock(app, client, world, headers_of, clock):
    url = f"/api/v1/courses/{world.course.id}/schedule"
    as_of, groups = schedule(client, headers_of("clinician_a"), url)
    assert as_of == "2026-03-01"
    assert groups == {"due": ["baseline"], "overdue": [], "completed": [],
                      "upcoming": ["2_weeks", "1_month", "3_months", "6_months"]}
    clock.advance(days=20)  # 2_weeks closed on day 17, 1_month opens on day 25
    _, groups = schedule(client, factories.auth_headers(app, world.clinician_a), url)  # token of the new time
    assert groups["overdue"] == ["baseline", "2_weeks"]
    assert groups["due"] == [] and groups["upcoming"][0] == "1_month"


def test_schedule_on_the_patients_local_date(client, world, headers_of):
    url = f"/api/v1/courses/{world.course.id}/schedule"
    as_of, groups = schedule(client, headers_of("clinician_a"), url, on="2026-03-28")
    assert as_of == "2026-03-28"
    assert groups["due"] == ["1_month"] and groups["overdue"] == ["baseline", "2_weeks"]
    assert_problem(client.get(url + "?on=yesterday", headers=headers_of("clinician_a")), 422, fields=("on",))


def test_schedule_items_carry_dates_and_ids(client, world, headers_of):
    body = client.get(f"/api/v1/courses/{world.course.id}/schedule", headers=headers_of("patient_user")).get_json()
    [baseline] = body["due"]
    assert baseline == {
        "course_id": str(world.course.id), "milestone_id": str(world.course.milestones[0].id),
        "name": "baseline", "day_offset": 0, "target_date": "2026-03-01", "window_opens": "2026-03-01",
        "window_closes": "2026-03-04", "status": "due", "completed_at": None,
    }


def test_visit_completes_the_milestone_once(client, world, headers_of, clock):
    baseline_id = str(world.course.milestones[0].id)
    first = client.post(f"/api/v1/milestones/{baseline_id}/visit", headers=headers_of("clinician_a"))
    assert first.status_code == 200
    assert first.get_json()["completed_via"] == "visit"
    clock.advance(minutes=10)
    again = client.post(f"/api/v1/milestones/{baseline_id}/visit", headers=headers_of("clinician_a"))
    assert again.get_json()["completed_at"] == first.get_json()["completed_at"]  # first completion wins
    _, groups = schedule(client, headers_of("patient_user"), f"/api/v1/courses/{world.course.id}/schedule",
                         on="2026-06-01")
    assert groups["completed"] == ["baseline"]
    assert groups["overdue"] == ["2_weeks", "1_month"] and groups["due"] == ["3_months"]


def test_visit_before_the_window_opens_is_refused(client, world, headers_of):
    one_month_id = str(world.course.milestones[2].id)
    assert_problem(client.post(f"/api/v1/milestones/{one_month_id}/visit", headers=headers_of("clinician_a")),
                   422, type_="milestone-not-open")


def test_my_schedule_spans_planned_and_active_courses(app, client, world, headers_of):
    second = factories.make_course(app, world.patient, baseline_date=dt.date(2026, 2, 20), status="planned")
    factories.make_course(app, world.patient, baseline_date=dt.date(2026, 3, 1), status="completed")
    factories.make_course(app, world.other_patient, baseline_date=dt.date(2026, 3, 1))
    body = client.get("/api/v1/me/schedule?on=2026-03-04", headers=headers_of("patient_user")).get_json()

    def named(status):
        return [(item["course_id"], item["name"]) for item in body[status]]

    first_id, second_id = str(world.course.id), str(second.id)
    assert named("due") == [(first_id, "baseline"), (second_id, "2_weeks")]  # by window opening
    assert named("overdue") == [(second_id, "baseline")]
    assert sorted(named("upcoming")) == sorted(
        [(first_id, name) for name in ("2_weeks", "1_month", "3_months", "6_months")]
        + [(second_id, name) for name in ("1_month", "3_months", "6_months")]
    )


def test_replace_schedule_keeps_ids_by_name(client, world, headers_of):
    url = f"/api/v1/courses/{world.course.id}/milestones"
    before = {m.name: str(m.id) for m in world.course.milestones}
    milestones = [
        {"name": "baseline", "day_offset": 0, "window_before_days": 0, "window_after_days": 2},
        {"name": "1_month", "day_offset": 28, "window_before_days": 4, "window_after_days": 4},
        {"name": "1_year", "day_offset": 365, "window_before_days": 30, "window_after_days": 30},
    ]
    response = client.put(url, json={"milestones": milestones}, headers=headers_of("clinician_a"))
    assert response.status_code == 200
    after = {m["name"]: m for m in response.get_json()["milestones"]}
    assert list(after) == ["baseline", "1_month", "1_year"]
    assert after["baseline"]["id"] == before["baseline"] and after["1_month"]["id"] == before["1_month"]
    assert after["1_month"]["target_date"] == "2026-03-29"
    assert after["1_year"]["id"] not in before.values()


def test_replace_schedule_rejects_invalid_schedules(client, world, headers_of):
    url = f"/api/v1/courses/{world.course.id}/milestones"
    overlapping = [{"name": "a", "day_offset": 10, "window_before_days": 5, "window_after_days": 5},
                   {"name": "b", "day_offset": 12, "window_before_days": 1, "window_after_days": 1}]
    body = assert_problem(client.put(url, json={"milestones": overlapping}, headers=headers_of("clinician_a")),
                          422, type_="invalid-schedule", fields=("milestones",))
    assert "overlap" in body["detail"]
    assert_problem(client.put(url, json={"milestones": []}, headers=headers_of("clinician_a")), 422,
                   fields=("milestones",))
    too_far = [{"name": "a", "day_offset": 5000, "window_before_days": 0, "window_after_days": 0}]
    assert_problem(client.put(url, json={"milestones": too_far}, headers=headers_of("clinician_a")), 422,
                   fields=("milestones.0.day_offset",))


def test_completed_milestone_cannot_be_removed(client, world, headers_of):
    baseline_id = str(world.course.milestones[0].id)
    client.post(f"/api/v1/milestones/{baseline_id}/visit", headers=headers_of("clinician_a"))
    only_later = [{"name": "2_weeks", "day_offset": 14, "window_before_days": 3, "window_after_days": 3}]
    assert_problem(client.put(f"/api/v1/courses/{world.course.id}/milestones", json={"milestones": only_later},
                              headers=headers_of("clinician_a")), 409, type_="invalid-schedule")
    course = client.get(f"/api/v1/courses/{world.course.id}", headers=headers_of("clinician_a")).get_json()
    assert len(course["milestones"]) == 5  # unchanged: the failed request rolled back
