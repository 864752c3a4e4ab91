"""Dashboard views: sign-in, patient list with flags, patient page, before/after viewer, PDF report."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, g, redirect, render_template, request, session, url_for
from PIL import Image
from sqlalchemy import select

from backend import audit
from backend.auth.signin import authenticate
from backend.dashboard import DASHBOARD_CSP
from backend.errors import SignInRateLimited, SignInRefused
from backend.extensions import db, now
from backend.http.media_types import accepts
from backend.http.problems import problem
from backend.models.accounts import User
from backend.models.clinical import AdverseEvent, Assessment, Patient, TreatmentCourse
from backend.models.photos import Photo
from backend.services import access
from backend.services import progress as progress_service
from backend.services.charts import CHART_MEDIA_TYPES, render_chart, render_timeline
from backend.services.milestones import schedule_items
from backend.services.photos import latest_analysis, overlay_of
from backend.services.report_pdf import render_report_pdf
from backend.storage import ObjectNotFound, current_storage
from backend.unit_of_work import transactional
from imaging.catalogue import MEASURE_BY_KEY

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static")

#: Roles of the clinic pages (admins read their clinic's records).
DASHBOARD_ROLES = ("clinician", "admin")
#: Roles that may sign in to the pages: clinic staff, and researchers (their studies only).
SIGN_IN_ROLES = DASHBOARD_ROLES + ("researcher",)
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
#: Overlay layers the viewer offers (names stored by the analysis job).
VIEWER_OVERLAYS = ("redness", "pigment_spots", "wrinkles", "regions")
#: Gap between the halves of imaging's ``before_after`` pair (imaging.overlays.before_after_pair).
BEFORE_AFTER_GAP_PX = 8


# ------------------------------------------------------------------ session and CSRF

def _password_epoch(user: User) -> str:
    """Changes when the password changes, so a password change ends old dashboard sessions."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """400 unless the form's ``csrf_token`` matches the session's."""
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        problem(400, "The form expired or did not come from this site; reload the page and try again.",
                type_="csrf-failed")


def signed_in_user() -> User | None:
    """The dashboard user of this session, if the session is still valid."""
    raw_id = session.get("user_id")
    if raw_id is None:
        return None
    try:
        user = db.session.get(User, uuid.UUID(raw_id))
    except ValueError:
        return None
    if (user is None or not user.is_active or user.role not in SIGN_IN_ROLES
            or not hmac.compare_digest(session.get("epoch", ""), _password_epoch(user))):
        return None
    return user


def login_required(view: F | None = None, *, roles: tuple[str, ...] = DASHBOARD_ROLES) -> Any:
    """Redirect to the sign-in page without a valid session, and a signed-in user of another
    role to their own start page (``@login_required`` for clinic pages,
    ``@login_required(roles=("researcher",))`` for the researchers').

    Place it outside ``@transactional``, which commits the page's audit rows.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = signed_in_user()
            if user is None:
                session.clear()
                return redirect(url_for("dashboard.login",
                                        next=request.full_path if request.method == "GET" else None))
            if user.role not in roles:
                return redirect(home_of(user))
            g.dashboard_user = user
            g.current_user = user  # audit rows name the signed-in user as actor
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(view) if view is not None else decorate


def home_of(account: User) -> str:
    """Where a signed-in user starts: researchers their studies, clinic staff the patient list."""
    return url_for("dashboard.research_home" if account.role == "researcher" else "dashboard.patients")


def user() -> User:
    """The signed-in dashboard user of this request."""
    return g.dashboard_user


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token}


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DASHBOARD_CSP
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    return response


def _safe_next(target: str | None, account: User) -> str:
    """Only a local dashboard path is followed after sign-in (no open redirects)."""
    if target and target.startswith("/dashboard/") and not target.startswith("//") and "\\" not in target:
        return target
    return home_of(account)


