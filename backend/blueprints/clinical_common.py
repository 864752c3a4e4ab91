"""Helpers shared by the clinical blueprints (patients, courses, assessments, enrolment)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, make_response, request
from flask_smorest import Blueprint

from backend import audit
from backend.extensions import db, now

F = TypeVar("F", bound=Callable[..., Any])

API_PREFIX = "/api/v1"

#: Roles per kind of access to clinical records (see backend.services.access).
READERS = ("patient", "clinician", "admin")
CLINICIANS = ("clinician",)
RATERS = ("patient", "clinician")


def clinical_blueprint(name: str, description: str) -> Blueprint:
    """A blueprint under ``/api/v1`` (its domain errors become problems app-wide)."""
    return Blueprint(name, __name__, url_prefix=API_PREFIX, description=description)


def transactional(view: F) -> F:
    """Commit the request's writes (changes and audit rows) once, if the view succeeded.

    For views that are not creating POSTs (those use ``@idempotent``, which commits the
    same way): reads (audit rows), PATCH and PUT. A 4xx/5xx response or an exception
    rolls everything back.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        response = make_response(current_app.ensure_sync(view)(*args, **kwargs))
        if 200 <= response.status_code < 300:
            db.session.commit()
        else:
            db.session.rollback()
        return response

    return wrapper  # type: ignore[return-value]


def audit_reads(object_type: str, object_ids: Iterable[Any]) -> None:
    """Audit a read of each of these records as ``<object_type>.read``.

    The endpoint name says what was shown; ids only, never content.
    """
    for object_id in object_ids:
        audit.record(f"{object_type}.read", object_type, object_id, endpoint=request.endpoint)


def audit_change(verb: str, object_type: str, object_id: Any, **details: Any) -> None:
    """Audit a change as ``<object_type>.<verb>``.

    ``details`` carry ids and field names, never clinical values.
    """
    audit.record(f"{object_type}.{verb}", object_type, object_id, **details)


def today(requested: dt.date | None = None) -> dt.date:
    """The day rules are evaluated on: the client's local date if given, else today (UTC)."""
    return requested if requested is not None else now().date()
