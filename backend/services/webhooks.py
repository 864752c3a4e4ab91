"""Signed webhooks (Standard Webhooks): endpoints, events, deliveries through the job system.

An admin registers an endpoint (HTTPS URL, event types) for their clinic and gets its secret
(``whsec_`` + base64 of 24 random bytes) once; rotating it returns a new one and keeps signing
with the old one for :data:`PREVIOUS_SECRET_OVERLAP` so receivers can switch over.

:func:`emit` adds one :class:`WebhookDelivery` per subscribed active endpoint of the clinic, in
the caller's transaction, and enqueues its ``deliver_webhook`` job. The job POSTs the payload
``{"type", "timestamp", "data"}`` - ids and the event type only, never health data (the receiver
fetches details with its own token) - with the headers ``webhook-id`` (the delivery id, the same
on every retry), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per valid secret). A 2xx answer
delivers; anything else is retried with the job system's exponential backoff up to
``WEBHOOK_MAX_ATTEMPTS``; every attempt is recorded. After
``WEBHOOK_DISABLE_AFTER_FAILURES`` consecutive failed attempts the endpoint is disabled and an
audit entry tells the clinic's admins.

Targets are checked at registration and before every attempt (DNS may change): the scheme must
be https and every address the host resolves to must be public, unless
``WEBHOOK_ALLOW_PRIVATE_TARGETS`` allows http and private/loopback addresses (development).
The delivery connects to the checked address (DNS rebinding cannot redirect it; TLS verifies
the host name); redirects are not followed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from backend import audit
from backend.errors import NotFound, ValidationFailed
from backend.extensions import db, now
from backend.jobs import JobContext, JobError, PermanentJobError, enqueue, job_handler
from backend.models.accounts import User
from backend.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from schemas.webhooks import WEBHOOK_EVENT_TYPES

EVENT_TYPES = WEBHOOK_EVENT_TYPES
DELIVERY_JOB = "deliver_webhook"
SECRET_PREFIX = "whsec_"
PREVIOUS_SECRET_OVERLAP = dt.timedelta(hours=24)
USER_AGENT = "skintrack-webhooks/1"


class TargetRefused(ValueError):
    """The URL's scheme or one of its host's addresses is not allowed."""


# ------------------------------------------------------------------ signing

def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64 signature>`` of the Standard Webhooks scheme."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def signing_secrets(endpoint: WebhookEndpoint, at: dt.datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    valid = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and at < endpoint.previous_secret_expires_at:
        valid.append(endpoint.previous_secret)
    return valid


# ------------------------------------------------------------------ targets

def check_target(url: str) -> list[str]:
    """Refuse a URL that is not https or whose host resolves to a non-public address.

    Returns
    -------
    list of str
        The host's checked addresses: the delivery connects to these (not to a fresh lookup,
        which a rebinding DNS server could point elsewhere).

    Raises
    ------
    TargetRefused
        Unless ``WEBHOOK_ALLOW_PRIVATE_TARGETS`` allows http and private addresses.
    """
    allow_private = bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS"))
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise TargetRefused("the URL must use https")
    if not parts.hostname or parts.username or parts.password:
        raise TargetRefused("the URL needs a host and no credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError):
        raise TargetRefused("the host does not resolve") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise TargetRefused("the host does not resolve")
    if not allow_private and not all(address.is_global for address in addresses):
        raise TargetRefused("the host resolves to a private, loopback or reserved address")
    return list(dict.fromkeys(str(address) for address in addresses))


def _validated_url(url: str) -> str:
    try:
        check_target(url)
    except TargetRefused as refusal:
        raise ValidationFailed(errors={"url": [str(refusal)]}, slug="webhook-target-refused") from None
    return url


# ------------------------------------------------------------------ endpoints

def create_endpoint(admin: User, url: str, events: list[str]) -> WebhookEndpoint:
    """Register an endpoint of the admin's clinic (its secret is shown once, by the caller)."""
    endpoint = WebhookEndpoint(id=uuid.uuid4(), clinic_id=admin.clinic_id, url=_validated_url(url),
                               events=sorted(set(events)), secret=new_secret(), created_by_user_id=admin.id,
                               status="active", consecutive_failures=0)
    db.session.add(endpoint)
    db.session.flush()
    return endpoint


def endpoint_of_clinic_or_404(admin: User, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.clinic_id != admin.clinic_id:
        raise NotFound("webhook endpoint")
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing for :data:`PREVIOUS_SECRET_OVERLAP`."""
    endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, now() + PREVIOUS_SECRET_OVERLAP
    endpoint.secret = new_secret()
    return endpoint.secret


def enable_endpoint(endpoint: WebhookEndpoint) -> None:
    """Re-enable a disabled endpoint (its target is checked again)."""
    _validated_url(endpoint.url)
    endpoint.status, endpoint.consecutive_failures, endpoint.disabled_at = "active", 0, None


# ------------------------------------------------------------------ events

def emit(event_type: str, clinic_id: uuid.UUID, data: Mapping[str, Any]) -> list[WebhookDelivery]:
    """Queue the event for every active endpoint of the clinic subscribed to it (caller's transaction).

    ``data`` holds ids only (``<object>_id`` -> UUID or str). An event already queued for an
    endpoint (same type and ids) is not queued again.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    ids = {name: str(value) for name, value in sorted(data.items())}
    if not all(name.endswith("_id") for name in ids):
        raise ValueError("webhook data carries ids only")
    event_key = event_type + ":" + ",".join(f"{k}={v}" for k, v in ids.items())
    endpoints = db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.clinic_id == clinic_id, WebhookEndpoint.status == "active"))
    deliveries = []
    for endpoint in endpoints:
        if event_type not in endpoint.events:
            continue
        exists = db.session.scalar(select(WebhookDelivery.id).where(
            WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_key == event_key))
        if exists is not None:
            continue
        delivery = WebhookDelivery(id=uuid.uuid4(), endpoint_id=endpoint.id, event_type=event_type,
                                   event_key=event_key, status="pending", created_at=now(),
                                   payload={"type": event_type, "timestamp": now().isoformat(), "data": ids})
        db.session.add(delivery)
        db.session.flush()
        job = enqueue(DELIVERY_JOB, {"delivery_id": str(delivery.id)}, dedupe_key=str(delivery.id),
                      max_attempts=int(current_app.config["WEBHOOK_MAX_ATTEMPTS"]))
        delivery.job_id = job.id
        deliveries.append(delivery)
    return deliveries


