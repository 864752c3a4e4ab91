"""Every error is RFC 9457 problem+json; security headers on every response."""

from __future__ import annotations

import logging
import re

import pytest

PROBLEM = "application/problem+json"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert PROBLEM_MEMBERS <= body.keys()
    assert body["status"] == status
    assert body["instance"] == response.request.path
    return body


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/api/v1/no-such-thing"), 404)


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/api/v1/auth/login")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"POST"}


def test_body_over_max_content_length_is_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post("/api/v1/auth/login", data="{" + " " * 2000 + "}",
                           content_type="application/json")
    assert_problem(response, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_body_is_415(client, content_type):
    response = client.post("/api/v1/auth/login", data="email=a&password=b", content_type=content_type)
    body = assert_problem(response, 415)
    assert "application/json" in body["detail"]


def test_json_suffix_media_type_is_accepted(client):
    response = client.post("/api/v1/auth/login", data='{"email": "a@b.org", "password": "x"}',
                           content_type="application/merge-patch+json")
    assert response.status_code == 401


def test_malformed_json_is_400(client):
    response = client.post("/api/v1/auth/login", data='{"email": ', content_type="application/json")
    body = assert_problem(response, 400)
    assert "JSON" in body["detail"]


def test_validation_error_is_422_with_field_errors(client):
    response = client.post("/api/v1/auth/login", json={"email": 5, "unexpected": True})
    body = assert_problem(response, 422)
    assert body["errors"]["email"] == ["Not a valid string."]
    assert body["errors"]["password"] == ["Missing data for required field."]
    assert body["errors"]["unexpected"] == ["Unknown field."]


def test_query_validation_error_is_422(client, make_user, auth_headers):
    admin = make_user("admin")
    response = client.get("/api/v1/admin/users?limit=0", headers=auth_headers(admin))
    body = assert_problem(response, 422)
    assert "limit" in body["errors"]


@pytest.fixture
def bare_app(tmp_path):
    """A separate app for tests that add routes (the shared app is already serving)."""
    from backend import create_app
    from tests.environment import BASE_TEST_CONFIG

    return create_app({**BASE_TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"})


def test_unhandled_exception_is_500_without_internals(bare_app, caplog):
    secret = "patient Jane Doe, rosacea"

    @bare_app.get("/api/v1/test-crash")
    def crash():
        raise RuntimeError(secret)

    with caplog.at_level(logging.ERROR):
        response = bare_app.test_client().get("/api/v1/test-crash")
    body = assert_problem(response, 500)
    assert secret not in response.get_data(as_text=True)
    assert body["detail"] == "Internal Server Error"
    assert "RuntimeError" in caplog.text and secret not in caplog.text


def test_database_unavailable_is_503_with_retry_after_and_no_sql_in_logs(bare_app, caplog):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    secret = "SELECT * FROM patients WHERE name = 'Jane Doe'"

    @bare_app.get("/api/v1/test-database-down")
    def database_down():
        raise OperationalError(secret, {"name": "Jane Doe"}, sqlite3.OperationalError("database is locked"))

    with caplog.at_level(logging.WARNING):
        response = bare_app.test_client().get("/api/v1/test-database-down")
    body = assert_problem(response, 503)
    assert body["type"].endswith(":database-unavailable")
    assert response.headers["Retry-After"] == str(body["retry_after"]) and body["retry_after"] > 0
    assert "Jane Doe" not in response.get_data(as_text=True)
    assert "OperationalError" in caplog.text and "Jane Doe" not in caplog.text


def test_database_errors_a_retry_cannot_fix_are_500_with_their_stack_logged(bare_app, caplog):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    @bare_app.get("/api/v1/test-missing-table")
    def missing_table():
        raise OperationalError("SELECT 1 FROM nowhere", {}, sqlite3.OperationalError("no such table: nowhere"))

    with caplog.at_level(logging.ERROR):
        response = bare_app.test_client().get("/api/v1/test-missing-table")
    assert_problem(response, 500)
    assert "Retry-After" not in response.headers
    assert "unhandled OperationalError" in caplog.text and "missing_table" in caplog.text  # class and stack


def test_error_carries_request_id(client):
    response = client.get("/api/v1/nope", headers={"X-Request-ID": "client-chosen-id-1"})
    assert response.headers["X-Request-ID"] == "client-chosen-id-1"
    assert response.get_json()["request_id"] == "client-chosen-id-1"


def test_unacceptable_request_id_is_replaced(client):
    response = client.get("/api/v1/nope", headers={"X-Request-ID": "bad id with spaces"})
    assert response.headers["X-Request-ID"] != "bad id with spaces"
    assert len(response.headers["X-Request-ID"]) == 32


def test_security_headers_on_api_responses(client):
    for response in (client.get("/api/v1/openapi.json"), client.get("/api/v1/nope")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_docs_page_is_served_from_the_app_under_a_strict_csp(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "http" not in csp
    assert "<script>" not in html and "style=" not in html  # nothing inline
    for src in re.findall(r'(?:src|href)="(/api/v1/docs/assets/[^"]+)"', html):
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert asset.headers["Content-Security-Policy"] == csp
    assert client.get("/api/v1/docs/assets/index.html").status_code == 404  # only the listed files
    assert client.get("/api/v1/docs/assets/../../../config.py").status_code == 404


def test_request_rate_limit_is_429_with_retry_after(bare_app):
    from backend.extensions import limiter

    @bare_app.get("/api/v1/test-limited")
    @limiter.limit("2 per minute")
    def limited():
        return {"ok": True}

    client = bare_app.test_client()
    with bare_app.app_context():
        limiter.reset()
    assert client.get("/api/v1/test-limited").status_code == 200
    assert client.get("/api/v1/test-limited").status_code == 200
    response = client.get("/api/v1/test-limited")
    body = assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    assert body["retry_after"] == int(response.headers["Retry-After"])
