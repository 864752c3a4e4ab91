"""Clinic administration: admins manage only their own clinic's accounts."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models.audit import AuditEvent
from tests.factories import DEFAULT_PASSWORD, issue_tokens

NEW_STAFF = {"email": "New.Staff@Clinic.example", "role": "researcher", "display_name": "R. Search",
             "password": "a long staff password"}


@pytest.fixture
def clinic(make_clinic):
    return make_clinic("Own clinic")


@pytest.fixture
def admin(make_user, clinic):
    return make_user("admin", clinic)


@pytest.fixture
def headers(auth_headers, admin):
    return auth_headers(admin)


def test_list_shows_only_own_clinic(client, make_user, clinic, admin, headers):
    colleague = make_user("clinician", clinic)
    make_user("clinician")  # another clinic
    body = client.get("/api/v1/admin/users", headers=headers).get_json()
    assert {item["id"] for item in body["items"]} == {str(admin.id), str(colleague.id)}
    clinicians = client.get("/api/v1/admin/users?role=clinician", headers=headers).get_json()
    assert [item["id"] for item in clinicians["items"]] == [str(colleague.id)]


def test_create_staff_account(app, client, clinic, headers):
    response = client.post("/api/v1/admin/users", json=NEW_STAFF, headers=headers)
    assert response.status_code == 201
    created = response.get_json()
    assert created["email"] == "new.staff@clinic.example" and created["role"] == "researcher"
    assert created["clinic_id"] == str(clinic.id) and "password" not in created
    assert client.get(response.headers["Location"], headers=headers).get_json() == created
    login = client.post("/api/v1/auth/login", json={"email": NEW_STAFF["email"], "password": NEW_STAFF["password"]})
    assert login.status_code == 200
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create")).one()
        assert event.object_id == created["id"] and "password" not in event.details


def test_duplicate_email_is_409(client, make_user, headers):
    make_user("clinician", email="taken@example.org")  # even in another clinic
    response = client.post("/api/v1/admin/users", json={**NEW_STAFF, "email": "TAKEN@example.org"}, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:skintrack:problem:email-taken"


@pytest.mark.parametrize("change, field", [({"role": "patient"}, "role"), ({"email": "not-an-email"}, "email"),
                                           ({"password": "short"}, "password"), ({"clinic_id": str(uuid.uuid4())}, "clinic_id")])
def test_invalid_new_account_is_422(client, headers, change, field):
    response = client.post("/api/v1/admin/users", json={**NEW_STAFF, **change}, headers=headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_deactivation_ends_sign_ins_and_reactivation_allows_login(client, make_user, clinic, headers, app):
    colleague = make_user("clinician", clinic)
    tokens = issue_tokens(app, colleague)
    response = client.post(f"/api/v1/admin/users/{colleague.id}/deactivate", headers=headers)
    assert response.status_code == 200 and response.get_json()["is_active"] is False
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    credentials = {"email": colleague.email, "password": DEFAULT_PASSWORD}
    assert client.post("/api/v1/auth/login", json=credentials).status_code == 401
    assert client.post(f"/api/v1/admin/users/{colleague.id}/reactivate", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/login", json=credentials).status_code == 200


def test_admin_cannot_deactivate_self(client, admin, headers):
    response = client.post(f"/api/v1/admin/users/{admin.id}/deactivate", headers=headers)
    assert response.status_code == 409


@pytest.mark.parametrize("method, suffix", [("get", ""), ("post", "/deactivate"), ("post", "/reactivate")])
def test_other_clinics_users_are_404(client, make_user, headers, method, suffix):
    outsider = make_user("clinician")
    for user_id in (outsider.id, uuid.uuid4()):
        response = getattr(client, method)(f"/api/v1/admin/users/{user_id}{suffix}", headers=headers)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("role", ["patient", "clinician", "researcher"])
@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/admin/users"), ("post", "/api/v1/admin/users"),
    ("get", "/api/v1/admin/users/{id}"), ("post", "/api/v1/admin/users/{id}/deactivate"),
    ("post", "/api/v1/admin/users/{id}/reactivate"),
])
def test_non_admin_roles_get_403(client, make_user, auth_headers, clinic, admin, role, method, path):
    user = make_user(role, clinic)
    kwargs = {"json": NEW_STAFF} if method == "post" and path.endswith("users") else {}
    response = getattr(client, method)(path.format(id=admin.id), headers=auth_headers(user), **kwargs)
    assert response.status_code == 403


def test_anonymous_gets_401(client, admin):
    assert client.get("/api/v1/admin/users").status_code == 401
    assert client.post(f"/api/v1/admin/users/{admin.id}/deactivate").status_code == 401
