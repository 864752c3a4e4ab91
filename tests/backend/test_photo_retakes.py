"""Which photo counts, through the API: retakes (usable or not) and repeat captures.

One rule (``backend.services.photos.photo_standings``) decides for the upload (supersession,
milestone completion), the photo's ``counts``, the progress series and its ``excluded`` list.
Every upload runs the real gate and analysis, so these run on PostgreSQL only (the rule is plain
Python over rows; the SQLite run of the other photo tests covers the queries).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from backend.extensions import db
from backend.models.clinical import Milestone
from backend.models.photos import Photo
from backend.models.repeatability import RepeatabilityResult
from tests.backend.clinical_helpers import assert_problem
from tests.backend.photo_helpers import blurred_jpeg, grant_photo_consent, phone_jpeg, upload
from tests.backend.progress_helpers import add_result, milestone_id

pytestmark = [pytest.mark.usefixtures("clock"), pytest.mark.parametrize("database_backend", ["postgresql"])]


@pytest.fixture
def consented(app, world) -> Any:
    grant_photo_consent(app, world.patient, world.clinician_a)
    return world


def send(client, world, headers, data: bytes, **query) -> dict[str, Any]:
    response = upload(client, headers, world.patient.id, data, course_id=world.course.id, **query)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def photo(client, headers, photo_id: str) -> dict[str, Any]:
    return client.get(f"/api/v1/photos/{photo_id}", headers=headers).get_json()


def progress(client, world, headers) -> dict[str, Any]:
    response = client.get(f"/api/v1/courses/{world.course.id}/progress", headers=headers,
                          query_string={"measure": "redness", "region": "all_skin"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def baseline_photo_ids(body: dict[str, Any]) -> set[str]:
    return {p["photo_id"] for s in body["series"] for p in s["points"] if p["milestone_name"] == "baseline"}


def test_unusable_retake_keeps_the_usable_photo_counting_then_a_usable_retake_supersedes(
        app, client, consented, headers_of):
    headers = headers_of("patient_user")
    good = send(client, consented, headers, phone_jpeg())
    blurred = send(client, consented, headers, blurred_jpeg())
    assert blurred["usable"] is False and blurred["counts"] is False
    assert blurred["superseded_by_id"] is None
    kept = photo(client, headers, good["id"])
    assert kept["superseded_by_id"] is None and kept["counts"] is True

    body = progress(client, consented, headers)
    assert baseline_photo_ids(body) == {good["id"]}
    assert [(e["photo_id"], e["reason"]) for e in body["excluded"]] == [(blurred["id"], "unusable")]
    with app.app_context():
        milestone = db.session.get(Milestone, uuid.UUID(good["milestone_id"]))
        assert milestone.completed_at is not None and str(milestone.completed_source_id) == good["id"]

    # A usable retake of the same slot replaces both earlier photos.
    retake = send(client, consented, headers, phone_jpeg())
    assert retake["counts"] is True
    for earlier in (good, blurred):
        shown = photo(client, headers, earlier["id"])
        assert shown["superseded_by_id"] == retake["id"] and shown["counts"] is False
    body = progress(client, consented, headers)
    assert baseline_photo_ids(body) == {retake["id"]}
    assert body["excluded"] == []


def test_usable_retake_after_an_unusable_photo_supersedes_it(client, consented, headers_of):
    headers = headers_of("patient_user")
    blurred = send(client, consented, headers, blurred_jpeg())
    assert progress(client, consented, headers)["excluded"][0]["reason"] == "unusable"
    good = send(client, consented, headers, phone_jpeg())
    assert photo(client, headers, blurred["id"])["superseded_by_id"] == good["id"]
    body = progress(client, consented, headers)
    assert baseline_photo_ids(body) == {good["id"]} and body["excluded"] == []


def test_repeat_capture_never_supersedes_and_is_listed_as_repeat(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    first = send(client, consented, headers, phone_jpeg())
    repeat = send(client, consented, headers, phone_jpeg(), repeat_of_id=first["id"])
    assert repeat["repeat_of_id"] == first["id"] and repeat["milestone_id"] == first["milestone_id"]
    assert repeat["usable"] is True and repeat["counts"] is False and repeat["superseded_by_id"] is None
    shown = photo(client, headers, first["id"])
    assert shown["counts"] is True and shown["superseded_by_id"] is None and shown["repeat_of_id"] is None

    body = progress(client, consented, headers)
    assert baseline_photo_ids(body) == {first["id"]}
    assert [(e["photo_id"], e["reason"]) for e in body["excluded"]] == [(repeat["id"], "repeat")]
    with app.app_context():
        milestone = db.session.get(Milestone, uuid.UUID(first["milestone_id"]))
        assert str(milestone.completed_source_id) == first["id"]
        # The pair's second analysis enqueued the recomputation (inline backend: it ran).
        rows = db.session.query(RepeatabilityResult).filter_by(scope="clinic", fitzpatrick_group=None).all()
        assert rows and {row.n_pairs for row in rows} == {1}
        assert {row.clinic_id for row in rows} == {consented.clinic_a.id}

    # Refused repeats (422 on ``repeat_of_id``, nothing stored). ``spare``: a baseline photo at 10:00 UTC.
    spare = add_result(app, consented.course, "baseline", dt.date(2026, 3, 1), {})
    elsewhere = add_result(app, consented.course_b, "baseline", dt.date(2026, 3, 1), {})
    cases = [
        (spare, {"view": "left"}, "view"),
        (spare, {"captured_at": dt.datetime(2026, 3, 1, 10, 31, tzinfo=dt.timezone.utc)}, "30 minutes"),
        (spare, {"milestone_id": milestone_id(consented.course, "2_weeks")}, "another milestone"),
        (repeat["id"], {}, "itself a repeat"),
        (first["id"], {}, "already has a repeat"),
        (elsewhere, {}, "not a photo of this patient"),
        (uuid.uuid4(), {}, "not a photo of this patient"),
    ]
    with app.app_context():
        stored = db.session.query(Photo).count()
    for target, query, message in cases:
        response = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id,
                          repeat_of_id=target, **query)
        problem = assert_problem(response, 422, fields=("repeat_of_id",))
        assert message in problem["errors"]["repeat_of_id"][0], (query, problem)
    # A two-phase upload is checked when it starts.
    started = client.post(f"/api/v1/patients/{consented.patient.id}/uploads", headers=headers, json={
        "course_id": str(consented.course.id), "size_bytes": 1000, "content_type": "image/jpeg",
        "repeat_of_id": repeat["id"]})
    assert "itself a repeat" in assert_problem(started, 422, fields=("repeat_of_id",))["errors"]["repeat_of_id"][0]
    with app.app_context():
        assert db.session.query(Photo).count() == stored