def emit_milestone_events(today: dt.date) -> int:
    """Queue ``milestone.due`` / ``milestone.overdue`` for the active courses of clinics with such
    endpoints (each milestone and status once per endpoint); returns how many were queued.

    Run daily (``flask webhook-milestones``, e.g. from cron).
    """
    from backend.models.clinical import Patient, TreatmentCourse
    from backend.services.milestones import milestone_status

    clinics = {e.clinic_id for e in db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.status == "active"))
               if {"milestone.due", "milestone.overdue"} & set(e.events)}
    queued = 0
    for clinic_id in sorted(clinics, key=str):
        courses = db.session.scalars(select(TreatmentCourse).join(Patient).where(
            Patient.clinic_id == clinic_id, TreatmentCourse.status == "active"))
        for course in courses:
            for milestone in course.milestones:
                status = milestone_status(milestone.window, milestone.completed_at is not None, today)
                if status in ("due", "overdue"):
                    queued += len(emit(f"milestone.{status}", clinic_id, {
                        "milestone_id": milestone.id, "course_id": course.id, "patient_id": course.patient_id}))
    return queued


def message_id(delivery: WebhookDelivery) -> str:
    """The ``webhook-id`` of a delivery (stable across retries)."""
    return f"msg_{delivery.id.hex}"


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery, addresses: list[str]) -> tuple[int | None, str | None]:
    """One POST; (status code, None) when answered, (None, error class) when not.

    The connection goes to the first of the checked ``addresses`` that accepts it; TLS still verifies the URL's
    host name. Redirects are not followed (a redirect could point at a private address).
    """
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    timestamp = int(time.time())  # wall time: the receiver checks it against its own clock
    msg_id = message_id(delivery)
    signatures = " ".join(sign(s, msg_id, timestamp, body) for s in signing_secrets(endpoint, now()))
    headers = {"content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": msg_id,
               "webhook-timestamp": str(timestamp), "webhook-signature": signatures}
    parts = urlsplit(endpoint.url)
    timeout = float(current_app.config["WEBHOOK_TIMEOUT_S"])
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def pinned(target: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        for address in addresses[:-1]:
            try:
                return socket.create_connection((address, target[1]), *args, **kwargs)
            except OSError:
                continue
        return socket.create_connection((addresses[-1], target[1]), *args, **kwargs)

    connection._create_connection = pinned  # type: ignore[attr-defined]  # http.client's own hook
    try:
        connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
        return connection.getresponse().status, None
    except (OSError, http.client.HTTPException) as exc:
        return None, type(exc).__name__
    finally:
        connection.close()


@job_handler(DELIVERY_JOB)
def deliver_webhook(ctx: JobContext) -> str | None:
    """Job: one delivery attempt; raises to retry (backoff) until the last attempt.

    The attempt row and the endpoint's failure count are committed before a retry is asked
    for, since the job runner rolls back a failing handler's writes.
    """
    delivery = db.session.get(WebhookDelivery, uuid.UUID(str(ctx.payload["delivery_id"])))
    if delivery is None or delivery.status != "pending":
        return None
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
    last_attempt = ctx.attempt >= int(current_app.config["WEBHOOK_MAX_ATTEMPTS"])
    if endpoint.status != "active":
        delivery.status = "failed"
        db.session.commit()
        raise PermanentJobError("endpoint disabled")
    started, clock = now(), time.monotonic()
    try:
        status_code, error = _post(endpoint, delivery, check_target(endpoint.url))
    except TargetRefused:
        status_code, error = None, "TargetRefused"
    attempt = WebhookAttempt(delivery_id=delivery.id, number=len(delivery.attempts) + 1, started_at=started,
                             status_code=status_code, error=error,
                             duration_ms=int((time.monotonic() - clock) * 1000))
    delivery.attempts.append(attempt)
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at = "delivered", now()
        endpoint.consecutive_failures = 0
        return str(delivery.id)
    endpoint.consecutive_failures += 1
    if endpoint.consecutive_failures >= int(current_app.config["WEBHOOK_DISABLE_AFTER_FAILURES"]):
        endpoint.status, endpoint.disabled_at = "disabled", now()
        audit.record("webhook_endpoint.disabled", "webhook_endpoint", endpoint.id, actor=None,
                     clinic_id=endpoint.clinic_id, consecutive_failures=endpoint.consecutive_failures)
    if last_attempt or endpoint.status != "active":
        delivery.status = "failed"
    db.session.commit()
    reason = f"HTTP {status_code}" if status_code is not None else str(error)
    if delivery.status == "failed":
        raise PermanentJobError(f"webhook delivery failed: {reason}")
    raise JobError(f"webhook attempt failed: {reason}")
