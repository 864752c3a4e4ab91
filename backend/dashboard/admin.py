"""Admin pages: the clinic's staff accounts, the audit log (filters, chain verification) and
studies (create, join, grant and revoke researchers), through the services the API calls."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, redirect, render_template, request, url_for
from sqlalchemy import select

from backend import audit
from backend.dashboard.forms import Form, submit_once
from backend.dashboard.views import FORM_MEDIA_TYPE, bp, check_csrf, login_required, user
from backend.errors import DomainError, Forbidden
from backend.extensions import db
from backend.http.media_types import accepts
from backend.models.accounts import User
from backend.models.audit import AuditEvent
from backend.models.studies import Study
from backend.services import accounts as account_service
from backend.services import studies as study_service
from backend.unit_of_work import transactional
from schemas.accounts import STAFF_ROLES, UserCreateSchema
from schemas.clinical import INDICATIONS
from schemas.studies import StudyCreateSchema

F = TypeVar("F", bound=Callable[..., Any])

AUDIT_PAGE_SIZE = 50


def admins_only(view: F) -> F:
    """Pages of the clinic's administration (as the API's ``@auth_required("admin")``)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if user().role != "admin":
            raise Forbidden("Only the clinic's admins manage accounts, the audit log and studies.")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, value.replace("_", " ")) for value in values]


# ------------------------------------------------------------------ users


