"""Audit log: hash chain, append-only at the database, admin endpoints, concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from backend import audit
from backend.extensions import db
from backend.models.audit import AuditEvent
from tests.backend.audit_helpers import restore_append_only_guard, without_append_only_guard
from tests.factories import DEFAULT_PASSWORD


def record_events(app, count: int, **details) -> None:
    with app.app_context():
        for number in range(count):
            audit.record("test.event", "thing", f"thing-{number}", actor=None, **details)
        db.session.commit()


def verify(app) -> audit.ChainVerification:
    with app.app_context():
        return audit.verify_chain()


def test_events_form_a_chain(app):
    record_events(app, 3)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert verify(app) == audit.ChainVerification(True, 3, None, None)


def test_empty_chain_verifies(app):
    assert verify(app).ok


def test_hash_covers_every_field(app):
    record_events(app, 1)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent)).one()
        fields = dict(seq=event.seq, at=event.at, actor_user_id=event.actor_user_id,
                      actor_role=event.actor_role, clinic_id=event.clinic_id, action=event.action,
                      object_type=event.object_type, object_id=event.object_id,
                      client_address=event.client_address, request_id=event.request_id,
                      details=event.details, prev_hash=event.prev_hash)
    assert audit.event_hash(**fields) == event.hash
    for name, other in [("action", "test.other"), ("object_id", "thing-x"), ("details", '{"a":1}'),
                        ("prev_hash", "f" * 64), ("seq", 2), ("client_address", "10.0.0.1")]:
        assert audit.event_hash(**{**fields, name: other}) != event.hash, name


@pytest.mark.parametrize("tampering, broken_seq, reason", [
    ("UPDATE audit_events SET object_id = 'other' WHERE seq = 3", 3, "hash-mismatch"),
    ("DELETE FROM audit_events WHERE seq = 2", 2, "gap"),
    ("UPDATE audit_events SET prev_hash = hash WHERE seq = 4", 4, "prev-hash-mismatch"),
])
def test_verify_reports_first_broken_row(app, database_backend, tampering, broken_seq, reason):
    record_events(app, 5)
    with app.app_context():
        with db.engine.begin() as conn:
            without_append_only_guard(conn, database_backend)
            conn.execute(text(tampering))
            restore_append_only_guard(conn, database_backend)
    result = verify(app)
    assert not result.ok
    assert (result.first_broken_seq, result.reason) == (broken_seq, reason)


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"])
def test_database_refuses_update_and_delete(app, statement):
    record_events(app, 1)
    with app.app_context():
        with pytest.raises(DatabaseError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text(statement))
    assert verify(app).ok


def test_concurrent_appends_keep_one_gapless_chain(app):
    threads_count, per_thread = 4, 5
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def append() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                with app.app_context():
                    audit.record("test.concurrent", actor=None)
                    db.session.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=append) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert verify(app) == audit.ChainVerification(True, threads_count * per_thread, None, None)


def test_logins_are_audited_without_secrets(app, client, make_user):
    user = make_user("clinician")
    client.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong password"})
    client.post("/api/v1/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD})
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [(e.action, e.object_id, e.clinic_id) for e in events] == [
        ("auth.login_failed", str(user.id), user.clinic_id),
        ("auth.login", str(user.id), user.clinic_id),
    ]
    assert events[0].actor_user_id is None and events[1].actor_user_id == user.id
    assert all(e.client_address == "127.0.0.1" and e.request_id for e in events)
    for event in events:
        assert DEFAULT_PASSWORD not in event.details and user.email not in event.details


def test_admin_reads_only_own_clinic_events(client, make_clinic, make_user, auth_headers):
    clinic = make_clinic()
    admin = make_user("admin", clinic)
    colleague = make_user("clinician", clinic)
    outsider = make_user("clinician")
    for user in (colleague, outsider):
        client.post("/api/v1/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD})
    response = client.get("/api/v1/audit", headers=auth_headers(admin))
    assert response.status_code == 200
    object_ids = [item["object_id"] for item in response.get_json()["items"]]
    assert object_ids == [str(colleague.id)]
    # Newest first across pages.
    client.post("/api/v1/auth/login", json={"email": colleague.email, "password": "bad password"})
    first = client.get("/api/v1/audit?limit=1", headers=auth_headers(admin)).get_json()
    assert first["items"][0]["action"] == "auth.login_failed" and first["next_cursor"]
    filtered = client.get("/api/v1/audit?action=auth.login", headers=auth_headers(admin)).get_json()
    assert [item["action"] for item in filtered["items"]] == ["auth.login"]


def test_verify_endpoint(client, app, make_user, auth_headers, database_backend):
    admin = make_user("admin")
    record_events(app, 2)
    ok = client.get("/api/v1/audit/verify", headers=auth_headers(admin)).get_json()
    assert ok == {"ok": True, "checked": 2, "first_broken_seq": None, "reason": None}
    with app.app_context():
        with db.engine.begin() as conn:
            without_append_only_guard(conn, database_backend)
            conn.execute(text("UPDATE audit_events SET details = :details WHERE seq = 1"), {"details": '{"x": 1}'})
            restore_append_only_guard(conn, database_backend)
    broken = client.get("/api/v1/audit/verify", headers=auth_headers(admin)).get_json()
    assert broken["ok"] is False and broken["first_broken_seq"] == 1 and broken["reason"] == "hash-mismatch"


@pytest.mark.parametrize("role", ["patient", "clinician", "researcher"])
@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/audit/verify"])
def test_audit_endpoints_are_admin_only(client, make_user, auth_headers, role, path):
    assert client.get(path, headers=auth_headers(make_user(role))).status_code == 403
