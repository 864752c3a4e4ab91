"""Treatment courses and their sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select

from backend.errors import ValidationFailed
from backend.extensions import db
from backend.models.accounts import User
from backend.models.clinical import AdverseEvent, Patient, TreatmentCourse, TreatmentSession
from backend.services import apply_changes
from backend.services.milestones import MilestoneSpec, default_specs, replace_schedule
from schemas.clinical import FACE_REGIONS
from schemas.photos import PHOTO_VIEWS


def course_design_errors(
    *,
    treated_regions: Sequence[str],
    split_face_treated_side: str | None,
    concentration_value: float | None,
    concentration_unit: str | None,
) -> dict[str, list[str]]:
    """Check the parts of a course design that depend on each other.

    Parameters
    ----------
    treated_regions : sequence of str
        Region names (already checked against the vocabulary).
    split_face_treated_side : {"left", "right"} or None
    concentration_value : float or None
        Positive, in ``concentration_unit``.
    concentration_unit : str or None

    Returns
    -------
    dict
        ``{field: [messages]}``; empty when consistent. Rules: a value and a unit come
        together; in a split-face design the control side's cheek is not treated.
    """
    errors: dict[str, list[str]] = {}
    if (concentration_value is None) != (concentration_unit is None):
        errors["concentration_unit"] = ["Give concentration_value and concentration_unit together."]
    if split_face_treated_side is not None:
        control_side = "right" if split_face_treated_side == "left" else "left"
        if f"{control_side}_cheek" in treated_regions:
            errors["treated_regions"] = [
                f"{control_side}_cheek is the untreated control side of this split-face design."
            ]
    return errors


def _check_design(course: TreatmentCourse) -> None:
    errors = course_design_errors(
        treated_regions=course.treated_regions,
        split_face_treated_side=course.split_face_treated_side,
        concentration_value=course.concentration_value,
        concentration_unit=course.concentration_unit,
    )
    if errors:
        raise ValidationFailed(errors=errors, slug="invalid-course-design")


def _canonical_regions(regions: Sequence[str]) -> list[str]:
    # Stored in vocabulary order so equal sets compare equal and exports are stable.
    return [region for region in FACE_REGIONS if region in regions]


def create_course(patient: Patient, fields: dict[str, Any]) -> TreatmentCourse:
    """Add a course with its milestone schedule (the default one unless given).

    Parameters
    ----------
    patient : Patient
    fields : dict
        Validated ``CourseCreateSchema`` data; ``milestones`` is a list of dicts of
        ``MilestoneSpec`` fields or absent.

    Raises
    ------
    ValidationFailed, Conflict
        Inconsistent design or invalid schedule.
    """
    fields = dict(fields)
    milestone_data = fields.pop("milestones", None)
    specs = [MilestoneSpec(**item) for item in milestone_data] if milestone_data else default_specs()
    fields["treated_regions"] = _canonical_regions(fields["treated_regions"])
    course = TreatmentCourse(patient=patient, **fields)
    _check_design(course)
    replace_schedule(course, specs)
    db.session.add(course)
    db.session.flush()
    return course


def update_course(course: TreatmentCourse, changes: dict[str, Any]) -> list[str]:
    """Apply validated ``CourseUpdateSchema`` data and re-check the design as a whole.

    Returns
    -------
    list of str
        Names of fields whose value changed.
    """
    changes = dict(changes)
    if "treated_regions" in changes:
        changes["treated_regions"] = _canonical_regions(changes["treated_regions"])
    changed = apply_changes(course, changes)
    _check_design(course)
    return changed


def lock_course(course_id) -> None:
    """Hold a course's row until the transaction ends, then read everything afresh.

    Serialises the two sides of "which baseline do this course's follow-ups register to": what
    changes it and then looks for analyses to redo (a baseline's analysis stored, a photo deleted,
    a new schedule), and an analysis job that checks its baseline still counts before storing.
    Without it, a trigger could look for stale analyses just before a job that checked the old
    baseline commits, and that analysis would stay stale. Each such transaction takes it before it
    reads what it decides on; the session's objects are expired after it, so nothing read before
    the lock (a milestone's day, whether a photo is deleted) is decided on.

    PostgreSQL ``SELECT ... FOR NO KEY UPDATE``: callers exclude each other, while inserts of rows
    that reference the course (uploads, sessions, assessments) do not wait. SQLite has no row locks
    and needs none: it runs one writing transaction at a time.
    """
    db.session.flush()
    db.session.execute(select(TreatmentCourse.id).where(TreatmentCourse.id == course_id)
                       .with_for_update(key_share=True))
    db.session.expire_all()


def set_schedule(course: TreatmentCourse, milestones: list[dict[str, Any]]) -> None:
    """Replace a course's schedule from validated ``MilestoneSpecSchema`` dicts.

    Another first milestone makes another baseline: follow-ups registered to the old one are re-analysed.
    """
    from backend.services.photos import enqueue_stale_reanalysis  # photos build on courses, not back

    lock_course(course.id)
    replace_schedule(course, [MilestoneSpec(**item) for item in milestones])
    db.session.flush()
    for view in PHOTO_VIEWS:
        enqueue_stale_reanalysis(course, view)


def add_session(course: TreatmentCourse, fields: dict[str, Any], performed_by: User) -> TreatmentSession:
    """Record a treatment session of a course from validated ``SessionCreateSchema`` data."""
    session = TreatmentSession(course=course, performed_by_user_id=performed_by.id, **fields)
    db.session.add(session)
    db.session.flush()
    return session


@dataclass(frozen=True)
class LotRecipient:
    """A session in which a lot was applied, with its patient and the course's adverse events."""

    session: TreatmentSession
    course: TreatmentCourse
    patient: Patient
    adverse_events: list[AdverseEvent]


def lot_recipients(visible: ColumnElement[bool], lot: str) -> list[LotRecipient]:
    """Every session that applied ``lot`` (case-insensitive, exact) to a patient matching ``visible``.

    Parameters
    ----------
    visible : sqlalchemy.ColumnElement
        Condition on :class:`Patient` (``access.patients_visible_to(user)``).
    lot : str
        The lot number as printed on the vial.
    """
    rows = db.session.execute(
        select(TreatmentSession, TreatmentCourse, Patient)
        .join(TreatmentCourse, TreatmentSession.course_id == TreatmentCourse.id)
        .join(Patient, TreatmentCourse.patient_id == Patient.id)
        .where(visible, func.lower(TreatmentSession.product_lot) == lot.strip().lower())
        .order_by(TreatmentSession.performed_on, Patient.full_name, TreatmentSession.id)
    ).all()
    course_ids = {course.id for _, course, _ in rows}
    events: dict[Any, list[AdverseEvent]] = {}
    if course_ids:
        for event in db.session.scalars(select(AdverseEvent).where(AdverseEvent.course_id.in_(course_ids))
                                        .order_by(AdverseEvent.onset_date)):
            events.setdefault(event.course_id, []).append(event)
    return [LotRecipient(session, course, patient, events.get(course.id, [])) for session, course, patient in rows]
