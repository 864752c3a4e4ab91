"""Treatment courses, sessions, milestone schedules and the phone app's schedule."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from sqlalchemy import select

from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import CLINICIANS, READERS, audit_change, audit_reads, clinical_blueprint, today
from backend.extensions import now
from backend.http.idempotency import idempotent
from backend.http.pagination import paginate
from backend.models.clinical import Milestone, TreatmentCourse, TreatmentSession
from backend.services import access
from backend.services import courses as course_service
from backend.services import milestones as milestone_service
from backend.unit_of_work import transactional
from schemas.clinical import (
    CourseCreateSchema,
    CourseSchema,
    CourseUpdateSchema,
    MilestoneSchema,
    ScheduleArgsSchema,
    ScheduleReplaceSchema,
    ScheduleSchema,
    SessionCreateSchema,
    SessionSchema,
)
from schemas.common import CursorArgsSchema, page_schema

blp = clinical_blueprint("courses", "Treatment courses, sessions, milestones and schedules.")

#: Courses whose milestones the phone app should remind about.
SCHEDULED_COURSE_STATUSES = ("planned", "active")


@blp.route("/patients/<uuid:patient_id>/courses", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(CursorArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, page_schema(CourseSchema))
def list_courses(page_args: dict[str, Any], patient_id: uuid.UUID) -> dict[str, Any]:
    """The patient's treatment courses, oldest first."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    statement = select(TreatmentCourse).where(TreatmentCourse.patient_id == patient.id)
    items, next_cursor = paginate(statement, (TreatmentCourse.created_at, TreatmentCourse.id), page_args)
    audit_reads("patient", [patient.id])
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/patients/<uuid:patient_id>/courses", methods=["POST"])
@auth_required(*CLINICIANS)
@idempotent
@blp.arguments(CourseCreateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(201, CourseSchema)
def create_course(data: dict[str, Any], patient_id: uuid.UUID) -> tuple[TreatmentCourse, int, dict[str, str]]:
    """Start a treatment course. Without `milestones` the default schedule is used:
    baseline (day 0, -0/+3), 2_weeks (14, +/-3), 1_month (30, +/-5), 3_months (90, +/-14),
    6_months (180, +/-14)."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    course = course_service.create_course(patient, data)
    audit_change("create", "course", course.id, patient_id=str(patient.id))
    return course, 201, {"Location": url_for("courses.get_course", course_id=course.id)}


@blp.route("/courses/<uuid:course_id>", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, CourseSchema)
def get_course(course_id: uuid.UUID) -> TreatmentCourse:
    """One treatment course with its milestones."""
    course = access.get_course_or_404(current_user(), course_id)
    audit_reads("course", [course.id])
    return course


@blp.route("/courses/<uuid:course_id>", methods=["PATCH"])
@auth_required(*CLINICIANS)
@transactional
@blp.arguments(CourseUpdateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, CourseSchema)
def update_course(changes: dict[str, Any], course_id: uuid.UUID) -> TreatmentCourse:
    """Change a course (only the fields given); the design is re-checked as a whole."""
    course = access.get_course_or_404(current_user(), course_id)
    changed = course_service.update_course(course, changes)
    audit_change("update", "course", course.id, fields=sorted(changed))
    return course


@blp.route("/courses/<uuid:course_id>/milestones", methods=["PUT"])
@auth_required(*CLINICIANS)
@transactional
@blp.arguments(ScheduleReplaceSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.response(200, CourseSchema)
def replace_milestones(data: dict[str, Any], course_id: uuid.UUID) -> TreatmentCourse:
    """Replace the course's schedule. Milestones are matched by name: a kept name keeps its
    id and completion; removing a completed or assessed milestone answers 409."""
    course = access.get_course_or_404(current_user(), course_id)
    course_service.set_schedule(course, data["milestones"])
    audit_change("update", "course", course.id, fields=["milestones"])
    return course


@blp.route("/milestones/<uuid:milestone_id>/visit", methods=["POST"])
@auth_required(*CLINICIANS)
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, MilestoneSchema)
def record_milestone_visit(milestone_id: uuid.UUID) -> Milestone:
    """Record that the milestone's visit took place (from the day its window opens). Marks
    it completed unless something (an assessment, a photo) already did; repeating is harmless."""
    milestone = access.get_milestone_or_404(current_user(), milestone_id)
    if milestone_service.record_visit(milestone, today=today(), at=now()):
        audit_change("complete", "milestone", milestone.id, via="visit")
    return milestone


@blp.route("/courses/<uuid:course_id>/sessions", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(CursorArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, page_schema(SessionSchema))
def list_sessions(page_args: dict[str, Any], course_id: uuid.UUID) -> dict[str, Any]:
    """The course's treatment sessions, in the order recorded."""
    course = access.get_course_or_404(current_user(), course_id)
    statement = select(TreatmentSession).where(TreatmentSession.course_id == course.id)
    items, next_cursor = paginate(statement, (TreatmentSession.created_at, TreatmentSession.id), page_args)
    audit_reads("course", [course.id])
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/courses/<uuid:course_id>/sessions", methods=["POST"])
@auth_required(*CLINICIANS)
@idempotent
@blp.arguments(SessionCreateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(201, SessionSchema)
def create_session(data: dict[str, Any], course_id: uuid.UUID) -> TreatmentSession:
    """Record a treatment session (date, device settings, notes)."""
    user = current_user()
    course = access.get_course_or_404(user, course_id)
    session = course_service.add_session(course, data, user)
    audit_change("create", "treatment_session", session.id, course_id=str(course.id))
    return session


def _schedule(courses: list[TreatmentCourse], args: dict[str, Any]) -> dict[str, Any]:
    as_of = today(args.get("on"))
    return {"as_of": as_of, **milestone_service.schedule_items(courses, as_of)}


@blp.route("/courses/<uuid:course_id>/schedule", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(ScheduleArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, ScheduleSchema)
def course_schedule(args: dict[str, Any], course_id: uuid.UUID) -> dict[str, Any]:
    """What is due, overdue, upcoming and completed in this course on a day."""
    course = access.get_course_or_404(current_user(), course_id)
    audit_reads("course", [course.id])
    return _schedule([course], args)


@blp.route("/me/schedule", methods=["GET"])
@auth_required("patient")
@transactional
@blp.arguments(ScheduleArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, ScheduleSchema)
def own_schedule(args: dict[str, Any]) -> dict[str, Any]:
    """For the phone app's reminders: the signed-in patient's milestones over all planned
    and active courses. Pass `on` (the phone's local date) so days match the patient's."""
    patient = access.own_patient_or_403(current_user())
    courses = [course for course in patient.courses if course.status in SCHEDULED_COURSE_STATUSES]
    audit_reads("patient", [patient.id])
    return _schedule(courses, args)
