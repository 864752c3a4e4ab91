"""Who may upload, list, read, download and delete photos; audit of downloads; byte removal.

Authorisation matrix in the style of ``test_authorisation_matrix.py``: the target photo
belongs to ``world.patient`` (clinic A). A role the endpoint never serves -> 403; an allowed
role that cannot see the patient -> 404; an allowed role that can -> the success status.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models.audit import AuditEvent
from backend.models.photos import Photo
from backend.storage import current_storage
from tests.backend.clinical_helpers import PROBLEM, assert_problem
from tests.backend.photo_helpers import exif_has_gps, grant_photo_consent, phone_jpeg, upload

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

#: Caller -> (world attribute of the user, role, sees world.patient).
CALLERS: dict[str, tuple[str, str, bool]] = {
    "patient_own": ("patient_user", "patient", True),
    "patient_other": ("other_patient_user", "patient", False),
    "clinician_same": ("clinician_a", "clinician", True),
    "clinician_other": ("clinician_b", "clinician", False),
    "admin_same": ("admin_a", "admin", True),
    "admin_other": ("admin_b", "admin", False),
    "researcher": ("researcher", "researcher", False),
}
WRITERS = ("patient", "clinician")
READERS = ("patient", "clinician", "admin")


@dataclass(frozen=True)
class Route:
    """One photo route: ``call(client, headers, world, photo_id)`` -> response."""

    name: str
    call: Callable[[Any, dict[str, str], Any, str], Any]
    roles: tuple[str, ...]
    success: int


ROUTES = [
    Route("list", lambda c, h, w, p: c.get(f"/api/v1/patients/{w.patient.id}/photos", headers=h), READERS, 200),
    Route("upload", lambda c, h, w, p: upload(c, h, w.patient.id, phone_jpeg(), course_id=w.course.id),
          WRITERS, 201),
    Route("create_upload", lambda c, h, w, p: c.post(
        f"/api/v1/patients/{w.patient.id}/uploads", headers=h,
        json={"course_id": str(w.course.id), "size_bytes": 1000, "content_type": "image/jpeg"}), WRITERS, 201),
    Route("detail", lambda c, h, w, p: c.get(f"/api/v1/photos/{p}", headers=h), READERS, 200),
    Route("job", lambda c, h, w, p: c.get(f"/api/v1/photos/{p}/job", headers=h), READERS, 200),
    Route("analyses", lambda c, h, w, p: c.get(f"/api/v1/photos/{p}/analyses", headers=h), READERS, 200),
    Route("image", lambda c, h, w, p: c.get(f"/api/v1/photos/{p}/image", headers=h), READERS, 200),
    Route("overlay", lambda c, h, w, p: c.get(f"/api/v1/photos/{p}/overlays/redness", headers=h), READERS, 200),
    Route("delete", lambda c, h, w, p: c.delete(f"/api/v1/photos/{p}", headers=h), WRITERS, 204),
]


@pytest.fixture
def photo_id(app, client, world, headers_of) -> str:
    """An analysed photo of ``world.patient``."""
    grant_photo_consent(app, world.patient, world.clinician_a)
    response = upload(client, headers_of("patient_user"), world.patient.id, phone_jpeg(), course_id=world.course.id)
    assert response.status_code == 201
    return response.get_json()["id"]


def expected_status(route: Route, caller: str) -> int:
    _, role, sees = CALLERS[caller]
    if role not in route.roles:
        return 403
    return route.success if sees else 404


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_authorisation_matrix(client, world, headers_of, photo_id, route):
    # Callers that must fail go first, so a successful delete cannot hide a later check.
    order = sorted(CALLERS, key=lambda caller: expected_status(route, caller) < 300)
    for caller in order:
        response = route.call(client, headers_of(CALLERS[caller][0]), world, photo_id)
        expected = expected_status(route, caller)
        assert response.status_code == expected, (caller, response.get_data(as_text=True)[:300])
        if expected >= 400:
            assert response.mimetype == PROBLEM
        if route.name == "list" and expected == 200:
            assert photo_id in {item["id"] for item in response.get_json()["items"]}
        response.close()  # downloads stream: release the storage stream


def test_list_of_another_patient_shows_nothing(client, world, headers_of, photo_id):
    other = client.get(f"/api/v1/patients/{world.other_patient.id}/photos", headers=headers_of("clinician_a"))
    assert other.status_code == 200 and other.get_json()["items"] == []


def test_download_streams_sanitised_bytes_and_is_audited(app, client, world, headers_of, photo_id):
    response = client.get(f"/api/v1/photos/{photo_id}/image", headers=headers_of("clinician_a"))
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data[:2] == b"\xff\xd8" and not exif_has_gps(response.data)
    assert response.headers["Cache-Control"].startswith("private")
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_id == photo_id,
                                                             AuditEvent.action == "photo.read")).all()
        assert [str(e.actor_user_id) for e in events] == [str(world.clinician_a.id)]
        assert "download_image" in events[0].details


def _photo_keys(app, photo_id: str) -> list[str]:
    with app.app_context():
        photo = db.session.get(Photo, uuid.UUID(photo_id))
        return list(current_storage().iter_keys(photo.prefix))


def test_delete_removes_bytes_and_overlays_keeps_row(app, client, headers_of, photo_id):
    assert any(k.endswith("redness.png") for k in _photo_keys(app, photo_id))
    headers = headers_of("patient_user")
    before = client.get(f"/api/v1/photos/{photo_id}", headers=headers).get_json()
    schedule = client.get(f"/api/v1/courses/{before['course_id']}/schedule", headers=headers).get_json()
    assert "baseline" in {item["name"] for item in schedule["completed"]}
    assert client.delete(f"/api/v1/photos/{photo_id}", headers=headers).status_code == 204
    assert _photo_keys(app, photo_id) == []
    detail = client.get(f"/api/v1/photos/{photo_id}", headers=headers).get_json()
    assert detail["deletion_reason"] == "deleted" and detail["deleted_at"] is not None
    assert detail["counts"] is False and detail["latest_analysis"]["overlays"] == []
    assert_problem(client.get(f"/api/v1/photos/{photo_id}/image", headers=headers), 410, type_="photo-removed")
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == photo_id)).all()
        assert "photo.delete" in actions
    # The milestone only this photo completed is open again.
    schedule = client.get(f"/api/v1/courses/{detail['course_id']}/schedule", headers=headers).get_json()
    assert "baseline" not in {item["name"] for item in schedule["completed"]}


def test_consent_withdrawal_purges_every_photo(app, client, world, headers_of, photo_id):
    headers = headers_of("patient_user")
    second = upload(client, headers, world.patient.id, phone_jpeg(), course_id=world.course.id, view="left")
    assert second.status_code == 201
    withdrawn = client.post(f"/api/v1/patients/{world.patient.id}/consents", headers=headers,
                            json={"scope": "clinical_photo", "action": "withdraw", "version": "v1"})
    assert withdrawn.status_code == 201, withdrawn.get_json()
    for pid in (photo_id, second.get_json()["id"]):
        assert _photo_keys(app, pid) == []
        detail = client.get(f"/api/v1/photos/{pid}", headers=headers).get_json()
        assert detail["deletion_reason"] == "consent_withdrawn"
    refused = upload(client, headers, world.patient.id, phone_jpeg(), course_id=world.course.id)
    assert_problem(refused, 409, type_="consent-required")
