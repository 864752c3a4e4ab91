"""Admin pages: staff accounts, audit log with filters and chain verification, studies and grants."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from backend.extensions import db
from backend.models.accounts import User
from backend.models.audit import AuditEvent
from backend.models.studies import Study, StudyGrant
from tests.backend.audit_helpers import restore_append_only_guard, without_append_only_guard
from tests.backend.dashboard_helpers import csrf_of, sign_in
from tests.backend.test_clinic_workspace import actions, count, submit

pytestmark = pytest.mark.usefixtures("clock")

NEW_USER = {"email": "Dr.New@Example.org", "display_name": "Dr New", "role": "clinician",
            "password": "a long enough passphrase 42"}


@pytest.fixture
def admin(app, world) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, world.admin_a.email).status_code == 302
    return client


def test_admin_creates_deactivates_and_reactivates_an_account(app, world, admin):
    assert submit(admin, "/dashboard/admin/users", NEW_USER).status_code == 303
    with app.app_context():
        created = db.session.scalars(select(User).where(User.email == "dr.new@example.org")).one()
        assert created.clinic_id == world.clinic_a.id and created.role == "clinician"
    assert sign_in(FlaskClient(app), "dr.new@example.org", NEW_USER["password"]).status_code == 302
    csrf = csrf_of(admin.get("/dashboard/admin/users").get_data(as_text=True))
    assert admin.post(f"/dashboard/admin/users/{created.id}/active",
                      data={"csrf_token": csrf, "active": "false"}).status_code == 303
    assert sign_in(app.test_client(), "dr.new@example.org", NEW_USER["password"]).status_code == 401
    assert admin.post(f"/dashboard/admin/users/{created.id}/active",
                      data={"csrf_token": csrf, "active": "true"}).status_code == 303
    assert {"user.create", "user.deactivate", "user.activate"} <= set(actions(app))
    # Another clinic's account is not reachable; the admin's own cannot be switched off.
    assert admin.post(f"/dashboard/admin/users/{world.clinician_b.id}/active",
                      data={"csrf_token": csrf, "active": "false"}).status_code == 404
    assert admin.post(f"/dashboard/admin/users/{world.admin_a.id}/active",
                      data={"csrf_token": csrf, "active": "false"}).status_code == 409


@pytest.mark.parametrize("field, value", [("email", "not-an-email"), ("role", "patient"), ("password", "short")])
def test_bad_account_input_is_shown_next_to_the_field(app, admin, field, value):
    before = count(app, User)
    response = submit(admin, "/dashboard/admin/users", {**NEW_USER, field: value})
    assert response.status_code == 422 and f'id="e-{field}"' in response.get_data(as_text=True)
    assert NEW_USER["password"] not in response.get_data(as_text=True)  # never echoed into the page
    assert count(app, User) == before


def test_a_taken_email_is_refused_next_to_the_field(app, world, admin):
    response = submit(admin, "/dashboard/admin/users", {**NEW_USER, "email": world.clinician_b.email.upper()})
    assert response.status_code == 422 and 'id="e-email"' in response.get_data(as_text=True)


def test_audit_log_filters_and_verifies_the_chain(app, database_backend, world, admin):
    submit(admin, "/dashboard/admin/users", NEW_USER)
    page = admin.get(f"/dashboard/admin/audit?actor={world.admin_a.id}&action=user.").get_data(as_text=True)
    assert "user.create" in page and "auth.login" not in page
    assert admin.get("/dashboard/admin/audit?since=yesterday").status_code == 422
    csrf = csrf_of(page)
    verified = admin.post("/dashboard/admin/audit/verify", data={"csrf_token": csrf}).get_data(as_text=True)
    assert "Intact." in verified
    with app.app_context():
        seq = db.session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq).limit(1))
        db.session.remove()
    with app.app_context(), db.engine.begin() as conn:  # tamper with a row: the page says where the chain breaks
        without_append_only_guard(conn, database_backend)
        conn.execute(text("UPDATE audit_events SET object_id = 'other' WHERE seq = :seq"), {"seq": seq})
        restore_append_only_guard(conn, database_backend)
    broken = admin.post("/dashboard/admin/audit/verify", data={"csrf_token": csrf}).get_data(as_text=True)
    assert f"Broken</strong> at event {seq}" in broken


def test_study_created_joined_granted_and_revoked(app, world, admin):
    created = submit(admin, "/dashboard/admin/studies", {"title": "Rosacea 2026", "indication": "redness_rosacea",
                                                         "starts_on": "2026-01-01", "ends_on": ""})
    assert created.status_code == 303
    with app.app_context():
        study = db.session.scalars(select(Study)).one()
    page = admin.get(created.headers["Location"]).get_data(as_text=True)
    csrf = csrf_of(page)
    assert world.researcher.email in page
    grant = admin.post(f"/dashboard/admin/studies/{study.id}/grants",
                       data={"csrf_token": csrf, "researcher_id": str(world.researcher.id)})
    assert grant.status_code == 303
    refused = admin.post(f"/dashboard/admin/studies/{study.id}/grants",
                         data={"csrf_token": csrf, "researcher_id": str(world.clinician_a.id)})
    assert refused.status_code == 422 and "not an active researcher" in refused.get_data(as_text=True)
    assert admin.post(f"/dashboard/admin/studies/{study.id}/grants",
                      data={"csrf_token": csrf, "revoke": str(world.researcher.id)}).status_code == 303
    with app.app_context():
        assert db.session.scalars(select(StudyGrant.revoked_at)).one() is not None
    other = app.test_client()
    assert sign_in(other, world.admin_b.email).status_code == 302
    other_csrf = csrf_of(other.get(f"/dashboard/admin/studies/{study.id}").get_data(as_text=True))
    assert other.post(f"/dashboard/admin/studies/{study.id}/grants",
                      data={"csrf_token": other_csrf, "researcher_id": str(world.researcher.id)}).status_code == 403
    assert other.post(f"/dashboard/admin/studies/{study.id}/membership",
                      data={"csrf_token": other_csrf, "join": "true"}).status_code == 303
    assert {"study.create", "study.grant", "study.revoke", "study.clinic_join"} <= set(actions(app))


def test_study_with_dates_out_of_order_is_refused(app, admin):
    response = submit(admin, "/dashboard/admin/studies", {"title": "T", "starts_on": "2026-05-01",
                                                          "ends_on": "2026-01-01"})
    assert response.status_code == 422 and 'id="e-ends_on"' in response.get_data(as_text=True)
    assert count(app, Study) == 0
