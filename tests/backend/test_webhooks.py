"""Signed webhooks: a real loopback HTTP receiver checks every delivery with the reference
implementation of Standard Webhooks (``standardwebhooks``), sees retries after failures, one
webhook-id per event, and ids only in every payload."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from backend.extensions import db
from backend.jobs.runner import runner_for_app
from backend.models.audit import AuditEvent
from backend.models.webhooks import WebhookDelivery
from backend.services import webhooks as webhook_service
from tests.backend.clinical_helpers import assert_problem

RETRY_BASE_S = 10


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "WEBHOOK_ALLOW_PRIVATE_TARGETS": True, "WEBHOOK_MAX_ATTEMPTS": 4,
            "WEBHOOK_DISABLE_AFTER_FAILURES": 6, "JOB_RETRY_BASE_S": RETRY_BASE_S, "WEBHOOK_TIMEOUT_S": 5}


@dataclass
class Receiver:
    """A loopback HTTP server answering each POST with the next planned status (then 204)."""

    url: str
    planned: queue.Queue = field(default_factory=queue.Queue)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["content-length"]))
            state["r"].received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            try:
                status = state["r"].planned.get_nowait()
            except queue.Empty:
                status = 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def register(client: FlaskClient, headers: dict[str, str], url: str, events: list[str]) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks/endpoints", headers=headers, json={"url": url, "events": events})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["secret"].startswith("whsec_")
    return body


def report_event(client: FlaskClient, world: Any, headers: dict[str, str]) -> str:
    response = client.post(f"/api/v1/courses/{world.course.id}/adverse-events", headers=headers, json={
        "event_type": "hyperpigmentation", "severity": "moderate", "onset_date": "2026-02-27",
        "notes": "Dark patch left cheek"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def run_due_jobs(app: Flask) -> None:
    """Run every job due now on the test clock (the inline backend leaves retries queued)."""
    runner = runner_for_app(app, "webhook-test")
    with app.app_context():
        while runner.run_one() is not None:
            pass


def test_signed_deliveries_retry_with_backoff_and_carry_ids_only(
        app: Flask, client: FlaskClient, world: Any, headers_of: Any, clock: Any, receiver: Receiver) -> None:
    endpoint = register(client, headers_of("admin_a"), receiver.url, ["adverse_event.reported"])
    receiver.planned.put(500)
    receiver.planned.put(503)
    event_id = report_event(client, world, headers_of("patient_user"))
    assert len(receiver.received) == 1  # the first attempt ran after the commit
    run_due_jobs(app)
    assert len(receiver.received) == 1  # the retry waits for its backoff
    clock.advance(seconds=RETRY_BASE_S)
    run_due_jobs(app)
    assert len(receiver.received) == 2
    clock.advance(seconds=2 * RETRY_BASE_S)  # doubled
    run_due_jobs(app)
    assert len(receiver.received) == 3

    verifier = Webhook(endpoint["secret"])
    ids = set()
    for headers, body in receiver.received:
        payload = verifier.verify(body, headers)  # the reference implementation accepts the signature
        ids.add(headers["webhook-id"])
        assert payload["type"] == "adverse_event.reported"
        assert payload["data"] == {"adverse_event_id": event_id, "course_id": str(world.course.id),
                                   "patient_id": str(world.patient.id)}
        text = body.decode()
        for health_data in ("hyperpigmentation", "moderate", "Dark patch", world.patient.full_name, "2026-02-27"):
            assert health_data not in text
    assert len(ids) == 1  # the same message id on every retry
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(receiver.received[0][1], receiver.received[0][0])

    deliveries = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/deliveries",
                            headers=headers_of("admin_a")).get_json()
    assert len(deliveries) == 1 and deliveries[0]["status"] == "delivered"
    assert deliveries[0]["message_id"] == ids.pop()
    assert [a["status_code"] for a in deliveries[0]["attempts"]] == [500, 503, 204]

    # The same event again is not delivered again; a new event gets a new id.
    with app.app_context():
        assert webhook_service.emit("adverse_event.reported", world.clinic_a.id, {
            "adverse_event_id": event_id, "course_id": world.course.id, "patient_id": world.patient.id}) == []
    report_event(client, world, headers_of("patient_user"))
    assert len({h["webhook-id"] for h, _ in receiver.received}) == 2

    # Rotation: both secrets verify during the overlap; the old one alone after it.
    rotated = client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret", headers=headers_of("admin_a"))
    new_secret = rotated.get_json()["secret"]
    assert new_secret != endpoint["secret"]
    report_event(client, world, headers_of("patient_user"))
    headers, body = receiver.received[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(body, headers)
    Webhook(endpoint["secret"]).verify(body, headers)


def test_failing_endpoint_is_disabled_and_the_admin_told(
        app: Flask, client: FlaskClient, world: Any, headers_of: Any, clock: Any, receiver: Receiver) -> None:
    app.config["WEBHOOK_DISABLE_AFTER_FAILURES"] = 3
    endpoint = register(client, headers_of("admin_a"), receiver.url, ["adverse_event.reported"])
    for _ in range(10):
        receiver.planned.put(500)
    report_event(client, world, headers_of("patient_user"))
    for seconds in (RETRY_BASE_S, 2 * RETRY_BASE_S, 4 * RETRY_BASE_S):
        clock.advance(seconds=seconds)
        run_due_jobs(app)
    assert len(receiver.received) == 3  # disabled after the third failure: no fourth attempt
    listed = client.get("/api/v1/webhooks/endpoints", headers=headers_of("admin_a")).get_json()["items"]
    assert listed[0]["status"] == "disabled" and listed[0]["consecutive_failures"] == 3
    with app.app_context():
        audit_rows = db.session.execute(select(AuditEvent.action, AuditEvent.clinic_id)).all()
        assert ("webhook_endpoint.disabled", world.clinic_a.id) in audit_rows
        assert db.session.scalars(select(WebhookDelivery.status)).all() == ["failed"]
    report_event(client, world, headers_of("patient_user"))
    assert len(receiver.received) == 3  # nothing is queued for a disabled endpoint
    enabled = client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/enable", headers=headers_of("admin_a"))
    assert enabled.status_code == 200 and enabled.get_json()["status"] == "active"
    # Another clinic's admin cannot see or touch it.
    assert_problem(client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/enable",
                               headers=headers_of("admin_b")), 404)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hooks", "https://127.0.0.1/hooks", "https://localhost/hooks",
                                 "https://10.1.2.3/hooks", "https://[::1]/hooks", "https://169.254.169.254/latest",
                                 "https://user:pw@192.168.1.1/x", "ftp://198.51.100.1/x"])
def test_private_and_loopback_targets_are_refused(app: Flask, client: FlaskClient, world: Any, headers_of: Any,
                                                  url: str) -> None:
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False
    response = client.post("/api/v1/webhooks/endpoints", headers=headers_of("admin_a"),
                           json={"url": url, "events": ["photo.analysed"]})
    body = assert_problem(response, 422, type_="webhook-target-refused", fields=("url",))
    assert "secret" not in json.dumps(body)


def test_unknown_events_and_other_roles_are_refused(client: FlaskClient, world: Any, headers_of: Any) -> None:
    assert_problem(client.post("/api/v1/webhooks/endpoints", headers=headers_of("admin_a"),
                               json={"url": "https://example.org/x", "events": ["patient.read"]}), 422)
    for role in ("clinician_a", "patient_user", "researcher"):
        assert_problem(client.get("/api/v1/webhooks/endpoints", headers=headers_of(role)), 403)
    assert_problem(client.get(f"/api/v1/webhooks/endpoints/{uuid.uuid4()}/deliveries",
                              headers=headers_of("admin_a")), 404)


def _faceless_jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (90, 120), (150, 110, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_refused_photo_and_milestone_events(app: Flask, client: FlaskClient, world: Any, headers_of: Any,
                                            clock: Any, receiver: Receiver) -> None:
    """A photo failing the quality gate sends photo.refused; the daily scan sends each due milestone once."""
    from tests.backend.photo_helpers import grant_photo_consent

    endpoint = register(client, headers_of("admin_a"), receiver.url, ["photo.refused", "milestone.due"])
    grant_photo_consent(app, world.patient, world.clinician_a)
    uploaded = client.post(f"/api/v1/patients/{world.patient.id}/photos?course_id={world.course.id}",
                           data=_faceless_jpeg(), content_type="image/jpeg", headers=headers_of("clinician_a"))
    assert uploaded.status_code == 201, uploaded.get_json()
    refused = [json.loads(body) for _, body in receiver.received if json.loads(body)["type"] == "photo.refused"]
    assert [r["data"]["photo_id"] for r in refused] == [uploaded.get_json()["id"]]
    assert set(refused[0]["data"]) == {"photo_id", "patient_id", "course_id"}

    runner = app.test_cli_runner()
    first = runner.invoke(args=["webhook-milestones"])
    assert first.exit_code == 0, first.output
    due = [json.loads(body)["data"]["milestone_id"] for _, body in receiver.received
           if json.loads(body)["type"] == "milestone.due"]
    assert due and len(due) == len(set(due))
    assert runner.invoke(args=["webhook-milestones"]).output.startswith("0 ")  # each milestone once
    verifier = Webhook(endpoint["secret"])
    for headers, body in receiver.received:
        verifier.verify(body, headers)


def test_export_ready_goes_to_the_studys_clinic(app: Flask, client: FlaskClient, world: Any, headers_of: Any,
                                                receiver: Receiver) -> None:
    register(client, headers_of("admin_a"), receiver.url, ["export.ready"])
    study = client.post("/api/v1/studies", headers=headers_of("admin_a"), json={"title": "Webhook study"}).get_json()
    granted = client.post(f"/api/v1/studies/{study['id']}/grants", headers=headers_of("admin_a"),
                          json={"researcher_id": str(world.researcher.id)})
    assert granted.status_code == 201
    export = client.post(f"/api/v1/studies/{study['id']}/exports", headers=headers_of("researcher"), json={})
    assert export.status_code == 202, export.get_json()
    payloads = [json.loads(body) for _, body in receiver.received]
    assert payloads == [{"type": "export.ready", "timestamp": payloads[0]["timestamp"],
                         "data": {"export_id": export.get_json()["id"], "study_id": study["id"]}}]


def test_each_attempt_rechecks_the_target(app: Flask, client: FlaskClient, world: Any, headers_of: Any,
                                          receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that resolved to a public address at registration and to loopback later is not called."""
    import socket

    real_getaddrinfo = socket.getaddrinfo
    port = int(receiver.url.split(":")[2].split("/")[0])
    answers = {"rebind.example": "93.184.216.34"}

    def fake_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False
    endpoint = register(client, headers_of("admin_a"), f"https://rebind.example:{port}/hooks",
                        ["adverse_event.reported"])
    answers["rebind.example"] = "127.0.0.1"  # the DNS answer changes after registration
    report_event(client, world, headers_of("patient_user"))
    assert receiver.received == []
    deliveries = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/deliveries",
                            headers=headers_of("admin_a")).get_json()
    assert [a["error"] for a in deliveries[0]["attempts"]] == ["TargetRefused"]