@bp.route("/admin/users", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@admins_only
@submit_once(check_csrf)
def admin_users() -> Any:
    """The clinic's accounts; create a clinician, researcher or admin (``POST /api/v1/admin/users``)."""
    form = Form(UserCreateSchema(), {"role": "clinician"})
    if form.submitted and form.validate():
        def create(data: dict[str, Any]) -> Response:
            created = account_service.create_user(user(), data)
            audit.record("user.create", "user", created.id, role=created.role)
            return redirect(url_for("dashboard.admin_users"), code=303)
        done = form.attempt(create)
        if done is not None:
            return done
    users = db.session.scalars(select(User).where(User.clinic_id == user().clinic_id, User.role != "patient")
                               .order_by(User.role, User.email)).all()
    return form.render("dashboard/admin/users.html", users=users, roles=_choices(STAFF_ROLES), user=user())


@bp.route("/admin/users/<uuid:user_id>/active", methods=["POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@admins_only
@transactional
def admin_user_active(user_id: uuid.UUID) -> Response:
    """Deactivate (its sign-ins end) or reactivate an account (the API's deactivate/reactivate)."""
    check_csrf()
    account = account_service.clinic_user(user(), user_id)
    active = request.form.get("active") == "true"
    if account_service.set_active(user(), account, active):
        audit.record("user.activate" if active else "user.deactivate", "user", account.id)
    return redirect(url_for("dashboard.admin_users"), code=303)


# ------------------------------------------------------------------ audit log


def _date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@bp.route("/admin/audit")
@login_required
@admins_only
@transactional
def admin_audit() -> str:
    """The clinic's audit events, newest first, filtered by user, action, object and dates."""
    args = {name: request.args.get(name, "").strip()[:80] for name in ("actor", "action", "object", "since", "until")}
    statement = select(AuditEvent).where(AuditEvent.clinic_id == user().clinic_id)
    errors: dict[str, str] = {}
    if args["actor"]:
        try:
            statement = statement.where(AuditEvent.actor_user_id == uuid.UUID(args["actor"]))
        except ValueError:
            errors["actor"] = "Choose a user from the list."
    if args["action"]:
        statement = statement.where(AuditEvent.action.startswith(args["action"], autoescape=True))
    if args["object"]:
        statement = statement.where((AuditEvent.object_id == args["object"]) | (AuditEvent.object_type == args["object"]))
    for name, compare in (("since", lambda day: AuditEvent.at >= day), ("until", lambda day: AuditEvent.at < day)):
        if args[name]:
            day = _date(args[name])
            if day is None:
                errors[name] = "Give a date as YYYY-MM-DD."
                continue
            start = dt.datetime.combine(day + dt.timedelta(days=1 if name == "until" else 0), dt.time(),
                                        dt.timezone.utc)
            statement = statement.where(compare(start))
    try:
        before = int(request.args.get("before", "0"))
    except ValueError:
        before = 0
    if before > 0:
        statement = statement.where(AuditEvent.seq < before)
    events = db.session.scalars(statement.order_by(AuditEvent.seq.desc()).limit(AUDIT_PAGE_SIZE)).all()
    staff = db.session.scalars(select(User).where(User.clinic_id == user().clinic_id, User.role != "patient")
                               .order_by(User.email)).all()
    emails = {account.id: account.email for account in staff}
    rows = [(event, emails.get(event.actor_user_id, event.actor_role or "-"), json.loads(event.details or "{}"))
            for event in events]
    older = events[-1].seq if len(events) == AUDIT_PAGE_SIZE else None
    return render_template("dashboard/admin/audit.html", rows=rows, args=args, errors=errors, staff=staff,
                           older=older, verification=None, user=user()), (422 if errors else 200)


@bp.route("/admin/audit/verify", methods=["POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@admins_only
@transactional
def admin_audit_verify() -> str:
    """Recompute the whole hash chain (``GET /api/v1/audit/verify``) and show the answer."""
    check_csrf()
    result = audit.verify_chain()
    audit.record("audit.verify", ok=result.ok, checked=result.checked)
    return render_template("dashboard/admin/audit_verify.html", result=result, user=user())


# ------------------------------------------------------------------ studies


@bp.route("/admin/studies", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@admins_only
@submit_once(check_csrf)
def admin_studies() -> Any:
    """Study definitions; create one owned by this clinic (``POST /api/v1/studies``)."""
    form = Form(StudyCreateSchema())
    if form.submitted and form.validate():
        def create(data: dict[str, Any]) -> Response:
            study = study_service.create_study(user(), data)
            audit.record("study.create", "study", study.id)
            return redirect(url_for("dashboard.admin_study", study_id=study.id), code=303)
        done = form.attempt(create)
        if done is not None:
            return done
    studies = db.session.scalars(select(Study).where(study_service.visible_studies(user()))
                                 .order_by(Study.created_at.desc())).all()
    return form.render("dashboard/admin/studies.html", studies=studies, indications=_choices(INDICATIONS),
                       user=user())


def _study_page(study: Study, error: str | None = None, status: int = 200) -> tuple[str, int]:
    researchers = db.session.scalars(select(User).where(User.clinic_id == user().clinic_id,
                                                        User.role == "researcher", User.is_active)
                                     .order_by(User.email)).all()
    names = {account.id: account.email for account in db.session.scalars(
        select(User).where(User.id.in_([grant.researcher_user_id for grant in study.grants])))}
    joined = any(link.clinic_id == user().clinic_id for link in study.clinics)
    return render_template("dashboard/admin/study.html", study=study, researchers=researchers, names=names,
                           joined=joined, owned=study.owner_clinic_id == user().clinic_id, error=error,
                           user=user()), status


@bp.route("/admin/studies/<uuid:study_id>")
@login_required
@admins_only
@transactional
def admin_study(study_id: uuid.UUID) -> tuple[str, int]:
    """A study: participating clinics, granted researchers, and the forms to change them."""
    return _study_page(study_service.get_study_or_404(user(), study_id))


@bp.route("/admin/studies/<uuid:study_id>/membership", methods=["POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@admins_only
@transactional
def admin_study_membership(study_id: uuid.UUID) -> Response:
    """Join or leave the study with this clinic (the API's PUT/DELETE of the study's clinic)."""
    check_csrf()
    study = study_service.get_study_or_404(user(), study_id)
    clinic_id = user().clinic_id
    if request.form.get("join") == "true":
        if study_service.join_study(study, clinic_id, user()):
            audit.record("study.clinic_join", "study", study.id, clinic=str(clinic_id))
    elif study_service.leave_study(study, clinic_id, user()):
        audit.record("study.clinic_leave", "study", study.id, clinic=str(clinic_id))
    return redirect(url_for("dashboard.admin_study", study_id=study.id), code=303)


@bp.route("/admin/studies/<uuid:study_id>/grants", methods=["POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@admins_only
@transactional
def admin_study_grant(study_id: uuid.UUID) -> Any:
    """Grant (``grant``=researcher id) or revoke (``revoke``=researcher id) a researcher's access."""
    check_csrf()
    study = study_service.owned_study_or_403(user(), study_id)
    try:
        if request.form.get("revoke"):
            researcher_id = uuid.UUID(request.form["revoke"])
            study_service.revoke_grant(study, researcher_id)
            audit.record("study.revoke", "study", study.id, researcher=str(researcher_id))
        else:
            researcher_id = uuid.UUID(request.form.get("researcher_id", ""))
            grant = study_service.grant_researcher(study, researcher_id, user())
            audit.record("study.grant", "study", study.id, researcher=str(grant.researcher_user_id))
    except ValueError:
        return _study_page(study, "Choose a researcher from the list.", 422)
    except DomainError as error:
        if isinstance(error, Forbidden):
            raise
        return _study_page(study, error.detail, 422)
    return redirect(url_for("dashboard.admin_study", study_id=study.id), code=303)
