"""Login, token rotation with reuse detection, logout, roles, rate limits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.auth.passwords import hash_password, needs_rehash
from backend.extensions import db
from backend.models.accounts import RefreshToken, User
from tests.backend.clock import FakeClock
from tests.factories import DEFAULT_PASSWORD

PROBLEM = "application/problem+json"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app_config(app_config, clock):
    return {**app_config, "CLOCK": clock, "ACCESS_TOKEN_TTL": 900, "REFRESH_TOKEN_TTL": 86400}


def login(client, email, password=DEFAULT_PASSWORD, **environ):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password},
                       environ_base=environ)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_working_token_pair(client, make_user):
    user = make_user("clinician", email="Ana.Clin@Example.org")
    response = login(client, "  ana.clin@EXAMPLE.org ")
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == str(user.id)
    assert me.get_json()["email"] == "ana.clin@example.org"
    assert "password_hash" not in me.get_json()


def test_refresh_tokens_are_stored_hashed(app, client, make_user):
    user = make_user("patient")
    refresh_token = login(client, user.email).get_json()["refresh_token"]
    with app.app_context():
        stored = db.session.scalars(select(RefreshToken.token_hash)).all()
    assert len(stored) == 1 and refresh_token not in stored[0] and len(stored[0]) == 64


@pytest.mark.parametrize("case", ["wrong-password", "unknown-email", "deactivated", "no-password"])
def test_bad_credentials_answer_the_same_401(client, make_user, case):
    user = make_user("clinician", is_active=case != "deactivated",
                     password=None if case == "no-password" else DEFAULT_PASSWORD)
    email = "nobody@example.org" if case == "unknown-email" else user.email
    password = "wrong password!" if case == "wrong-password" else DEFAULT_PASSWORD
    response = login(client, email, password)
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert response.get_json()["type"] == "urn:skintrack:problem:invalid-credentials"
    assert response.get_json()["detail"] == "Email or password is wrong."


def test_refresh_rotates_and_old_token_stops_working(client, make_user):
    user = make_user("patient")
    first = login(client, user.email).get_json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 200
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_family(client, make_user):
    user = make_user("patient")
    first = login(client, user.email).get_json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    other_sign_in = login(client, user.email).get_json()

    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.get_json()["type"] == "urn:skintrack:problem:refresh-token-reused"
    # The whole family is dead: the newest refresh token and its access token too.
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 401
    # Another sign-in (another family) of the same user is unaffected.
    assert client.get("/api/v1/auth/me", headers=bearer(other_sign_in["access_token"])).status_code == 200


def test_unknown_refresh_token_is_401(client):
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"})
    assert response.status_code == 401
    assert response.mimetype == PROBLEM


def test_logout_ends_the_sign_in(client, make_user):
    user = make_user("clinician")
    tokens = login(client, user.email).get_json()
    assert client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_access_token_expires_by_the_clock(client, make_user, clock):
    user = make_user("clinician")
    tokens = login(client, user.email).get_json()
    clock.advance(seconds=899)
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
    clock.advance(seconds=1)
    response = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # The refresh token still works until its own expiry.
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": tokens["refresh_token"]}).status_code == 200


def test_refresh_token_expires_by_the_clock(client, make_user, clock):
    user = make_user("patient")
    tokens = login(client, user.email).get_json()
    clock.advance(seconds=86400)
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": tokens["refresh_token"]}).status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwdw=="])
def test_missing_or_malformed_token_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == PROBLEM


def test_token_signed_with_another_key_is_rejected(app, client, make_user):
    import jwt

    user = make_user("admin")
    forged = jwt.encode({"sub": str(user.id), "role": "admin", "fam": str(user.id), "jti": "x",
                         "exp": 4102444800, "typ": "access"}, "another-key" * 4, algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers=bearer(forged)).status_code == 401


def test_deactivated_user_loses_access_immediately(app, client, make_user):
    user = make_user("clinician")
    tokens = login(client, user.email).get_json()
    with app.app_context():
        db.session.get(User, user.id).is_active = False
        db.session.commit()
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401


def test_role_restricted_endpoint_answers_403_for_other_roles(client, make_user, auth_headers):
    clinician = make_user("clinician")
    response = client.get("/api/v1/admin/users", headers=auth_headers(clinician))
    assert response.status_code == 403
    assert response.mimetype == PROBLEM


def test_password_is_rehashed_when_parameters_change(app, client, make_user):
    user = make_user("clinician")
    app.config["ARGON2_TIME_COST"] = 2
    with app.app_context():
        assert needs_rehash(db.session.get(User, user.id).password_hash)
    assert login(client, user.email).status_code == 200
    with app.app_context():
        stored = db.session.get(User, user.id).password_hash
        assert "t=2" in stored and not needs_rehash(stored)
    assert login(client, user.email).status_code == 200


def test_password_hash_is_argon2id(app):
    with app.app_context():
        assert hash_password("some password").startswith("$argon2id$")


def test_change_password_keeps_this_sign_in_and_ends_others(client, make_user):
    user = make_user("clinician")
    this = login(client, user.email).get_json()
    other = login(client, user.email).get_json()
    wrong = client.post("/api/v1/auth/password", headers=bearer(this["access_token"]),
                        json={"current_password": "nope", "new_password": "a brand new secret"})
    assert wrong.status_code == 422 and "current_password" in wrong.get_json()["errors"]
    short = client.post("/api/v1/auth/password", headers=bearer(this["access_token"]),
                        json={"current_password": DEFAULT_PASSWORD, "new_password": "short"})
    assert short.status_code == 422 and "new_password" in short.get_json()["errors"]
    changed = client.post("/api/v1/auth/password", headers=bearer(this["access_token"]),
                          json={"current_password": DEFAULT_PASSWORD, "new_password": "a brand new secret"})
    assert changed.status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(this["access_token"])).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(other["access_token"])).status_code == 401
    assert login(client, user.email).status_code == 401
    assert login(client, user.email, "a brand new secret").status_code == 200


# ------------------------------------------------------------------ rate limits

def test_failed_logins_per_account_are_limited_with_retry_after(client, make_user, clock):
    user = make_user("clinician")
    for _ in range(5):
        assert login(client, user.email, "wrong password").status_code == 401
        clock.advance(seconds=10)
    blocked = login(client, user.email)  # even the right password is refused now
    assert blocked.status_code == 429
    assert blocked.mimetype == PROBLEM
    # First failure at t=0, window 900 s, now t=50 -> 850 s to wait.
    assert blocked.headers["Retry-After"] == "850"
    assert blocked.get_json()["retry_after"] == 850
    clock.advance(seconds=849)
    assert login(client, user.email).status_code == 429
    clock.advance(seconds=1)
    assert login(client, user.email).status_code == 200


def test_successful_login_resets_the_account_counter(client, make_user, clock):
    user = make_user("clinician")
    for _ in range(4):
        assert login(client, user.email, "wrong password").status_code == 401
    assert login(client, user.email).status_code == 200
    for _ in range(4):
        assert login(client, user.email, "wrong password").status_code == 401
    assert login(client, user.email).status_code == 200


def test_failed_logins_per_address_are_limited(app, client, make_user):
    user = make_user("clinician")
    for attempt in range(20):
        assert login(client, f"guess{attempt}@example.org", "pw", REMOTE_ADDR="203.0.113.7").status_code == 401
    assert login(client, user.email, REMOTE_ADDR="203.0.113.7").status_code == 429
    # Another address is not affected.
    assert login(client, user.email, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_login_attempts_never_store_the_email(app, client):
    login(client, "secret.person@example.org", "pw")
    with app.app_context():
        from backend.models.accounts import LoginAttempt

        attempt = db.session.scalars(select(LoginAttempt)).one()
        assert "secret" not in attempt.account_key
        assert db.session.scalar(select(func.count()).select_from(LoginAttempt)) == 1


# ------------------------------------------------------------------ pruning

def test_prune_command_deletes_only_dead_bookkeeping(app, client, make_user, auth_headers, clock):
    from backend.models.accounts import LoginAttempt, RefreshTokenFamily
    from backend.models.idempotency import IdempotencyRecord

    admin = make_user("admin")
    assert login(client, admin.email, "wrong password").status_code == 401
    kept = login(client, admin.email).get_json()
    logged_out = login(client, admin.email).get_json()
    client.post("/api/v1/auth/logout", headers=bearer(logged_out["access_token"]))
    created = client.post("/api/v1/admin/users", headers={**bearer(kept["access_token"]), "Idempotency-Key": "k-1"},
                          json={"email": "x@example.org", "role": "clinician", "password": "long enough pw"})
    assert created.status_code == 201

    def counts():
        with app.app_context():
            return [db.session.scalar(select(func.count()).select_from(model))
                    for model in (LoginAttempt, IdempotencyRecord, RefreshTokenFamily)]

    assert counts() == [3, 1, 2]
    runner = app.test_cli_runner()
    assert runner.invoke(args=["prune"]).exit_code == 0
    assert counts() == [3, 1, 1]  # only the logged-out sign-in is dead yet
    clock.advance(seconds=900)  # login window over
    assert runner.invoke(args=["prune"]).exit_code == 0
    assert counts() == [0, 1, 1]
    clock.advance(seconds=86400)  # idempotency TTL and the 1-day refresh TTL of this test over
    result = runner.invoke(args=["prune"])
    assert result.exit_code == 0 and "idempotency records: 1 deleted" in result.output
    assert counts() == [0, 0, 0]
