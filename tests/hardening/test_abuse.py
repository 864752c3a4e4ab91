"""Hostile clients: forged and stale tokens, refresh reuse, password guessing, id enumeration,
oversized pages, cross-site form posts, missing headers and cookie flags."""

from __future__ import annotations

import base64
import json
import uuid

import jwt
import pytest

from tests import factories
from tests.backend.clinical_helpers import assert_problem
from tests.backend.dashboard_helpers import csrf_of, sign_in

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


def _login(client, email: str, password: str = factories.DEFAULT_PASSWORD):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forgeries(token: str, secret: str) -> dict[str, str]:
    """Ways an attacker alters a valid access token."""
    header_b64, payload_b64, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    promoted = {**claims, "role": "admin"}
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(promoted)}.",
        "role changed, old signature": f"{header_b64}.{_b64(promoted)}.{signature}",
        "signed with another key": jwt.encode(promoted, "not-the-server-secret-" + "x" * 32, algorithm="HS256"),
        "HS512 with the real key": jwt.encode(promoted, secret, algorithm="HS512"),
        "signature flipped": f"{header_b64}.{payload_b64}.{signature[:10]}{'A' if signature[10] != 'A' else 'B'}{signature[11:]}",
        "truncated": token[: len(token) // 2],
        "empty": "",
        "garbage": "Bearer Bearer ..",
    }


def test_tampered_tokens_are_401(app, client, world):
    token = _login(client, world.patient_user.email).get_json()["access_token"]
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for name, forged in _forgeries(token, app.config["SECRET_KEY"]).items():
        response = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, name
        assert response.mimetype == "application/problem+json", name
        assert "WWW-Authenticate" in response.headers, name


def test_expired_access_token_is_401_refresh_still_works(app, client, world, clock):
    tokens = _login(client, world.patient_user.email).get_json()
    clock.advance(seconds=int(app.config["ACCESS_TOKEN_TTL"]) + 1)
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert_problem(response, 401)
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200


def test_refresh_reuse_revokes_the_whole_family(client, world):
    first = _login(client, world.patient_user.email).get_json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    # A thief replays the rotated token: refused, and the legitimate holder's newer token dies too.
    assert_problem(client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}), 401)
    assert_problem(client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}), 401)


def test_password_guessing_is_rate_limited_even_for_the_right_password(app, client, world):
    limit = int(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"])
    for attempt in range(limit):
        assert _login(client, world.clinician_a.email, f"guess {attempt}").status_code == 401
    blocked = _login(client, world.clinician_a.email)
    problem = assert_problem(blocked, 429)
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Retry-After" not in problem["detail"] and "retry" in problem["detail"].lower()
    # Other accounts are not locked by guesses against this one (unless from one address).
    assert _login(client, world.clinician_b.email).status_code == 200


def test_unknown_and_foreign_ids_answer_the_same_404(client, world, headers_of):
    headers = headers_of("clinician_a")
    paths = ["/api/v1/patients/{}", "/api/v1/patients/{}/courses", "/api/v1/patients/{}/photos",
             "/api/v1/photos/{}", "/api/v1/courses/{}"]
    for template in paths:
        foreign = client.get(template.format(world.patient_b.id), headers=headers)
        unknown = client.get(template.format(uuid.uuid4()), headers=headers)
        assert (foreign.status_code, unknown.status_code) == (404, 404), template
        strip = lambda body: {k: v for k, v in body.items() if k not in ("instance", "request_id")}  # noqa: E731
        assert strip(foreign.get_json()) == strip(unknown.get_json()), template
    # A patient probing the other patient of the same clinic sees the same.
    other = client.get(f"/api/v1/patients/{world.other_patient.id}", headers=headers_of("patient_user"))
    assert_problem(other, 404)


@pytest.mark.parametrize("limit", ["101", "100000", "0", "-1", "ten"])
def test_oversized_or_bogus_page_sizes_are_422(client, world, headers_of, limit):
    for path in ("/api/v1/patients", f"/api/v1/patients/{world.patient.id}/photos", "/api/v1/audit"):
        user = "admin_a" if path == "/api/v1/audit" else "clinician_a"
        response = client.get(path, query_string={"limit": limit}, headers=headers_of(user))
        assert_problem(response, 422)


def test_forged_cursor_is_a_client_error(client, world, headers_of):
    for cursor in ("not-base64!!", _b64({"created_at": "'; DROP TABLE patients; --", "id": "x"}), "A" * 5000):
        response = client.get("/api/v1/patients", query_string={"cursor": cursor}, headers=headers_of("clinician_a"))
        assert 400 <= response.status_code < 500, cursor
        assert response.mimetype == "application/problem+json"


def test_dashboard_forms_refuse_cross_site_posts(app, world):
    victim, attacker = app.test_client(), app.test_client()
    assert sign_in(victim, world.clinician_a.email).status_code == 302
    attackers_token = csrf_of(attacker.get("/dashboard/login").get_data(as_text=True))
    # The attacker's own (valid for the attacker) token does not work in the victim's session.
    assert_problem(victim.post("/dashboard/logout", data={"csrf_token": attackers_token}), 400, type_="csrf-failed")
    assert_problem(victim.post("/dashboard/logout", data={}), 400, type_="csrf-failed")
    # A login CSRF (signing the victim into the attacker's account) fails the same way.
    response = victim.post("/dashboard/login", data={"csrf_token": attackers_token, "email": world.clinician_b.email,
                                                     "password": factories.DEFAULT_PASSWORD})
    assert_problem(response, 400, type_="csrf-failed")
    assert victim.get("/dashboard/").status_code == 200  # still the victim's own session


def test_security_headers_and_cookie_flags(app, client, world, headers_of):
    api = client.get("/api/v1/auth/me", headers=headers_of("clinician_a"))
    for response in (api, client.get("/api/v1/openapi.json"), client.get("/api/v1/nothing-here")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
    dashboard = app.test_client()
    signed_in = sign_in(dashboard, world.clinician_a.email)
    cookie = signed_in.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Strict"):
        assert flag in cookie
    page = dashboard.get("/dashboard/")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    assert "no-store" in page.headers.get("Cache-Control", "")
