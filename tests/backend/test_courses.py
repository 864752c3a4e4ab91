"""Treatment courses (design validation, updates) and treatment sessions."""

from __future__ import annotations

import pytest

from tests.backend.clinical_helpers import assert_problem

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

NEW_COURSE = {
    "indication": "pigmentation_melasma",
    "product_name": "ExoBright",
    "exosome_source": "adipose",
    "concentration_value": 2.5,
    "concentration_unit": "mg_per_ml",
    "delivery": "rf_microneedling",
    "treated_regions": ["left_cheek", "forehead", "nose"],
    "split_face_treated_side": "left",
    "baseline_date": "2026-03-02",
    "notes": "Split-face pilot",
}


def courses_url(world) -> str:
    return f"/api/v1/patients/{world.patient.id}/courses"


def test_create_course_with_default_schedule(client, world, headers_of):
    response = client.post(courses_url(world), json=NEW_COURSE, headers=headers_of("clinician_a"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["patient_id"] == str(world.patient.id)
    assert body["treated_regions"] == ["forehead", "left_cheek", "nose"]  # canonical order
    assert (body["split_face_treated_side"], body["split_face_control_side"]) == ("left", "right")
    assert body["status"] == "active"
    schedule = [(m["name"], m["day_offset"], m["window_before_days"], m["window_after_days"], m["target_date"],
                 m["window_opens"], m["window_closes"]) for m in body["milestones"]]
    assert schedule == [
        ("baseline", 0, 0, 3, "2026-03-02", "2026-03-02", "2026-03-05"),
        ("2_weeks", 14, 3, 3, "2026-03-16", "2026-03-13", "2026-03-19"),
        ("1_month", 30, 5, 5, "2026-04-01", "2026-03-27", "2026-04-06"),
        ("3_months", 90, 14, 14, "2026-05-31", "2026-05-17", "2026-06-14"),
        ("6_months", 180, 14, 14, "2026-08-29", "2026-08-15", "2026-09-12"),
    ]
    fetched = client.get(response.headers["Location"], headers=headers_of("patient_user"))
    assert fetched.get_json() == body


def test_create_course_with_custom_schedule(client, world, headers_of):
    milestones = [
        {"name": "baseline", "day_offset": 0, "window_before_days": 0, "window_after_days": 1},
        {"name": "week 1", "day_offset": 7, "window_before_days": 1, "window_after_days": 1},
    ]
    response = client.post(courses_url(world), json={**NEW_COURSE, "milestones": milestones},
                           headers=headers_of("clinician_a"))
    assert response.status_code == 201
    assert [m["name"] for m in response.get_json()["milestones"]] == ["baseline", "week 1"]


@pytest.mark.parametrize("change, field", [
    ({"treated_regions": ["left_cheek", "right_cheek"]}, "treated_regions"),  # control cheek treated
    ({"concentration_unit": None}, "concentration_unit"),  # value without unit
    ({"concentration_value": -1}, "concentration_value"),
    ({"indication": "wrinkles"}, "indication"),
    ({"exosome_source": "snail"}, "exosome_source"),
    ({"delivery": "massage"}, "delivery"),
    ({"treated_regions": ["ear"]}, "treated_regions.0"),
    ({"treated_regions": []}, "treated_regions"),
    ({"treated_regions": ["nose", "nose"]}, "treated_regions"),
    ({"split_face_treated_side": "top"}, "split_face_treated_side"),
    ({"status": "paused"}, "status"),
    ({"milestones": [{"name": "a", "day_offset": 5, "window_before_days": 1, "window_after_days": 1},
                     {"name": "b", "day_offset": 6, "window_before_days": 1, "window_after_days": 1}]},
     "milestones"),
])
def test_invalid_course_is_422(client, world, headers_of, change, field):
    response = client.post(courses_url(world), json={**NEW_COURSE, **change}, headers=headers_of("clinician_a"))
    assert_problem(response, 422, fields=(field,))


def test_course_list_is_the_patients_courses(client, world, headers_of):
    client.post(courses_url(world), json=NEW_COURSE, headers=headers_of("clinician_a"))
    items = client.get(courses_url(world), headers=headers_of("patient_user")).get_json()["items"]
    assert [item["product_name"] for item in items] == ["Exo Serum", "ExoBright"]
    assert all(item["patient_id"] == str(world.patient.id) for item in items)


def test_update_course_rechecks_the_whole_design(client, world, headers_of):
    url = f"/api/v1/courses/{world.course.id}"
    # The factory course treats both cheeks: a split-face design would treat its control side.
    assert_problem(client.patch(url, json={"split_face_treated_side": "right"}, headers=headers_of("clinician_a")),
                   422, type_="invalid-course-design", fields=("treated_regions",))
    response = client.patch(url, json={"split_face_treated_side": "right",
                                       "treated_regions": ["right_cheek", "chin"], "status": "completed"},
                            headers=headers_of("clinician_a"))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["split_face_control_side"], body["treated_regions"], body["status"]) == \
        ("left", ["right_cheek", "chin"], "completed")


def test_moving_baseline_moves_the_schedule(client, world, headers_of):
    response = client.patch(f"/api/v1/courses/{world.course.id}", json={"baseline_date": "2026-04-01"},
                            headers=headers_of("clinician_a"))
    two_weeks = next(m for m in response.get_json()["milestones"] if m["name"] == "2_weeks")
    assert two_weeks["target_date"] == "2026-04-15"


def test_sessions_record_device_settings(client, world, headers_of):
    url = f"/api/v1/courses/{world.course.id}/sessions"
    settings = {"needle_depth_mm": 1.5, "passes": 3, "device": "Dermapen 4"}
    response = client.post(url, json={"performed_on": "2026-03-01", "device_settings": settings,
                                      "notes": "Tolerated well"}, headers=headers_of("clinician_a"))
    assert response.status_code == 201
    assert response.get_json()["device_settings"] == settings
    client.post(url, json={"performed_on": "2026-03-29"}, headers=headers_of("clinician_a"))
    listed = client.get(url, headers=headers_of("patient_user")).get_json()["items"]
    assert [(item["performed_on"], item["device_settings"]) for item in listed] == [
        ("2026-03-01", settings), ("2026-03-29", {}),
    ]


@pytest.mark.parametrize("settings", [
    {"cooling": True},
    {"nested": {"depth": 1}},
    {"list": [1, 2]},
    {"": 1},
    {"text": "x" * 201},
    {f"k{i}": i for i in range(41)},
])
def test_device_settings_must_be_flat_numbers_or_short_strings(client, world, headers_of, settings):
    response = client.post(f"/api/v1/courses/{world.course.id}/sessions",
                           json={"performed_on": "2026-03-01", "device_settings": settings},
                           headers=headers_of("clinician_a"))
    assert_problem(response, 422, fields=("device_settings",))


def test_session_create_is_idempotent(client, world, headers_of):
    headers = {**headers_of("clinician_a"), "Idempotency-Key": "session-1"}
    url = f"/api/v1/courses/{world.course.id}/sessions"
    first = client.post(url, json={"performed_on": "2026-03-01"}, headers=headers)
    again = client.post(url, json={"performed_on": "2026-03-01"}, headers=headers)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(client.get(url, headers=headers_of("clinician_a")).get_json()["items"]) == 1