def test_a_host_name_is_delivered_to_one_of_its_checked_addresses(
        client: FlaskClient, world: Any, headers_of: Any, receiver: Receiver) -> None:
    endpoint = register(client, headers_of("admin_a"), receiver.url.replace("127.0.0.1", "localhost"),
                        ["adverse_event.reported"])
    report_event(client, world, headers_of("patient_user"))
    assert len(receiver.received) == 1
    Webhook(endpoint["secret"]).verify(receiver.received[0][1], receiver.received[0][0])


def test_analysed_photo_is_announced_once_analysed(app: Flask, client: FlaskClient, world: Any, headers_of: Any,
                                                   receiver: Receiver, database_backend: str) -> None:
    from tests.backend.photo_helpers import grant_photo_consent, phone_png, upload

    if database_backend != "sqlite":
        pytest.skip("a real analysis takes seconds; the event does not depend on the database")

    register(client, headers_of("admin_a"), receiver.url, ["photo.analysed"])
    grant_photo_consent(app, world.patient, world.clinician_a)
    photo = upload(client, headers_of("patient_user"), world.patient.id, phone_png(), content_type="image/png",
                   course_id=world.course.id)
    assert photo.status_code == 201, photo.get_json()
    payloads = [json.loads(body) for _, body in receiver.received]
    assert [p["type"] for p in payloads] == ["photo.analysed"]
    assert payloads[0]["data"] == {"photo_id": photo.get_json()["id"], "patient_id": str(world.patient.id),
                                   "course_id": str(world.course.id)}
