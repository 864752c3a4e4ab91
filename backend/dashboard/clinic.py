"""Clinic workspace pages: the clinic's work in the browser, through the API's services.

Patients (create, edit), consents on the patient's behalf, invitations with a printable
enrolment sheet, courses (start, edit), treatment sessions with the product applied, GAIS
ratings, adverse events (report, update, resolve), lot tracing and the clinic's worklist.
Every form goes through :mod:`backend.dashboard.forms` (CSRF, the API's schemas, submit once)
and calls the same service and writes the same audit row as the API endpoint it mirrors.
Clinicians write; admins read the clinic's records (as in the API).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, redirect, render_template, request, url_for
from sqlalchemy import Select, func, or_, select

from backend import audit
from backend.dashboard.forms import Form, submit_once
from backend.dashboard.views import FORM_MEDIA_TYPE, bp, check_csrf, login_required, newest_course, patient_flags, user
from backend.errors import Forbidden, ValidationFailed
from backend.extensions import db, now
from backend.http.media_types import accepts
from backend.models.clinical import Milestone, Patient, TreatmentCourse
from backend.models.photos import Photo
from backend.services import access
from backend.services import assessments as assessment_service
from backend.services import courses as course_service
from backend.services import enrolment as enrolment_service
from backend.services import patients as patient_service
from backend.services import photos as photo_service
from backend.services.milestones import schedule_items
from backend.unit_of_work import transactional
from schemas import clinical as vocab
from schemas.clinical import (
    AdverseEventCreateSchema,
    AdverseEventUpdateSchema,
    AssessmentCreateSchema,
    ConsentEventCreateSchema,
    CourseCreateSchema,
    CourseUpdateSchema,
    PatientCreateSchema,
    PatientUpdateSchema,
    ScheduleReplaceSchema,
    SessionCreateSchema,
)
from schemas.photos import PHOTO_VIEWS, CaptureMetadataSchema

F = TypeVar("F", bound=Callable[..., Any])

#: Days an invitation made from the dashboard stays valid (the API's default).
INVITATION_DAYS = 7
PATIENT_FIELDS = ("full_name", "date_of_birth", "sex", "fitzpatrick_type", "email", "phone")
COURSE_FIELDS = ("indication", "product_name", "exosome_source", "concentration_value", "concentration_unit",
                 "delivery", "treated_regions", "split_face_treated_side", "baseline_date", "status", "notes")
PAGE_SIZE = 25


def require_clinician() -> None:
    """Writes are the clinicians' (admins read the clinic's records), as in the API."""
    if user().role != "clinician":
        raise Forbidden("Only clinicians record clinical data.")


def clinicians_only(view: F) -> F:
    """A page only clinicians use (see :func:`require_clinician`)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_clinician()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def choices(values: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(value, readable label) pairs of a vocabulary."""
    return [(value, value.replace("_", " ")) for value in values]


def vocabularies() -> dict[str, Any]:
    return {
        "sexes": choices(vocab.SEXES), "indications": choices(vocab.INDICATIONS),
        "sources": choices(vocab.EXOSOME_SOURCES), "units": choices(vocab.CONCENTRATION_UNITS),
        "deliveries": choices(vocab.DELIVERY_METHODS), "regions": choices(vocab.FACE_REGIONS),
        "sides": choices(vocab.FACE_SIDES), "statuses": choices(vocab.COURSE_STATUSES),
        "scopes": choices(vocab.CONSENT_SCOPES), "event_types": choices(vocab.ADVERSE_EVENT_TYPES),
        "severities": choices(vocab.SEVERITIES),
        "gais": [(str(value), f"{value}: {label}") for value, label in vocab.GAIS_LABELS.items()],
        "fitzpatrick": [(str(n), f"{'I II III IV V VI'.split()[n - 1]} ({n})") for n in range(1, 7)],
    }


def audit_page_read(object_type: str, object_id: Any) -> None:
    """A form page shows a record's data: audit the read as the API's GET would (not on POST,
    whose change is audited instead)."""
    if request.method == "GET":
        audit.record(f"{object_type}.read", object_type, object_id, endpoint=request.endpoint)


def _course(course_id: uuid.UUID) -> TreatmentCourse:
    course = access.get_course_or_404(user(), course_id)
    audit_page_read("course", course.id)
    return course


def _patient(patient_id: uuid.UUID) -> Patient:
    patient = access.get_patient_or_404(user(), patient_id)
    audit_page_read("patient", patient.id)
    return patient


# ------------------------------------------------------------------ patient list


def patient_list_page() -> str:
    """The clinic's patients (``dashboard.patients``): search (name, study id, email), filters
    (flag, indication, course status), sort and pages of :data:`PAGE_SIZE`."""
    query = request.args.get("q", "").strip()
    flag = request.args.get("flag", "")
    indication = request.args.get("indication", "")
    status = request.args.get("status", "")
    sort = request.args.get("sort", "name")
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    rows = list(db.session.scalars(select_patients(query)).all())
    today = now().date()
    listed = []
    for patient in rows:
        course = newest_course(patient)
        if indication and not any(c.indication == indication for c in patient.courses):
            continue
        if status and not any(c.status == status for c in patient.courses):
            continue
        flags = patient_flags(patient, today)
        if flag and not _has_flag(flags, flag):
            continue
        listed.append((patient, flags, course))
    if sort == "newest":
        listed.sort(key=lambda item: item[0].created_at, reverse=True)
    elif sort == "baseline":
        listed.sort(key=lambda item: item[2].baseline_date if item[2] else dt.date.min, reverse=True)
    pages = max(1, math.ceil(len(listed) / PAGE_SIZE))
    page = min(page, pages)
    shown = listed[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    audit.record("patient.list", "clinic", user().clinic_id, count=len(shown))
    args = {"q": query, "flag": flag, "indication": indication, "status": status, "sort": sort}
    return render_template("dashboard/clinic/patient_list.html", patients=shown, total=len(listed), page=page,
                           pages=pages, args=args, user=user(), **vocabularies())


FLAG_FILTERS = {"any": "needs attention", "overdue": "overdue milestone", "retake": "unusable last photo",
                "worse": "worse beyond MDC", "adverse": "adverse event"}


def _has_flag(flags: Any, flag: str) -> bool:
    return {"any": flags.any, "overdue": flags.overdue_milestone, "retake": flags.unusable_last_photo,
            "worse": bool(flags.worsened_beyond_mdc), "adverse": flags.adverse_event}.get(flag, True)


def select_patients(query: str) -> Select[tuple[Patient]]:
    """The visible patients whose name, study id or email contains ``query`` (any case)."""
    statement = select(Patient).where(access.patients_visible_to(user())).order_by(Patient.full_name, Patient.id)
    if query:
        pattern = "%" + query.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        statement = statement.where(or_(func.lower(Patient.full_name).like(pattern),
                                        func.lower(Patient.study_id).like(pattern),
                                        func.lower(Patient.email).like(pattern)))
    return statement


# ------------------------------------------------------------------ patients


@bp.route("/patients/new", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def patient_new() -> Any:
    """Create a patient (``POST /api/v1/patients``)."""
    form = Form(PatientCreateSchema())
    if form.submitted and form.validate():
        def create(data: dict[str, Any]) -> Response:
            patient = patient_service.create_patient(user().clinic_id, data)
            audit.record("patient.create", "patient", patient.id)
            return redirect(url_for("dashboard.patient_page", patient_id=patient.id), code=303)
        done = form.attempt(create)
        if done is not None:
            return done
    return form.render("dashboard/clinic/patient_form.html", patient=None, user=user(), **vocabularies())


@bp.route("/patients/<uuid:patient_id>/edit", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def patient_edit(patient_id: uuid.UUID) -> Any:
    """Change a patient's details (``PATCH /api/v1/patients/{id}``)."""
    patient = _patient(patient_id)
    form = Form(PatientUpdateSchema(), {name: getattr(patient, name) for name in PATIENT_FIELDS})
    if form.submitted and form.validate():
        def update(data: dict[str, Any]) -> Response:
            changed = patient_service.update_patient(patient, data)
            audit.record("patient.update", "patient", patient.id, fields=sorted(changed))
            return redirect(url_for("dashboard.patient_page", patient_id=patient.id), code=303)
        done = form.attempt(update)
        if done is not None:
            return done
    return form.render("dashboard/clinic/patient_form.html", patient=patient, user=user(), **vocabularies())


@bp.route("/patients/<uuid:patient_id>/consents", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@submit_once(check_csrf)
def consents(patient_id: uuid.UUID) -> Any:
    """Each consent scope's state; a clinician records a grant or withdrawal on the patient's
    behalf with the consent text version (``POST /api/v1/patients/{id}/consents``)."""
    patient = _patient(patient_id)
    form = Form(ConsentEventCreateSchema(), {"action": "grant"})
    if form.submitted:
        require_clinician()
        if form.validate():
            def record(data: dict[str, Any]) -> Response:
                event = patient_service.record_consent(patient, recorded_by=user(), **data)
                audit.record(f"consent_event.{event.action}", "consent_event", event.id,
                             patient_id=str(patient.id), scope=event.scope)
                return redirect(url_for("dashboard.consents", patient_id=patient.id), code=303)
            done = form.attempt(record)
            if done is not None:
                return done
    return form.render("dashboard/clinic/consents.html", patient=patient,
                       state=patient_service.consent_state(patient)["scopes"], user=user(), **vocabularies())


@bp.route("/patients/<uuid:patient_id>/invitation", methods=["POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@transactional
def invitation(patient_id: uuid.UUID) -> Response:
    """Invite the patient and show the printable enrolment sheet (code, link, QR code).

    Not submit-once on purpose: the secrets are shown only in this answer and stored only
    hashed (as in the API); repeating makes a new invitation and the earlier one stops working.
    """
    check_csrf()
    patient = access.get_patient_or_404(user(), patient_id)
    invite, code, token = enrolment_service.create_invitation(patient, user(), expires_in_days=INVITATION_DAYS,
                                                              now=now())
    audit.record("invitation.create", "invitation", invite.id, patient_id=str(patient.id))
    link = enrolment_service.invitation_link(token)
    qr = "data:image/svg+xml;base64," + base64.b64encode(enrolment_service.invitation_qr_svg(token).encode()).decode()
    html = render_template("dashboard/clinic/enrolment_sheet.html", patient=patient, code=code, link=link, qr=qr,
                           expires_at=invite.expires_at, user=user())
    return Response(html, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------ courses


@bp.route("/patients/<uuid:patient_id>/courses/new", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def course_new(patient_id: uuid.UUID) -> Any:
    """Start a course with the default milestone schedule (``POST /api/v1/patients/{id}/courses``)."""
    patient = _patient(patient_id)
    form = Form(CourseCreateSchema(), {"baseline_date": now().date(), "status": "active"})
    if form.submitted and form.validate():
        def create(data: dict[str, Any]) -> Response:
            course = course_service.create_course(patient, data)
            audit.record("course.create", "course", course.id, patient_id=str(patient.id))
            return redirect(url_for("dashboard.patient_page", patient_id=patient.id, course=course.id), code=303)
        done = form.attempt(create)
        if done is not None:
            return done
    return form.render("dashboard/clinic/course_form.html", patient=patient, course=None, user=user(),
                       **vocabularies())


@bp.route("/courses/<uuid:course_id>/edit", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def course_edit(course_id: uuid.UUID) -> Any:
    """Change a course; the design is re-checked as a whole (``PATCH /api/v1/courses/{id}``)."""
    course = _course(course_id)
    form = Form(CourseUpdateSchema(), {name: getattr(course, name) for name in COURSE_FIELDS}, keep_blank=("notes",))
    if form.submitted and form.validate():
        def update(data: dict[str, Any]) -> Response:
            changed = course_service.update_course(course, data)
            audit.record("course.update", "course", course.id, fields=sorted(changed))
            return redirect(url_for("dashboard.patient_page", patient_id=course.patient_id, course=course.id),
                            code=303)
        done = form.attempt(update)
        if done is not None:
            return done
    return form.render("dashboard/clinic/course_form.html", patient=course.patient, course=course, user=user(),
                       **vocabularies())


def parse_device_settings(text: str) -> dict[str, Any]:
    """``name: value`` lines as the API's ``device_settings`` object (numbers where they are numbers).

    Raises
    ------
    ValidationFailed
        A line without a colon.
    """
    settings: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValidationFailed(errors={"device_settings": [
                f"Line {number}: write each setting as 'name: value', e.g. 'needle depth mm: 1.5'."]})
        value = value.strip()
        try:
            number_value = float(value)
        except ValueError:
            settings[name.strip()] = value
        else:
            settings[name.strip()] = int(number_value) if number_value.is_integer() and "." not in value \
                else number_value
    return settings


@bp.route("/courses/<uuid:course_id>/sessions/new", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def session_new(course_id: uuid.UUID) -> Any:
    """Record a treatment session with the product applied (``POST /api/v1/courses/{id}/sessions``)."""
    course = _course(course_id)
    form = Form(SessionCreateSchema(), {"performed_on": now().date()})
    if form.submitted:
        try:
            settings = parse_device_settings(request.form.get("device_settings", ""))
        except ValidationFailed as error:
            form.validate()
            form.refuse(error)
        else:
            if form.validate(extra={"device_settings": settings}):
                def create(data: dict[str, Any]) -> Response:
                    session = course_service.add_session(course, data, user())
                    audit.record("treatment_session.create", "treatment_session", session.id,
                                 course_id=str(course.id))
                    return redirect(url_for("dashboard.patient_page", patient_id=course.patient_id,
                                            course=course.id), code=303)
                done = form.attempt(create)
                if done is not None:
                    return done
    return form.render("dashboard/clinic/session_form.html", course=course, patient=course.patient, user=user())


def _milestone_choices(course: TreatmentCourse, follow_ups_only: bool) -> list[tuple[str, str]]:
    return [(str(m.id), f"{m.name.replace('_', ' ')} (day {m.day_offset}, {m.window.opens} .. {m.window.closes})")
            for m in course.milestones if not (follow_ups_only and m.day_offset == 0)]


@bp.route("/courses/<uuid:course_id>/assessments/new", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def assessment_new(course_id: uuid.UUID) -> Any:
    """The clinician's GAIS rating at a follow-up milestone (``POST /api/v1/courses/{id}/assessments``)."""
    course = _course(course_id)
    form = Form(AssessmentCreateSchema())
    if form.submitted and form.validate():
        def create(data: dict[str, Any]) -> Response:
            assessment = assessment_service.record_assessment(course, data, user(), today=now().date(), at=now())
            audit.record("assessment.create", "assessment", assessment.id, course_id=str(course.id))
            return redirect(url_for("dashboard.patient_page", patient_id=course.patient_id, course=course.id),
                            code=303)
        done = form.attempt(create)
        if done is not None:
            return done
    return form.render("dashboard/clinic/assessment_form.html", course=course, patient=course.patient, user=user(),
                       milestones=_milestone_choices(course, follow_ups_only=True), **vocabularies())


@bp.route("/courses/<uuid:course_id>/adverse-events/new", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def adverse_event_new(course_id: uuid.UUID) -> Any:
    """Report an adverse event (``POST /api/v1/courses/{id}/adverse-events``)."""
    course = _course(course_id)
    form = Form(AdverseEventCreateSchema(), {"onset_date": now().date()})
    if form.submitted and form.validate():
        def create(data: dict[str, Any]) -> Response:
            event = assessment_service.report_adverse_event(course, data, user(), today=now().date())
            audit.record("adverse_event.create", "adverse_event", event.id, course_id=str(course.id))
            return redirect(url_for("dashboard.patient_page", patient_id=course.patient_id, course=course.id),
                            code=303)
        done = form.attempt(create)
        if done is not None:
            return done
    return form.render("dashboard/clinic/adverse_event_form.html", course=course, patient=course.patient,
                       event=None, user=user(), milestones=_milestone_choices(course, follow_ups_only=False),
                       **vocabularies())


@bp.route("/adverse-events/<uuid:event_id>/edit", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def adverse_event_edit(event_id: uuid.UUID) -> Any:
    """Update severity or notes, resolve, or reopen (``PATCH /api/v1/adverse-events/{id}``)."""
    event = access.get_adverse_event_or_404(user(), event_id)
    course = _course(event.course_id)
    form = Form(AdverseEventUpdateSchema(), {"severity": event.severity, "resolution_date": event.resolution_date,
                                             "notes": event.notes}, keep_blank=("notes",))
    if form.submitted and form.validate():
        def update(data: dict[str, Any]) -> Response:
            changed = assessment_service.update_adverse_event(event, data, today=now().date())
            audit.record("adverse_event.update", "adverse_event", event.id, fields=sorted(changed))
            return redirect(url_for("dashboard.patient_page", patient_id=course.patient_id, course=course.id),
                            code=303)
        done = form.attempt(update)
        if done is not None:
            return done
    return form.render("dashboard/clinic/adverse_event_form.html", course=course, patient=course.patient,
                       event=event, user=user(), milestones=[], **vocabularies())


# ------------------------------------------------------------------ across the clinic


@bp.route("/lots")
@login_required
@transactional
def lots() -> str:
    """Every patient who received a lot, with their adverse events (recall, contamination)."""
    lot = request.args.get("lot", "").strip()[:vocab.MAX_LOT_LENGTH]
    recipients = course_service.lot_recipients(access.patients_visible_to(user()), lot) if lot else []
    for patient_id in dict.fromkeys(r.patient.id for r in recipients):
        audit.record("patient.read", "patient", patient_id, endpoint=request.endpoint)
    return render_template("dashboard/clinic/lots.html", lot=lot, recipients=recipients, user=user())


@bp.route("/worklist")
@login_required
@transactional
def worklist() -> str:
    """What is overdue or needs a retake across the clinic, oldest target first."""
    today = now().date()
    patients = db.session.scalars(select(Patient).where(access.patients_visible_to(user()))
                                  .order_by(Patient.full_name, Patient.id)).all()
    overdue, retakes = [], []
    for patient in patients:
        active = [c for c in patient.courses if c.status in ("planned", "active")]
        for item in schedule_items(active, today)["overdue"] if active else []:
            overdue.append((patient, item))
        if patient_flags(patient, today).unusable_last_photo:
            retakes.append(patient)
    overdue.sort(key=lambda pair: pair[1].target_date)
    audit.record("patient.list", "clinic", user().clinic_id, count=len(overdue) + len(retakes),
                 endpoint=request.endpoint)
    return render_template("dashboard/clinic/worklist.html", overdue=overdue, retakes=retakes, today=today,
                           user=user())




# ------------------------------------------------------------------ photos taken in the clinic


@bp.route("/patients/<uuid:patient_id>/photos/new", methods=["GET", "POST"])
@accepts("multipart/form-data", FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def photo_upload(patient_id: uuid.UUID) -> Any:
    """Upload a photo taken in the clinic: the API's pipeline (consent, gate, milestone, analysis);
    the page then shows the same gate answer the app gets."""
    patient = _patient(patient_id)
    course = newest_course(patient)
    form = Form(CaptureMetadataSchema(), {"course_id": course.id if course else "", "view": "front"})
    if form.submitted:
        upload = request.files.get("photo")
        data = upload.read() if upload is not None else b""
        valid = form.validate()
        if not data:
            form.errors.setdefault("photo", []).append("Choose the photo file to upload.")
        elif valid:
            def ingest(metadata: dict[str, Any]) -> Response:
                photo = photo_service.ingest_photo(patient, photo_service.CaptureMetadata.from_args(metadata), data,
                                                   user())
                return redirect(url_for("dashboard.photo_result", photo_id=photo.id), code=303)
            done = form.attempt(ingest)
            if done is not None:
                return done
    courses = [(str(c.id), f"{c.indication.replace('_', ' ')} from {c.baseline_date}") for c in patient.courses]
    milestones = _milestone_choices(course, follow_ups_only=False) if course else []
    return form.render("dashboard/clinic/photo_form.html", patient=patient, courses=courses, milestones=milestones,
                       views=choices(PHOTO_VIEWS), user=user())


@bp.route("/photos/<uuid:photo_id>")
@login_required
@transactional
def photo_result(photo_id: uuid.UUID) -> str:
    """The quality gate's answer for a photo (usable, or what to fix for a retake)."""
    photo = db.session.get(Photo, photo_id)
    if photo is None:
        access.not_found("photo")
    patient = access.get_patient_or_404(user(), photo.patient_id)
    milestone = db.session.get(Milestone, photo.milestone_id) if photo.milestone_id else None
    audit.record("photo.read", "photo", photo.id, endpoint=request.endpoint)
    return render_template("dashboard/clinic/photo_result.html", photo=photo, patient=patient, milestone=milestone,
                           user=user())


# ------------------------------------------------------------------ milestone schedule

SCHEDULE_FIELDS = ("name", "day_offset", "window_before_days", "window_after_days")


def schedule_text(course: TreatmentCourse) -> str:
    """The course's schedule as the form shows it: ``name, day, days before, days after`` lines."""
    return "\n".join(f"{m.name}, {m.day_offset}, {m.window_before_days}, {m.window_after_days}"
                     for m in course.milestones)


def parse_schedule(text: str) -> list[dict[str, Any]]:
    """Schedule lines as ``ScheduleReplaceSchema``'s ``milestones`` (numbers where they are whole numbers).

    Raises
    ------
    ValidationFailed
        A line without four comma-separated parts.
    """
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != len(SCHEDULE_FIELDS):
            raise ValidationFailed(errors={"milestones": [
                f"Line {number}: write 'name, day, days before, days after', e.g. '3_months, 90, 14, 14'."]})
        items.append({name: int(value) if name != "name" and value.lstrip("-").isdigit() else value
                      for name, value in zip(SCHEDULE_FIELDS, parts, strict=True)})
    return items


def _schedule_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The schema's ``milestones.<index>.<field>`` errors as line-numbered messages of the one text field."""
    grouped: dict[str, list[str]] = {}
    for key, messages in errors.items():
        if key.startswith("milestones."):
            _, index, *field = key.split(".")
            where = f"Line {int(index) + 1}" + (f", {field[0].replace('_', ' ')}" if field else "")
            grouped.setdefault("milestones", []).extend(f"{where}: {message}" for message in messages)
        else:
            grouped.setdefault(key, []).extend(messages)
    return grouped


@bp.route("/courses/<uuid:course_id>/schedule", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required
@clinicians_only
@submit_once(check_csrf)
def course_schedule(course_id: uuid.UUID) -> Any:
    """Replace the milestone schedule (``PUT /api/v1/courses/{id}/milestones``): a kept name keeps
    its completion; a completed or rated milestone cannot be removed."""
    course = _course(course_id)
    form = Form(ScheduleReplaceSchema(), {"milestones": schedule_text(course)})
    if form.submitted:
        text = request.form.get("milestones", "")
        try:
            milestones = parse_schedule(text)
        except ValidationFailed as error:
            form.refuse(error)
        else:
            if form.validate(extra={"milestones": milestones}):
                def replace(data: dict[str, Any]) -> Response:
                    course_service.set_schedule(course, data["milestones"])
                    audit.record("course.update", "course", course.id, fields=["milestones"])
                    return redirect(url_for("dashboard.patient_page", patient_id=course.patient_id,
                                            course=course.id), code=303)
                done = form.attempt(replace)
                if done is not None:
                    return done
            form.errors = _schedule_errors(form.errors)
        form.values["milestones"] = text
    return form.render("dashboard/clinic/schedule_form.html", course=course, patient=course.patient, user=user())
