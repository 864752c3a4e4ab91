"""One sign-in rule for every way in: the API login and the dashboard login behave alike.

Both go through ``backend.auth.signin.authenticate``: the same rate limits, the same rehash,
the same audit entries (the dashboard's name their channel).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backend.auth.passwords import needs_rehash
from backend.auth.signin import authenticate
from backend.errors import SignInRateLimited, SignInRefused
from backend.extensions import db
from backend.models.accounts import LoginAttempt, User
from backend.models.audit import AuditEvent
from tests.backend.dashboard_helpers import sign_in as dashboard_sign_in
from tests.factories import DEFAULT_PASSWORD

WAYS_IN = ("api", "dashboard")
#: Status of a successful sign-in per way in (the dashboard redirects to its patient list).
SUCCESS = {"api": 200, "dashboard": 302}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LOGIN_MAX_FAILURES_PER_ACCOUNT": 2}


def sign_in(client, way: str, email: str, password: str = DEFAULT_PASSWORD) -> int:
    """Sign in through one way in; the response status."""
    if way == "api":
        return client.post("/api/v1/auth/login", json={"email": email, "password": password}).status_code
    return dashboard_sign_in(client, email, password).status_code


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def attempts(app) -> list[bool]:
    with app.app_context():
        return list(db.session.scalars(select(LoginAttempt.succeeded).order_by(LoginAttempt.at)))


@pytest.mark.parametrize("way", WAYS_IN)
def test_success_is_recorded_and_audited_alike(app, client, make_user, way):
    user = make_user("clinician")
    assert sign_in(client, way, user.email.upper()) == SUCCESS[way]
    [row] = audit_rows(app, "auth.login")
    assert row.actor_user_id == user.id
    assert json.loads(row.details) == ({"channel": "dashboard"} if way == "dashboard" else {})
    assert attempts(app) == [True]
    with app.app_context():
        assert db.session.get(User, user.id).last_login_at is not None


@pytest.mark.parametrize("way", WAYS_IN)
@pytest.mark.parametrize("case", ["wrong-password", "unknown-email", "inactive"])
def test_refusals_are_recorded_and_audited_alike(app, client, make_user, way, case):
    user = make_user("clinician", is_active=case != "inactive")
    email = "nobody@example.org" if case == "unknown-email" else user.email
    password = "wrong password!" if case == "wrong-password" else DEFAULT_PASSWORD
    assert sign_in(client, way, email, password) == 401
    [row] = audit_rows(app, "auth.login_failed")
    assert row.actor_user_id is None
    assert row.object_id == (None if case == "unknown-email" else str(user.id))
    assert attempts(app) == [False]
    assert audit_rows(app, "auth.login") == []


@pytest.mark.parametrize("way", WAYS_IN)
def test_rate_limit_counts_failures_of_both_ways_in(app, client, make_user, way):
    user = make_user("clinician")
    other = "dashboard" if way == "api" else "api"
    assert sign_in(client, other, user.email, "wrong password!") == 401
    assert sign_in(client, way, user.email, "wrong password!") == 401
    # Two failures of the account (LOGIN_MAX_FAILURES_PER_ACCOUNT): even the right password waits.
    assert sign_in(client, way, user.email) == 429
    assert attempts(app) == [False, False]  # the refused-by-limit attempt is not counted


@pytest.mark.parametrize("way", WAYS_IN)
def test_password_is_rehashed_by_every_way_in(app, client, make_user, way):
    user = make_user("clinician")
    app.config["ARGON2_TIME_COST"] = 2
    with app.app_context():
        assert needs_rehash(db.session.get(User, user.id).password_hash)
    assert sign_in(client, way, user.email) == SUCCESS[way]
    with app.app_context():
        stored = db.session.get(User, user.id).password_hash
    assert "t=2" in stored
    with app.app_context():
        assert not needs_rehash(stored)


def test_authenticate_refuses_roles_not_allowed_this_way_in(app, make_user):
    patient = make_user("patient")
    with app.test_request_context():
        with pytest.raises(SignInRefused):
            authenticate(patient.email, DEFAULT_PASSWORD, "192.0.2.1", roles=("clinician", "admin"))
        assert authenticate(patient.email, DEFAULT_PASSWORD, "192.0.2.1").id == patient.id


def test_authenticate_says_how_long_to_wait(app, make_user):
    user = make_user("clinician")
    with app.test_request_context():
        for _ in range(2):
            with pytest.raises(SignInRefused):
                authenticate(user.email, "wrong password!", "192.0.2.1")
        with pytest.raises(SignInRateLimited) as limited:
            authenticate(user.email, DEFAULT_PASSWORD, "192.0.2.1")
    assert limited.value.retry_after > 0
