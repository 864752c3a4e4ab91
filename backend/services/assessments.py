"""Assessments (GAIS, satisfaction) at milestones, and adverse events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select

from backend.errors import Conflict, ValidationFailed
from backend.extensions import db
from backend.models.accounts import User
from backend.models.clinical import AdverseEvent, Assessment, Milestone, TreatmentCourse
from backend.services import apply_changes, insert_or_conflict, webhooks
from backend.services.milestones import LOCAL_DATE_SLACK, ensure_window_open, mark_milestone_completed


def rater_role_of(user: User) -> str:
    """The rater role a user rates in: patients rate themselves, clinicians rate patients."""
    if user.role not in ("patient", "clinician"):
        raise ValueError(f"role {user.role!r} does not rate")
    return user.role


def milestone_of_course(course: TreatmentCourse, milestone_id: uuid.UUID, field: str) -> Milestone:
    """The milestone with this id if it belongs to ``course``.

    Raises
    ------
    ValidationFailed
        Keyed by ``field``: the id is not a milestone of this course.
    """
    milestone = db.session.execute(
        select(Milestone).where(Milestone.id == milestone_id, Milestone.course_id == course.id)
    ).scalar_one_or_none()
    if milestone is None:
        raise ValidationFailed(errors={field: ["Not a milestone of this course."]})
    return milestone


def record_assessment(
    course: TreatmentCourse, fields: dict[str, Any], rater: User, *, today: dt.date, at: dt.datetime
) -> Assessment:
    """Record a rating at a milestone and mark the milestone completed.

    Parameters
    ----------
    course : TreatmentCourse
    fields : dict
        Validated ``AssessmentCreateSchema`` data.
    rater : User
        A patient (rating themselves) or a clinician.
    today : datetime.date
        Today in UTC; ratings are accepted from the day the milestone's window opens
        (with :data:`LOCAL_DATE_SLACK`).
    at : datetime.datetime
        UTC-aware time recorded as the milestone's completion.

    Raises
    ------
    ValidationFailed
        Unknown milestone, the baseline (day 0) milestone, satisfaction from a clinician,
        window not open yet.
    Conflict
        This rater role already rated this milestone.
    """
    role = rater_role_of(rater)
    milestone = milestone_of_course(course, fields["milestone_id"], "milestone_id")
    if role != "patient" and fields.get("satisfaction") is not None:
        raise ValidationFailed(errors={"satisfaction": ["Only patients rate their satisfaction."]})
    if milestone.day_offset == 0:
        raise ValidationFailed(
            errors={"milestone_id": ["GAIS rates change since baseline: rate a follow-up milestone, not day 0."]},
            slug="baseline-not-rated")
    ensure_window_open(milestone, today, "milestone_id")
    exists = {"milestone_id": [f"This milestone already has a {role} assessment."]}
    already = db.session.execute(
        select(Assessment.id).where(Assessment.milestone_id == milestone.id, Assessment.rater_role == role)
    ).first()
    if already is not None:
        raise Conflict(errors=exists, slug="assessment-exists")
    assessment = Assessment(
        course_id=course.id,
        milestone_id=milestone.id,
        rater_role=role,
        rater_user_id=rater.id,
        gais=fields["gais"],
        satisfaction=fields.get("satisfaction"),
        notes=fields.get("notes", ""),
    )
    insert_or_conflict(assessment, Conflict(errors=exists, slug="assessment-exists"))
    mark_milestone_completed(milestone, via="assessment", at=at, source_id=assessment.id)
    return assessment


def _check_dates(onset: dt.date, resolution: dt.date | None, today: dt.date) -> None:
    errors: dict[str, list[str]] = {}
    latest = today + LOCAL_DATE_SLACK
    if onset > latest:
        errors["onset_date"] = ["Must not be in the future."]
    if resolution is not None and resolution > latest:
        errors["resolution_date"] = ["Must not be in the future."]
    if resolution is not None and resolution < onset:
        errors.setdefault("resolution_date", []).append("Must not be before onset_date.")
    if errors:
        raise ValidationFailed(errors=errors)


def report_adverse_event(
    course: TreatmentCourse, fields: dict[str, Any], reporter: User, *, today: dt.date
) -> AdverseEvent:
    """Record an adverse event of a course from validated ``AdverseEventCreateSchema`` data.

    Raises
    ------
    ValidationFailed
        Dates in the future or resolution before onset; a milestone of another course.
    """
    _check_dates(fields["onset_date"], fields.get("resolution_date"), today)
    milestone_id = fields.get("milestone_id")
    if milestone_id is not None:
        milestone_of_course(course, milestone_id, "milestone_id")
    event = AdverseEvent(
        course_id=course.id,
        reporter_role=rater_role_of(reporter),
        reported_by_user_id=reporter.id,
        **fields,
    )
    db.session.add(event)
    db.session.flush()
    webhooks.emit("adverse_event.reported", course.patient.clinic_id,
                  {"adverse_event_id": event.id, "patient_id": course.patient_id, "course_id": course.id})
    return event


def update_adverse_event(event: AdverseEvent, changes: dict[str, Any], *, today: dt.date) -> list[str]:
    """Apply validated ``AdverseEventUpdateSchema`` data.

    Returns
    -------
    list of str
        Names of fields whose value changed.
    """
    _check_dates(event.onset_date, changes.get("resolution_date", event.resolution_date), today)
    changed = apply_changes(event, changes)
    return changed
