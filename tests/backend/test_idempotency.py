"""Idempotency-Key: replay, reuse with another body, concurrency, atomicity."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.http.idempotency import request_fingerprint
from backend.models.accounts import User
from backend.models.idempotency import IdempotencyRecord

NEW_USER = {"email": "new.clinician@example.org", "role": "clinician", "password": "long enough pw"}


@pytest.fixture
def admin_headers(make_user, auth_headers):
    return auth_headers(make_user("admin"))


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def post_user(client, headers, body=NEW_USER, key="key-0001"):
    return client.post("/api/v1/admin/users", json=body,
                       headers={**headers, **({"Idempotency-Key": key} if key else {})})


def test_retry_with_same_key_and_body_replays_first_response(app, client, admin_headers):
    first = post_user(client, admin_headers)
    assert first.status_code == 201
    retry = post_user(client, admin_headers)
    assert retry.status_code == 201
    assert retry.get_json() == first.get_json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(app, User) == 2  # the admin and one new user


def test_replay_ignores_json_formatting(client, admin_headers):
    assert post_user(client, admin_headers).status_code == 201
    reformatted = client.post(
        "/api/v1/admin/users",
        data='{ "role": "clinician",\n "password": "long enough pw", "email": "new.clinician@example.org" }',
        content_type="application/json", headers={**admin_headers, "Idempotency-Key": "key-0001"})
    assert reformatted.status_code == 201
    assert reformatted.headers["Idempotent-Replayed"] == "true"


def test_same_key_with_different_body_is_422(app, client, admin_headers):
    assert post_user(client, admin_headers).status_code == 201
    other = post_user(client, admin_headers, {**NEW_USER, "email": "someone.else@example.org"})
    assert other.status_code == 422
    assert other.mimetype == "application/problem+json"
    assert other.get_json()["type"] == "urn:skintrack:problem:idempotency-key-reused"
    assert count(app, User) == 2


def test_keys_are_per_user(app, client, make_user, auth_headers):
    clinic_admin_a = auth_headers(make_user("admin"))
    clinic_admin_b = auth_headers(make_user("admin"))
    assert post_user(client, clinic_admin_a).status_code == 201
    second = post_user(client, clinic_admin_b, {**NEW_USER, "email": "b@example.org"})
    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers
    assert count(app, User) == 4


def test_without_key_each_post_creates(app, client, admin_headers):
    assert post_user(client, admin_headers, key=None).status_code == 201
    assert post_user(client, admin_headers, {**NEW_USER, "email": "x@example.org"}, key=None).status_code == 201
    assert count(app, IdempotencyRecord) == 0
    assert count(app, User) == 3


def test_failed_request_is_not_stored_and_can_be_retried(app, client, admin_headers):
    invalid = post_user(client, admin_headers, {**NEW_USER, "role": "superuser"})
    assert invalid.status_code == 422
    assert count(app, IdempotencyRecord) == 0
    assert post_user(client, admin_headers).status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "é"])
def test_malformed_key_is_400(client, admin_headers, key):
    response = client.post("/api/v1/admin/users", json=NEW_USER,
                           headers={**admin_headers, "Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert response.status_code == 400
    assert response.get_json()["type"] == "urn:skintrack:problem:invalid-idempotency-key"


def test_key_row_is_written_with_the_created_row(app, client, admin_headers):
    response = post_user(client, admin_headers)
    with app.app_context():
        record = db.session.scalars(select(IdempotencyRecord)).one()
        assert record.response_status == 201
        assert record.response_location == response.headers["Location"]


def test_concurrent_requests_with_one_key_create_once(app, admin_headers):
    barrier = threading.Barrier(2)
    responses = [None, None]

    def send(slot: int) -> None:
        client = app.test_client()
        barrier.wait()
        responses[slot] = post_user(client, admin_headers, key="concurrent-key")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].get_json() == responses[1].get_json()
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 1
    assert count(app, User) == 2
    assert count(app, IdempotencyRecord) == 1


def test_fingerprint_depends_on_method_path_and_body():
    base = request_fingerprint("POST", "/a", b'{"x": 1, "y": 2}')
    assert base == request_fingerprint("POST", "/a", b'{"y":2,"x":1}')
    assert base != request_fingerprint("POST", "/b", b'{"x": 1, "y": 2}')
    assert base != request_fingerprint("PUT", "/a", b'{"x": 1, "y": 2}')
    assert base != request_fingerprint("POST", "/a", b'{"x": 1, "y": 3}')
