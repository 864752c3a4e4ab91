"""Patients: creation with pseudonymous study ids, validation, updates, reads, audit."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models.audit import AuditEvent
from backend.models.clinical import Patient
from tests import factories
from tests.backend.clinical_helpers import assert_problem

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

STUDY_ID = re.compile(r"^ST-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{10}$")
NEW_PATIENT = {
    "full_name": "Maria Example",
    "date_of_birth": "1979-11-30",
    "sex": "female",
    "fitzpatrick_type": 5,
    "email": "maria@example.org",
    "phone": "+34 600 000 000",
}


def audit_events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_clinician_creates_patient_in_own_clinic(client, world, headers_of):
    response = client.post("/api/v1/patients", json=NEW_PATIENT, headers=headers_of("clinician_a"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["clinic_id"] == str(world.clinic_a.id)
    assert STUDY_ID.match(body["study_id"])
    assert body["enrolled"] is False
    assert {key: body[key] for key in NEW_PATIENT} == NEW_PATIENT
    fetched = client.get(response.headers["Location"], headers=headers_of("clinician_a"))
    assert fetched.status_code == 200 and fetched.get_json() == body


def test_study_ids_are_random_not_derived_from_patient_data(client, headers_of):
    study_ids = [
        client.post("/api/v1/patients", json=NEW_PATIENT, headers=headers_of("clinician_a")).get_json()["study_id"]
        for _ in range(12)
    ]
    assert len(set(study_ids)) == 12  # identical data, different pseudonyms
    assert all("MARIA" not in study_id for study_id in study_ids)


@pytest.mark.parametrize("change, field", [
    ({"fitzpatrick_type": 7}, "fitzpatrick_type"),
    ({"fitzpatrick_type": "3"}, "fitzpatrick_type"),
    ({"sex": "robot"}, "sex"),
    ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
    ({"date_of_birth": "30/11/1979"}, "date_of_birth"),
    ({"email": "not-an-email"}, "email"),
    ({"phone": "call me"}, "phone"),
    ({"full_name": ""}, "full_name"),
    ({"nickname": "Mo"}, "nickname"),
])
def test_invalid_patient_is_422_problem(app, client, headers_of, change, field):
    response = client.post("/api/v1/patients", json={**NEW_PATIENT, **change}, headers=headers_of("clinician_a"))
    assert_problem(response, 422, fields=(field,))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Patient)) == 4  # the world's


def test_missing_required_fields_are_listed(client, headers_of):
    body = assert_problem(client.post("/api/v1/patients", json={}, headers=headers_of("clinician_a")), 422)
    assert {"full_name", "date_of_birth", "sex", "fitzpatrick_type"} <= set(body["errors"])


def test_update_changes_only_given_fields_and_audits_names_not_values(app, client, world, headers_of):
    response = client.patch(f"/api/v1/patients/{world.patient.id}", json={"phone": "+1 555 0199"},
                            headers=headers_of("clinician_a"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["phone"] == "+1 555 0199" and body["full_name"] == "Pat Own"
    [event] = audit_events(app, "patient.update")
    assert event.object_id == str(world.patient.id)
    assert json.loads(event.details) == {"fields": ["phone"]}
    assert "555" not in event.details


def test_every_read_is_audited(app, client, world, headers_of):
    client.get(f"/api/v1/patients/{world.patient.id}", headers=headers_of("admin_a"))
    client.get("/api/v1/me/patient", headers=headers_of("patient_user"))
    reads = audit_events(app, "patient.read")
    assert [(event.object_id, event.actor_role) for event in reads] == [
        (str(world.patient.id), "admin"), (str(world.patient.id), "patient"),
    ]
    assert all("Pat" not in event.details for event in reads)


def test_list_reads_are_audited_per_patient(app, client, world, headers_of):
    response = client.get("/api/v1/patients", headers=headers_of("clinician_a"))
    listed = {item["id"] for item in response.get_json()["items"]}
    assert listed == {str(world.patient.id), str(world.other_patient.id), str(world.new_patient.id)}
    assert {event.object_id for event in audit_events(app, "patient.read")} == listed


def test_list_is_paginated_with_stable_cursor(client, world, headers_of):
    first = client.get("/api/v1/patients?limit=2", headers=headers_of("clinician_a")).get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = client.get(f"/api/v1/patients?limit=2&cursor={first['next_cursor']}",
                        headers=headers_of("clinician_a")).get_json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    names = [item["full_name"] for item in first["items"] + second["items"]]
    assert names == ["Pat Own", "Pat Other", "Pat New"]  # creation order


def test_list_filters_by_study_id_within_visible_patients(client, world, headers_of):
    found = client.get(f"/api/v1/patients?study_id={world.patient.study_id}", headers=headers_of("clinician_a"))
    assert [item["id"] for item in found.get_json()["items"]] == [str(world.patient.id)]
    other_clinic = client.get(f"/api/v1/patients?study_id={world.patient.study_id}",
                              headers=headers_of("clinician_b"))
    assert other_clinic.get_json()["items"] == []


def test_page_limit_over_100_is_422(client, headers_of):
    assert_problem(client.get("/api/v1/patients?limit=101", headers=headers_of("clinician_a")), 422,
                   fields=("limit",))


def test_create_is_idempotent(app, client, headers_of):
    headers = {**headers_of("clinician_a"), "Idempotency-Key": "create-maria-1"}
    first = client.post("/api/v1/patients", json=NEW_PATIENT, headers=headers)
    retry = client.post("/api/v1/patients", json=NEW_PATIENT, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.get_json()["id"] == first.get_json()["id"]
    assert retry.headers["Location"] == first.headers["Location"]
    reused = client.post("/api/v1/patients", json={**NEW_PATIENT, "sex": "male"}, headers=headers)
    assert_problem(reused, 422, type_="idempotency-key-reused")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Patient)) == 5


def test_own_record_for_patient_login(client, world, headers_of):
    response = client.get("/api/v1/me/patient", headers=headers_of("patient_user"))
    assert response.status_code == 200
    assert response.get_json()["id"] == str(world.patient.id)
    assert response.get_json()["enrolled"] is True


def test_patient_login_without_record_gets_404(app, client, world):
    stray = factories.make_user(app, "patient", world.clinic_a)
    assert_problem(client.get("/api/v1/me/patient", headers=factories.auth_headers(app, stray)), 404)


def test_malformed_and_unknown_ids_are_404(client, headers_of):
    assert_problem(client.get("/api/v1/patients/not-a-uuid", headers=headers_of("clinician_a")), 404)
    assert_problem(client.get("/api/v1/patients/00000000-0000-4000-8000-000000000000",
                              headers=headers_of("clinician_a")), 404)


def test_non_json_body_is_415(client, headers_of):
    response = client.post("/api/v1/patients", data="full_name=x", content_type="application/x-www-form-urlencoded",
                           headers=headers_of("clinician_a"))
    assert_problem(response, 415)


def test_clinical_audit_rows_keep_the_chain_valid_and_visible_to_the_clinic_admin(client, world, headers_of):
    created = client.post("/api/v1/patients", json=NEW_PATIENT, headers=headers_of("clinician_a")).get_json()
    client.get(f"/api/v1/patients/{created['id']}", headers=headers_of("clinician_a"))
    client.patch(f"/api/v1/patients/{created['id']}", json={"fitzpatrick_type": 4}, headers=headers_of("clinician_a"))
    verified = client.get("/api/v1/audit/verify", headers=headers_of("admin_a")).get_json()
    assert verified["ok"] is True and verified["checked"] >= 3
    events = client.get("/api/v1/audit?limit=100", headers=headers_of("admin_a")).get_json()["items"]
    mine = [(e["action"], e["object_id"]) for e in events if e["object_id"] == created["id"]]
    assert mine == [("patient.update", created["id"]), ("patient.read", created["id"]),
                    ("patient.create", created["id"])]  # newest first
    other_clinic = client.get("/api/v1/audit?limit=100", headers=headers_of("admin_b")).get_json()["items"]
    assert all(e["object_id"] != created["id"] for e in other_clinic)
