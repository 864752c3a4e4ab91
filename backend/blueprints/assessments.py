"""Assessments at milestones and adverse events of a course."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import RATERS, READERS, audit_change, audit_reads, clinical_blueprint, today
from backend.extensions import now
from backend.http.idempotency import idempotent
from backend.http.pagination import paginate
from backend.models.clinical import AdverseEvent, Assessment
from backend.services import access
from backend.services import assessments as assessment_service
from backend.unit_of_work import transactional
from schemas.clinical import (
    AdverseEventCreateSchema,
    AdverseEventSchema,
    AdverseEventUpdateSchema,
    AssessmentCreateSchema,
    AssessmentSchema,
)
from schemas.common import CursorArgsSchema, page_schema

blp = clinical_blueprint("assessments", "GAIS and satisfaction ratings at milestones; adverse events.")


@blp.route("/courses/<uuid:course_id>/assessments", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(CursorArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, page_schema(AssessmentSchema))
def list_assessments(page_args: dict[str, Any], course_id: uuid.UUID) -> dict[str, Any]:
    """The course's assessments (patient and clinician ratings), in the order recorded."""
    course = access.get_course_or_404(current_user(), course_id)
    statement = select(Assessment).where(Assessment.course_id == course.id)
    items, next_cursor = paginate(statement, (Assessment.created_at, Assessment.id), page_args)
    audit_reads("course", [course.id])
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/courses/<uuid:course_id>/assessments", methods=["POST"])
@auth_required(*RATERS)
@idempotent
@blp.arguments(AssessmentCreateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.response(201, AssessmentSchema)
def create_assessment(data: dict[str, Any], course_id: uuid.UUID) -> Assessment:
    """Rate a milestone: a patient rates themselves (GAIS and satisfaction), a clinician
    rates the patient (GAIS). One rating per rater role and milestone (409 for a second);
    accepted from the day the milestone's window opens. Completes the milestone."""
    user = current_user()
    course = access.get_course_or_404(user, course_id)
    assessment = assessment_service.record_assessment(course, data, user, today=today(), at=now())
    audit_change("create", "assessment", assessment.id, course_id=str(course.id))
    return assessment


@blp.route("/courses/<uuid:course_id>/adverse-events", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(CursorArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, page_schema(AdverseEventSchema))
def list_adverse_events(page_args: dict[str, Any], course_id: uuid.UUID) -> dict[str, Any]:
    """The course's adverse events, in the order reported."""
    course = access.get_course_or_404(current_user(), course_id)
    statement = select(AdverseEvent).where(AdverseEvent.course_id == course.id)
    items, next_cursor = paginate(statement, (AdverseEvent.created_at, AdverseEvent.id), page_args)
    audit_reads("course", [course.id])
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/courses/<uuid:course_id>/adverse-events", methods=["POST"])
@auth_required(*RATERS)
@idempotent
@blp.arguments(AdverseEventCreateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(201, AdverseEventSchema)
def create_adverse_event(data: dict[str, Any], course_id: uuid.UUID) -> AdverseEvent:
    """Report an adverse event (by the patient or a clinician). No resolution date: ongoing."""
    user = current_user()
    course = access.get_course_or_404(user, course_id)
    event = assessment_service.report_adverse_event(course, data, user, today=today())
    audit_change("create", "adverse_event", event.id, course_id=str(course.id))
    return event


@blp.route("/adverse-events/<uuid:event_id>", methods=["PATCH"])
@auth_required(*RATERS)
@transactional
@blp.arguments(AdverseEventUpdateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, AdverseEventSchema)
def update_adverse_event(changes: dict[str, Any], event_id: uuid.UUID) -> AdverseEvent:
    """Update severity or notes, record the resolution date, or reopen (null resolution)."""
    event = access.get_adverse_event_or_404(current_user(), event_id)
    changed = assessment_service.update_adverse_event(event, changes, today=today())
    audit_change("update", "adverse_event", event.id, fields=sorted(changed))
    return event
