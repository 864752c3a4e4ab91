"""Enrolment: invitations (one-time code and link token, stored hashed) and sign-up."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models.accounts import User
from backend.models.audit import AuditEvent
from backend.models.clinical import Invitation
from backend.models.idempotency import IdempotencyRecord
from backend.services.enrolment import normalise_code
from tests import factories
from tests.backend.clinical_helpers import assert_problem

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

CODE = re.compile(r"^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}$")
PASSWORD = "a long new password"


def invite(client, world, headers_of, **body):
    response = client.post(f"/api/v1/patients/{world.new_patient.id}/invitations", json=body,
                           headers=headers_of("clinician_a"))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def enrol(client, email="new.patient@example.org", **secret):
    return client.post("/api/v1/auth/enrol", json={"email": email, "password": PASSWORD, **secret})


def test_invitation_code_enrols_the_patient_once(app, client, world, headers_of):
    invitation = invite(client, world, headers_of)
    assert CODE.match(invitation["code"]) and invitation["expires_at"].startswith("2026-03-08T12:00:00")
    response = enrol(client, code=invitation["code"])
    assert response.status_code == 201
    tokens = response.get_json()
    me = client.get("/api/v1/me/patient", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["id"] == str(world.new_patient.id) and me.get_json()["enrolled"] is True
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "new.patient@example.org"))
        assert (user.role, user.clinic_id) == ("patient", world.clinic_a.id)
    second = enrol(client, email="someone.else@example.org", code=invitation["code"])
    assert_problem(second, 400, type_="invitation-invalid")
    login = client.post("/api/v1/auth/login", json={"email": "new.patient@example.org", "password": PASSWORD})
    assert login.status_code == 200


def test_link_token_enrols_too(client, world, headers_of):
    invitation = invite(client, world, headers_of)
    assert enrol(client, token=invitation["link_token"]).status_code == 201
    assert_problem(enrol(client, email="x@example.org", code=invitation["code"]), 400)  # same invitation


def test_typed_code_forgives_case_spaces_and_lookalikes(client, world, headers_of):
    code = invite(client, world, headers_of)["code"]
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert enrol(client, code=typed).status_code == 201


@pytest.mark.parametrize("typed, canonical", [
    ("abcd-efgh-jkmn", "ABCDEFGHJKMN"),
    (" ABCD EFGH JKMN ", "ABCDEFGHJKMN"),
    ("IOL1-0000-0000", "1011" + "0" * 8),
    ("ABCD-EFGH-JKM", None),   # too short
    ("ABCD-EFGH-JKMU", None),  # U is not Crockford
])
def test_normalise_code(typed, canonical):
    assert normalise_code(typed) == canonical


def test_secrets_are_stored_only_as_keyed_hashes(app, client, world, headers_of):
    invitation = invite(client, world, headers_of)
    with app.app_context():
        [row] = db.session.scalars(select(Invitation))
        stored = " ".join(str(value) for value in vars(row).values())
    assert invitation["code"].replace("-", "") not in stored and invitation["link_token"] not in stored
    assert len(row.code_hash) == len(row.token_hash) == 64


def test_expired_invitation_fails(app, client, world, headers_of, clock):
    code = invite(client, world, headers_of, expires_in_days=2)["code"]
    clock.advance(days=2)
    assert_problem(enrol(client, code=code), 400, type_="invitation-invalid")


def test_new_invitation_revokes_the_previous_one(client, world, headers_of):
    first = invite(client, world, headers_of)["code"]
    second = invite(client, world, headers_of)["code"]
    assert_problem(enrol(client, code=first), 400)
    assert enrol(client, code=second).status_code == 201


def test_enrolled_patient_cannot_be_invited(client, world, headers_of):
    response = client.post(f"/api/v1/patients/{world.patient.id}/invitations", json={},
                           headers=headers_of("clinician_a"))
    assert_problem(response, 409, type_="already-enrolled")


def test_email_of_an_existing_account_is_409_and_invitation_stays_usable(client, world, headers_of):
    code = invite(client, world, headers_of)["code"]
    assert_problem(enrol(client, email=world.clinician_a.email.upper(), code=code), 409, type_="email-taken")
    assert enrol(client, code=code).status_code == 201


@pytest.mark.parametrize("body, field", [
    ({"email": "a@example.org", "password": PASSWORD}, "code"),  # neither secret
    ({"email": "a@example.org", "password": PASSWORD, "code": "X", "token": "Y"}, "code"),  # both
    ({"email": "nope", "password": PASSWORD, "code": "ABCD-EFGH-JKMN"}, "email"),
    ({"email": "a@example.org", "password": "short", "code": "ABCD-EFGH-JKMN"}, "password"),
])
def test_invalid_enrolment_is_422(client, body, field):
    assert_problem(client.post("/api/v1/auth/enrol", json=body), 422, fields=(field,))


def test_unknown_code_and_token_are_400(client):
    assert_problem(enrol(client, code="ABCD-EFGH-JKMN"), 400, type_="invitation-invalid")
    assert_problem(enrol(client, token="not-a-token"), 400, type_="invitation-invalid")


def test_guessing_is_rate_limited_per_address(client):
    statuses = [enrol(client, code="ABCD-EFGH-JKMN").status_code for _ in range(11)]
    assert statuses == [400] * 10 + [429]
    limited = enrol(client, code="ABCD-EFGH-JKMN")
    body = assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) > 0 and body["retry_after"] > 0


def test_enrolment_is_audited_with_the_new_user_as_actor(app, client, world, headers_of):
    enrol(client, code=invite(client, world, headers_of)["code"])
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.enrol"))
        user_id = db.session.scalar(select(User.id).where(User.email == "new.patient@example.org"))
    assert (event.object_id, event.actor_user_id, event.clinic_id) == \
        (str(world.new_patient.id), user_id, world.clinic_a.id)
    assert "new.patient" not in event.details


def test_patient_from_another_clinic_cannot_be_invited(app, client, world):
    response = client.post(f"/api/v1/patients/{world.new_patient.id}/invitations", json={},
                           headers=factories.auth_headers(app, world.clinician_b))
    assert_problem(response, 404)


def test_secrets_never_land_in_idempotency_replays(app, client, world, headers_of):
    headers = {**headers_of("clinician_a"), "Idempotency-Key": "invite-1"}
    invitation = client.post(f"/api/v1/patients/{world.new_patient.id}/invitations", json={}, headers=headers)
    enrolled = client.post("/api/v1/auth/enrol", headers={"Idempotency-Key": "enrol-1"},
                           json={"email": "n@example.org", "password": PASSWORD, "code": invitation.get_json()["code"]})
    assert (invitation.status_code, enrolled.status_code) == (201, 201)
    with app.app_context():
        assert db.session.scalars(select(IdempotencyRecord)).all() == []
