"""Helpers shared by the clinical blueprints (patients, courses, assessments, enrolment)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from flask import request
from flask_smorest import Blueprint

from backend import audit
from backend.extensions import now

API_PREFIX = "/api/v1"

#: Roles per kind of access to clinical records (see backend.services.access).
READERS = ("patient", "clinician", "admin")
CLINICIANS = ("clinician",)
RATERS = ("patient", "clinician")


def clinical_blueprint(name: str, description: str) -> Blueprint:
    """A blueprint under ``/api/v1`` (its domain errors become problems app-wide)."""
    return Blueprint(name, __name__, url_prefix=API_PREFIX, description=description)


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