@bp.route("/login", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@transactional
def login() -> Any:
    """Sign-in form; on success a fresh session (no fixation) and a redirect.

    A refused sign-in is answered by :func:`_refused_sign_in` (after the unit of work stored it).
    """
    if request.method == "GET":
        return render_template("dashboard/login.html", error=None)
    check_csrf()
    account = authenticate(request.form.get("email", ""), request.form.get("password", ""),
                           request.remote_addr or "unknown", roles=SIGN_IN_ROLES, channel="dashboard")
    session.clear()
    session.permanent = True
    session.update(user_id=str(account.id), epoch=_password_epoch(account), csrf=secrets.token_urlsafe(32))
    return redirect(_safe_next(request.args.get("next"), account))


@bp.errorhandler(SignInRateLimited)
@bp.errorhandler(SignInRefused)
def _refused_sign_in(error: SignInRateLimited | SignInRefused) -> tuple[str, int]:
    """The sign-in page again, saying why (the API answers the same errors as problems)."""
    if isinstance(error, SignInRateLimited):
        message, status = f"Too many failed sign-ins; try again in {error.retry_after} seconds.", 429
    else:
        message, status = "Email or password is wrong, or this account cannot use the dashboard.", 401
    return render_template("dashboard/login.html", error=message), status


@bp.route("/logout", methods=["POST"])
@accepts(FORM_MEDIA_TYPE)
def logout() -> Response:
    """End the session (CSRF-checked so other sites cannot sign a clinician out)."""
    check_csrf()
    session.clear()
    return redirect(url_for("dashboard.login"))


# ------------------------------------------------------------------ patient list

@dataclass(frozen=True)
class PatientFlags:
    """Why a patient needs attention."""

    overdue_milestone: bool
    unusable_last_photo: bool
    worsened_beyond_mdc: list[str]
    adverse_event: bool

    @property
    def any(self) -> bool:
        return self.overdue_milestone or self.unusable_last_photo or bool(self.worsened_beyond_mdc) or self.adverse_event


def newest_course(patient: Patient) -> TreatmentCourse | None:
    """The patient's course with the latest baseline date."""
    return max(patient.courses, key=lambda c: (c.baseline_date, c.created_at), default=None)


def patient_flags(patient: Patient, today: dt.date) -> PatientFlags:
    """Overdue milestone, unusable newest photo, a headline measure worse beyond MDC, any adverse event."""
    active = [c for c in patient.courses if c.status in ("planned", "active")]
    overdue = bool(schedule_items(active, today)["overdue"]) if active else False
    last_photo = db.session.scalars(
        select(Photo).where(Photo.patient_id == patient.id, Photo.deleted_at.is_(None))
        .order_by(Photo.created_at.desc(), Photo.id.desc()).limit(1)
    ).first()
    worsened = []
    course = newest_course(patient)
    if course is not None:
        progress = progress_service.course_progress(course, measures=progress_service.HEADLINE_MEASURES)
        worsened = sorted({f"{s.measure} ({s.region.replace('_', ' ')})" for s in progress.series
                           if s.worsened_beyond_mdc()})
    course_ids = [c.id for c in patient.courses]
    adverse = bool(course_ids) and db.session.scalar(
        select(AdverseEvent.id).where(AdverseEvent.course_id.in_(course_ids)).limit(1)) is not None
    return PatientFlags(overdue, last_photo is not None and not last_photo.usable, worsened, adverse)


@bp.route("/")
@login_required
@transactional
def patients() -> str:
    """The clinic's patients with attention flags, search, filters and pages."""
    from backend.dashboard.clinic import patient_list_page  # the clinic pages build on this module

    return patient_list_page()


# ------------------------------------------------------------------ patient page

def _course_of(patient: Patient, course_id: str | None) -> TreatmentCourse | None:
    if course_id:
        return next((c for c in patient.courses if str(c.id) == course_id), None) or access.not_found("course")
    return newest_course(patient)


@bp.route("/patients/<uuid:patient_id>")
@login_required
@transactional
def patient_page(patient_id: uuid.UUID) -> str:
    """Course, charts per measure and region, assessments and adverse events on one time axis."""
    patient = access.get_patient_or_404(user(), patient_id)
    audit.record("patient.read", "patient", patient.id, endpoint=request.endpoint)
    course = _course_of(patient, request.args.get("course"))
    context: dict[str, Any] = {"patient": patient, "course": course, "user": user()}
    if course is not None:
        progress = progress_service.course_progress(course, measures=progress_service.HEADLINE_MEASURES)
        regions = list(progress_service.SERIES_REGIONS)
        assessments = db.session.scalars(select(Assessment).where(Assessment.course_id == course.id)).all()
        events = db.session.scalars(
            select(AdverseEvent).where(AdverseEvent.course_id == course.id).order_by(AdverseEvent.onset_date)).all()
        context.update(
            progress=progress, regions=regions, measures=progress_service.HEADLINE_MEASURES,
            measure_labels={key: MEASURE_BY_KEY[key].label for key in progress_service.HEADLINE_MEASURES},
            timeline=progress_service.course_timeline(course, progress.day_zero),
            assessments=sorted(assessments, key=lambda a: (a.milestone.day_offset, a.rater_role)),
            adverse_events=events, milestones=progress.milestones,
            split_face=[d for d in progress.split_face if d.measure in progress_service.HEADLINE_MEASURES],
        )
    return render_template("dashboard/patient.html", **context)


@bp.route("/patients/<uuid:patient_id>/courses/<uuid:course_id>/charts/<string:measure>.<any(png,svg):fmt>")
@login_required
@transactional
def chart(patient_id: uuid.UUID, course_id: uuid.UUID, measure: str, fmt: str) -> Response:
    """A chart image of the patient page (same rendering as the API's)."""
    patient = access.get_patient_or_404(user(), patient_id)
    course = _course_of(patient, str(course_id))
    region = request.args.get("region", progress_service.ALL_SKIN)
    if measure not in progress_service.SERIES_MEASURES:
        access.not_found("measure")
    if region not in progress_service.SERIES_REGIONS:
        problem(422, f"Unknown region {region!r}.", type_="invalid-region")
    progress = progress_service.course_progress(course, measures=(measure,), regions=(region,))
    events = progress_service.course_timeline(course, progress.day_zero)
    data = render_chart(progress.get(measure, region), fmt, events, last_day=progress.last_milestone_day)
    audit.record("course.read", "course", course.id, endpoint=request.endpoint)
    return Response(data, mimetype=CHART_MEDIA_TYPES[fmt], headers={"Cache-Control": "private, no-store"})


@bp.route("/patients/<uuid:patient_id>/courses/<uuid:course_id>/timeline.svg")
@login_required
@transactional
def timeline_chart(patient_id: uuid.UUID, course_id: uuid.UUID) -> Response:
    """Assessments (GAIS) and adverse events on the same days-since-baseline axis as the charts."""
    patient = access.get_patient_or_404(user(), patient_id)
    course = _course_of(patient, str(course_id))
    progress = progress_service.course_progress(course, measures=(), regions=())
    data = render_timeline(progress_service.course_timeline(course, progress.day_zero), "svg",
                           last_day=progress.last_milestone_day)
    audit.record("course.read", "course", course.id, endpoint=request.endpoint)
    return Response(data, mimetype=CHART_MEDIA_TYPES["svg"], headers={"Cache-Control": "private, no-store"})


# ------------------------------------------------------------------ before/after viewer

def _visible_photo(photo_id: uuid.UUID) -> Photo:
    photo = db.session.get(Photo, photo_id)
    if photo is None:
        access.not_found("photo")
    access.get_patient_or_404(user(), photo.patient_id)  # 404 for another clinic's photo
    if photo.deleted_at is not None:
        problem(410, "This photo was deleted; its bytes were removed.", type_="photo-removed")
    return photo


def _read(key: str | None) -> bytes:
    if key is None:
        problem(410, "The photo's files were removed.", type_="photo-removed")
    try:
        with current_storage().open(key) as stream:
            return stream.read()
    except ObjectNotFound:
        problem(410, "The photo's files were removed.", type_="photo-removed")


def _png(data: bytes) -> Response:
    return Response(data, mimetype="image/png", headers={"Cache-Control": "private, no-store"})


@bp.route("/photos/<uuid:photo_id>/overlays/<any(redness,pigment_spots,wrinkles,regions):name>.png")
@login_required
@transactional
def photo_overlay(photo_id: uuid.UUID, name: str) -> Response:
    """An overlay of the photo's latest analysis (canonical, aligned face); audited."""
    photo = _visible_photo(photo_id)
    overlay = overlay_of(photo, name)
    if overlay is None:
        access.not_found("overlay")
    audit.record("photo.read", "photo", photo.id, endpoint=request.endpoint, overlay=name)
    return _png(_read(overlay.storage_key))


@bp.route("/photos/<uuid:photo_id>/aligned/<any(baseline,followup):side>.png")
@login_required
@transactional
def aligned_face(photo_id: uuid.UUID, side: str) -> Response:
    """One half of a follow-up's ``before_after`` pair: the baseline or the follow-up face, both
    in the baseline's canonical frame (registered), so they overlay exactly; audited."""
    photo = _visible_photo(photo_id)
    overlay = overlay_of(photo, "before_after")
    if overlay is None:
        access.not_found("aligned pair")
    pair = Image.open(io.BytesIO(_read(overlay.storage_key)))
    half = (pair.width - BEFORE_AFTER_GAP_PX) // 2
    box = (0, 0, half, pair.height) if side == "baseline" else (half + BEFORE_AFTER_GAP_PX, 0, pair.width, pair.height)
    out = io.BytesIO()
    pair.crop(box).save(out, format="PNG", optimize=False, compress_level=3)
    audit.record("photo.read", "photo", photo.id, endpoint=request.endpoint, side=side)
    return _png(out.getvalue())


@bp.route("/patients/<uuid:patient_id>/viewer")
@login_required
@transactional
def viewer(patient_id: uuid.UUID) -> str:
    """Baseline and a chosen milestone side by side, overlays toggled, slider or blink comparison."""
    patient = access.get_patient_or_404(user(), patient_id)
    course = _course_of(patient, request.args.get("course"))
    if course is None:
        access.not_found("course")
    progress = progress_service.course_progress(course, measures=("redness",), regions=(progress_service.ALL_SKIN,))
    series = progress.get("redness", progress_service.ALL_SKIN)
    baseline = series.baseline_point()
    followups = [p for p in series.points if p.milestone_id != series.baseline_milestone_id]
    chosen_name = request.args.get("milestone")
    chosen = next((p for p in followups if p.milestone_name == chosen_name), followups[-1] if followups else None)
    pair_ready = False
    if chosen is not None:
        photo = db.session.get(Photo, chosen.photo_id)
        analysis = latest_analysis(photo)
        pair_ready = analysis is not None and any(o.name == "before_after" and o.storage_key for o in analysis.overlays)
    for point in (baseline, chosen):
        if point is not None:
            audit.record("photo.read", "photo", point.photo_id, endpoint=request.endpoint)
    return render_template("dashboard/viewer.html", patient=patient, course=course, baseline=baseline,
                           chosen=chosen, followups=followups, overlays=VIEWER_OVERLAYS, pair_ready=pair_ready,
                           user=user())


# ------------------------------------------------------------------ report

@bp.route("/patients/<uuid:patient_id>/report.pdf")
@login_required
@transactional
def report(patient_id: uuid.UUID) -> Response:
    """Printable one-page progress report (A4 PDF)."""
    patient = access.get_patient_or_404(user(), patient_id)
    course = _course_of(patient, request.args.get("course"))
    if course is None:
        access.not_found("course")
    progress = progress_service.course_progress(course, measures=progress_service.HEADLINE_MEASURES)
    design = "split-face, treated side " + course.split_face_treated_side if course.split_face_treated_side else "whole face"
    data = render_report_pdf(
        clinic_name=user().clinic.name, patient_name=patient.full_name, study_id=patient.study_id,
        course_title=(f"{course.indication.replace('_', ' ')}: {course.product_name}, "
                      f"{course.delivery.replace('_', ' ')}; {design}; baseline {course.baseline_date.isoformat()}"),
        progress=progress, events=progress_service.course_timeline(course, progress.day_zero),
        generated_on=now().date().isoformat(),
    )
    audit.record("patient.report", "patient", patient.id, course_id=str(course.id))
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="progress-{patient.study_id}.pdf"',
        "Cache-Control": "private, no-store"})
