"""Append-only, hash-chained audit log.

Each row's ``hash`` is SHA-256 over the canonical JSON of its fields and the
previous row's hash, so a changed, inserted or deleted row breaks every later
link. Appends are serialised: on PostgreSQL by a transaction-scoped advisory
lock, on SQLite by the write lock every transaction takes at BEGIN IMMEDIATE
(see ``backend.extensions``). The database also refuses UPDATE and DELETE on
the table (triggers from migration 0001).

What is recorded: logins (success and failure), every change, and reads of
patient records. ``details`` must never contain health data or secrets - ids,
field names, counts only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import select, text

from backend.extensions import db, now
from backend.models.accounts import User
from backend.models.audit import AuditEvent

GENESIS_HASH = "0" * 64

_UNSET: Any = object()


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor_user_id: uuid.UUID | None,
    actor_role: str | None,
    clinic_id: uuid.UUID | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    client_address: str | None,
    request_id: str | None,
    details: str,
    prev_hash: str,
) -> str:
    """Hex SHA-256 of one audit row's canonical serialisation (including ``prev_hash``).

    ``at`` is serialised as UTC ISO 8601 with microseconds, ids as strings.
    """
    payload = {
        "seq": seq,
        "at": at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
        "actor_user_id": str(actor_user_id) if actor_user_id else None,
        "actor_role": actor_role,
        "clinic_id": str(clinic_id) if clinic_id else None,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "client_address": client_address,
        "request_id": request_id,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _hash_of(event: AuditEvent) -> str:
    return event_hash(
        seq=event.seq, at=event.at, actor_user_id=event.actor_user_id, actor_role=event.actor_role,
        clinic_id=event.clinic_id, action=event.action, object_type=event.object_type,
        object_id=event.object_id, client_address=event.client_address,
        request_id=event.request_id, details=event.details, prev_hash=event.prev_hash,
    )


def _lock_chain() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        # Keyed by schema so separate schemas (test runs) do not contend.
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.audit_events'))")
        )
    # SQLite: this transaction already holds the database write lock.


def record(
    action: str,
    object_type: str | None = None,
    object_id: Any = None,
    *,
    actor: User | None = _UNSET,
    clinic_id: uuid.UUID | None = _UNSET,
    **details: Any,
) -> AuditEvent:
    """Append an audit event to the current transaction (the caller commits).

    Parameters
    ----------
    action : str
        Dotted verb, e.g. ``"auth.login"``, ``"patient.read"``, ``"user.deactivate"``.
    object_type, object_id : str, optional
        What was acted on (``object_id`` is stored as text).
    actor : User or None, optional
        Who acted; default: the authenticated user of the request (None if anonymous).
    clinic_id : UUID or None, optional
        Clinic whose admins may read the event; default: the actor's clinic.
    **details
        JSON-serialisable, non-sensitive extras (ids, field names, counts).

    Returns
    -------
    AuditEvent
        The flushed row.
    """
    if actor is _UNSET:
        actor = g.get("current_user") if has_request_context() else None
    if clinic_id is _UNSET:
        clinic_id = actor.clinic_id if actor is not None else None
    _lock_chain()
    last = db.session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).one_or_none()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    event = AuditEvent(
        seq=seq,
        at=now(),
        actor_user_id=actor.id if actor is not None else None,
        actor_role=actor.role if actor is not None else None,
        clinic_id=clinic_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        client_address=request.remote_addr if has_request_context() else None,
        request_id=g.get("request_id") if has_request_context() else None,
        details=canonical_json(details),
        prev_hash=prev_hash,
    )
    event.hash = _hash_of(event)
    db.session.add(event)
    db.session.flush()  # the next record() in this transaction must see this row
    return event


@dataclass(frozen=True)
class ChainVerification:
    """Result of :func:`verify_chain`.

    Attributes
    ----------
    ok : bool
        True when every row links and hashes correctly.
    checked : int
        Rows examined (up to and including the first broken one).
    first_broken_seq : int or None
        Sequence number of the first row that fails, None when ok.
    reason : str or None
        ``"gap"``, ``"prev-hash-mismatch"`` or ``"hash-mismatch"``.
    """

    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str | None


def verify_chain(batch_size: int = 1000) -> ChainVerification:
    """Recompute the whole chain in ``seq`` order and report the first break.

    Parameters
    ----------
    batch_size : int
        Rows fetched per round trip (memory stays bounded for long logs).
    """
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    stmt = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch_size)
    for event in db.session.scalars(stmt):
        checked += 1
        if event.seq != expected_seq:
            return ChainVerification(False, checked, expected_seq, "gap")
        if event.prev_hash != prev_hash:
            return ChainVerification(False, checked, event.seq, "prev-hash-mismatch")
        if event.hash != _hash_of(event):
            return ChainVerification(False, checked, event.seq, "hash-mismatch")
        expected_seq, prev_hash = expected_seq + 1, event.hash
    return ChainVerification(True, checked, None, None)
