"""Clinic administration: the clinic's user accounts and the audit log.

Admins see and manage only their own clinic; another clinic's user answers 404.
"""

from __future__ import annotations

import json
import uuid

from flask import url_for
from flask_smorest import Blueprint
from sqlalchemy import select

from backend import audit
from backend.auth import auth_required, current_user
from backend.http.idempotency import idempotent
from backend.http.pagination import paginate
from backend.models.accounts import User
from backend.models.audit import AuditEvent
from backend.services import accounts as account_service
from backend.unit_of_work import transactional
from schemas.accounts import (
    AuditEventSchema,
    AuditListArgsSchema,
    AuditVerificationSchema,
    UserCreateSchema,
    UserListArgsSchema,
    UserSchema,
)
from schemas.common import page_schema

blp = Blueprint("admin", __name__, url_prefix="/api/v1",
                description="Clinic administration: users and audit log (admins only).")


def _clinic_user_or_404(user_id: uuid.UUID) -> User:
    return account_service.clinic_user(current_user(), user_id)


@blp.route("/admin/users", methods=["GET"])
@auth_required("admin")
@blp.arguments(UserListArgsSchema, location="query")
@blp.response(200, page_schema(UserSchema))
def list_users(args: dict) -> dict:
    """The clinic's user accounts, oldest first."""
    stmt = select(User).where(User.clinic_id == current_user().clinic_id)
    if "role" in args:
        stmt = stmt.where(User.role == args["role"])
    if "is_active" in args:
        stmt = stmt.where(User.is_active.is_(args["is_active"]))
    items, next_cursor = paginate(stmt, (User.created_at, User.id), args)
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/admin/users", methods=["POST"])
@auth_required("admin")
@idempotent
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, response="CONFLICT")
def create_user(body: dict) -> tuple[User, int, dict[str, str]]:
    """Create a clinician, researcher or admin account in the clinic."""
    user = account_service.create_user(current_user(), body)
    audit.record("user.create", "user", user.id, role=user.role)
    return user, 201, {"Location": url_for("admin.get_user", user_id=user.id)}


@blp.route("/admin/users/<uuid:user_id>", methods=["GET"])
@auth_required("admin")
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_user(user_id: uuid.UUID) -> User:
    """One user account of the clinic."""
    return _clinic_user_or_404(user_id)


def _set_active(user_id: uuid.UUID, active: bool) -> User:
    user = _clinic_user_or_404(user_id)
    if account_service.set_active(current_user(), user, active):
        audit.record("user.activate" if active else "user.deactivate", "user", user.id)
    return user


@blp.route("/admin/users/<uuid:user_id>/deactivate", methods=["POST"])
@auth_required("admin")
@transactional
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def deactivate_user(user_id: uuid.UUID) -> User:
    """Deactivate an account: it can no longer sign in and its sign-ins end."""
    return _set_active(user_id, False)


@blp.route("/admin/users/<uuid:user_id>/reactivate", methods=["POST"])
@auth_required("admin")
@transactional
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def reactivate_user(user_id: uuid.UUID) -> User:
    """Allow a deactivated account to sign in again."""
    return _set_active(user_id, True)


def _event_dump(event: AuditEvent) -> dict:
    dumped = {column: getattr(event, column) for column in AuditEventSchema().fields}
    dumped["details"] = json.loads(event.details)
    return dumped


@blp.route("/audit", methods=["GET"])
@auth_required("admin")
@blp.arguments(AuditListArgsSchema, location="query")
@blp.response(200, page_schema(AuditEventSchema))
def list_audit_events(args: dict) -> dict:
    """The clinic's audit events, newest first."""
    stmt = select(AuditEvent).where(AuditEvent.clinic_id == current_user().clinic_id)
    if "action" in args:
        stmt = stmt.where(AuditEvent.action == args["action"])
    items, next_cursor = paginate(stmt, (AuditEvent.seq,), args, descending=True)
    return {"items": [_event_dump(e) for e in items], "next_cursor": next_cursor}


@blp.route("/audit/verify", methods=["GET"])
@auth_required("admin")
@transactional
@blp.response(200, AuditVerificationSchema)
def verify_audit_chain() -> dict:
    """Recompute the whole hash chain and report the first broken row, if any."""
    result = audit.verify_chain()
    audit.record("audit.verify", ok=result.ok, checked=result.checked)
    return {"ok": result.ok, "checked": result.checked,
            "first_broken_seq": result.first_broken_seq, "reason": result.reason}
