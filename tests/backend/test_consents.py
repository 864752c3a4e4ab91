"""Consents: grant/withdraw events per scope, derived current state, kept history."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.errors import Conflict
from backend.extensions import db
from backend.http.problems import domain_error_status
from backend.models.audit import AuditEvent
from backend.models.clinical import ConsentEvent, Patient
from backend.services import insert_or_conflict
from backend.services.patients import current_consent
from tests.backend.clinical_helpers import assert_problem

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


def consent_url(world) -> str:
    return f"/api/v1/patients/{world.patient.id}/consents"


def record(client, world, headers, scope, action, version="2026-01"):
    return client.post(consent_url(world), json={"scope": scope, "action": action, "version": version},
                       headers=headers)


def state(client, world, headers) -> dict[str, dict]:
    body = client.get(consent_url(world), headers=headers).get_json()
    assert body["patient_id"] == str(world.patient.id)
    return {item["scope"]: item for item in body["scopes"]}


def test_nothing_is_granted_before_any_event(client, world, headers_of):
    scopes = state(client, world, headers_of("clinician_a"))
    assert set(scopes) == {"clinical_photo", "research", "marketing", "research_region_patches"}
    assert all(item["granted"] is False and item["version"] is None and item["since"] is None
               for item in scopes.values())


def test_grant_then_withdraw_derives_state_and_keeps_history(app, client, world, headers_of, clock):
    patient_headers = headers_of("patient_user")
    granted = record(client, world, patient_headers, "research", "grant")
    assert granted.status_code == 201
    assert granted.get_json()["recorded_by_user_id"] == str(world.patient_user.id)
    assert state(client, world, patient_headers)["research"]["granted"] is True
    clock.advance(minutes=5)
    withdrawn = record(client, world, headers_of("clinician_a"), "research", "withdraw")
    assert withdrawn.status_code == 201
    scopes = state(client, world, patient_headers)
    assert scopes["research"]["granted"] is False
    assert scopes["research"]["since"] == withdrawn.get_json()["recorded_at"]
    assert scopes["clinical_photo"]["granted"] is False
    history = client.get(f"{consent_url(world)}/history", headers=patient_headers).get_json()
    assert [(e["scope"], e["action"], e["seq"]) for e in history["items"]] == [
        ("research", "grant", 1), ("research", "withdraw", 2),
    ]
    with app.app_context():
        patient = db.session.get(Patient, world.patient.id)
        assert current_consent(patient, "research") is False


def test_scopes_are_independent(app, client, world, headers_of):
    headers = headers_of("clinician_a")
    assert record(client, world, headers, "clinical_photo", "grant").status_code == 201
    assert record(client, world, headers, "marketing", "grant").status_code == 201
    assert record(client, world, headers, "marketing", "withdraw").status_code == 201
    scopes = state(client, world, headers)
    assert (scopes["clinical_photo"]["granted"], scopes["marketing"]["granted"], scopes["research"]["granted"]) \
        == (True, False, False)
    with app.app_context():
        patient = db.session.get(Patient, world.patient.id)
        assert [current_consent(patient, s) for s in ("clinical_photo", "research", "marketing")] \
            == [True, False, False]


def test_withdrawing_what_is_not_granted_is_409(client, world, headers_of):
    assert_problem(record(client, world, headers_of("patient_user"), "research", "withdraw"), 409,
                   type_="consent-not-granted")


def test_regranting_same_version_is_409_but_new_version_is_recorded(client, world, headers_of):
    headers = headers_of("patient_user")
    assert record(client, world, headers, "clinical_photo", "grant", "v1").status_code == 201
    assert_problem(record(client, world, headers, "clinical_photo", "grant", "v1"), 409,
                   type_="consent-already-granted")
    assert record(client, world, headers, "clinical_photo", "grant", "v2").status_code == 201
    assert state(client, world, headers)["clinical_photo"]["version"] == "v2"


@pytest.mark.parametrize("body, field", [
    ({"scope": "advertising", "action": "grant", "version": "1"}, "scope"),
    ({"scope": "research", "action": "revoke", "version": "1"}, "action"),
    ({"scope": "research", "action": "grant", "version": ""}, "version"),
    ({"scope": "research", "action": "grant"}, "version"),
])
def test_invalid_consent_event_is_422(client, world, headers_of, body, field):
    assert_problem(client.post(consent_url(world), json=body, headers=headers_of("clinician_a")), 422,
                   fields=(field,))


def test_current_consent_rejects_unknown_scope(app, world):
    with app.app_context():
        with pytest.raises(ValueError):
            current_consent(db.session.get(Patient, world.patient.id), "advertising")


def test_consent_change_is_audited(app, client, world, headers_of):
    event = record(client, world, headers_of("patient_user"), "research", "grant").get_json()
    with app.app_context():
        [audit_row] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "consent_event.grant"))
    assert audit_row.object_id == event["id"]
    assert audit_row.actor_user_id == world.patient_user.id


def test_unique_conflict_becomes_409_and_keeps_the_transaction_usable(app, world):
    with app.app_context():
        first = ConsentEvent(patient_id=world.patient.id, scope="research", action="grant", version="v1", seq=1)
        insert_or_conflict(first, Conflict(errors={"scope": ["taken"]}, slug="consent-conflict"))
        clash = ConsentEvent(patient_id=world.patient.id, scope="research", action="grant", version="v2", seq=1)
        with pytest.raises(Conflict) as raised:
            insert_or_conflict(clash, Conflict(errors={"scope": ["taken"]}, slug="consent-conflict"))
        assert (domain_error_status(raised.value), raised.value.slug) == (409, "consent-conflict")
        # The savepoint rolled back only the clash: the first event is still there to commit.
        db.session.commit()
        assert [e.version for e in db.session.scalars(select(ConsentEvent))] == ["v1"]
