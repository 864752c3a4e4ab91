"""``@idempotent``: safe retries of creating POSTs via the ``Idempotency-Key`` header.

The first successful (2xx) response to a (caller, key) pair is stored in the
same transaction as the rows the view created, then that transaction commits
once (:func:`backend.unit_of_work.run_unit_of_work`). A retry with the same key and the same body gets the stored response
(status, body, Location) with ``Idempotent-Replayed: true``; the same key with
another body gets 422 ``idempotency-key-reused``. Two concurrent requests with
one key cannot both create: the unique (scope, key) constraint makes the
second commit fail, which rolls back its rows and replays the first response.

Decorator order on a view: ``@idempotent`` must wrap ``@blp.response`` (it
stores the serialised response), e.g.::

    @blp.route("/patients", methods=["POST"])
    @auth_required("clinician")
    @idempotent
    @blp.arguments(PatientCreateSchema)
    @blp.response(201, PatientSchema)
    def create_patient(data): ...
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from copy import deepcopy
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from backend.auth import bearer_user
from backend.errors import DomainError
from backend.extensions import db, now
from backend.http.problems import problem
from backend.models.idempotency import IdempotencyRecord
from backend.unit_of_work import response_succeeded, run_unit_of_work, view_response
from schemas.common import MAX_IDEMPOTENCY_KEY_LENGTH, IdempotencyKeyHeaderSchema

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
_KEY_PATTERN = re.compile(rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$")


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Hex SHA-256 identifying a request's method, path and body.

    A JSON body is canonicalised first (sorted keys, no whitespace), so a
    retry that re-serialises the same object still matches.
    """
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical])).hexdigest()


def _scope() -> str:
    user = g.get("current_user")
    if user is None and request.headers.get("Authorization"):
        user = bearer_user()
    return f"user:{user.id}" if user is not None else f"anonymous:{request.remote_addr}"


def _find(scope: str, key: str) -> IdempotencyRecord | None:
    return db.session.execute(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    ).scalar_one_or_none()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        problem(422, "This Idempotency-Key was already used with a different request.",
                title="Idempotency key reused", type_="idempotency-key-reused")
    response = Response(record.response_body, status=record.response_status, mimetype="application/json")
    if record.response_location:
        response.headers["Location"] = record.response_location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: F) -> F:
    """Make a creating POST view retry-safe; it runs in a unit of work (``backend.unit_of_work``).

    Without the header the view runs like a ``@transactional`` one. Views must not commit
    themselves.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        def work() -> Response:
            return view_response(view, *args, **kwargs)

        key = request.headers.get(HEADER)
        if key is None:
            return run_unit_of_work(work, succeeded=response_succeeded)
        if not _KEY_PATTERN.match(key):
            problem(400, f"{HEADER} must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters.",
                    type_="invalid-idempotency-key")
        scope = _scope()
        # full_path: a raw-body upload carries its metadata in the query string.
        fingerprint = request_fingerprint(request.method, request.full_path, request.get_data(cache=True))
        existing = _find(scope, key)
        if existing is not None:
            return _replay(existing, fingerprint)
        def remember(response: Response) -> None:
            db.session.add(
                IdempotencyRecord(
                    scope=scope, key=key, method=request.method, path=request.path,
                    request_hash=fingerprint, response_status=response.status_code,
                    response_body=response.get_data(as_text=True),
                    response_location=response.headers.get("Location"), created_at=now(),
                )
            )

        try:
            return run_unit_of_work(work, succeeded=_is_2xx, before_commit=remember)
        except (HTTPException, DomainError, IntegrityError):
            # Rolled back. A concurrent request with this key may have committed first (the
            # same rows, e.g. a unique email, or the record itself): then this is a retry.
            existing = _find(scope, key)
            if existing is None:
                raise
            return _replay(existing, fingerprint)

    apidoc = deepcopy(getattr(view, "_apidoc", {}))
    arguments = apidoc.setdefault("arguments", {})
    arguments.setdefault("parameters", []).append(
        {"in": "header", "required": False, "schema": IdempotencyKeyHeaderSchema}
    )
    arguments.setdefault("responses", {}).setdefault(422, "UNPROCESSABLE_ENTITY")
    wrapper._apidoc = apidoc  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _is_2xx(response: Response) -> bool:
    # Only successes are stored for replay.
    return 200 <= response.status_code < 300


def prune_idempotency_records() -> int:
    """Delete records older than ``IDEMPOTENCY_KEY_TTL`` seconds; caller commits.

    Returns
    -------
    int
        Rows deleted.
    """
    cutoff = now() - dt.timedelta(seconds=current_app.config["IDEMPOTENCY_KEY_TTL"])
    return db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)).rowcount


def find_record(scope: str, key: str) -> IdempotencyRecord | None:
    """The stored first response of (scope, key), if any (the dashboard's one-time form tokens)."""
    return _find(scope, key)


def store_redirect(scope: str, key: str, request_hash: str, response: Response) -> None:
    """Remember a redirect answered to (scope, key) in the current transaction.

    The dashboard's submit-once forms (``backend.dashboard.forms``) use the same table and the
    same unique constraint as ``Idempotency-Key``, so a double submission creates one thing.
    """
    db.session.add(IdempotencyRecord(
        scope=scope, key=key, method=request.method, path=request.path[:500], request_hash=request_hash,
        response_status=response.status_code, response_body="",
        response_location=response.headers.get("Location"), created_at=now()))
