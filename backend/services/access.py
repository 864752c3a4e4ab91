"""Who may see which clinical records.

Rules: a patient sees only their own record; a clinician and an admin see their clinic's
patients (admins read, clinicians also write - write roles are enforced per view with
``auth_required``); a researcher sees no identified data at all. An object outside the
caller's reach answers 404, exactly like an object that does not exist, so ids of other
patients and clinics cannot be probed.

Every lookup goes through :func:`patients_visible_to`, so one filter decides visibility for
patients and everything hanging off them.
"""

from __future__ import annotations

import uuid
from typing import NoReturn, TypeVar

from sqlalchemy import ColumnElement, Select, false, select

from backend.errors import Forbidden, NotFound
from backend.extensions import db
from backend.models.accounts import User
from backend.models.clinical import AdverseEvent, Milestone, Patient, TreatmentCourse

Row = TypeVar("Row")

#: Roles that read a whole clinic's records.
CLINIC_STAFF_ROLES = ("clinician", "admin")


def patients_visible_to(user: User) -> ColumnElement[bool]:
    """SQL condition on :class:`Patient` rows the user may see.

    Parameters
    ----------
    user : User
        The signed-in caller.

    Returns
    -------
    sqlalchemy.ColumnElement
        ``Patient.user_id == user.id`` for patients, ``Patient.clinic_id == user.clinic_id``
        for clinicians and admins, ``false()`` for anyone else (researchers).
    """
    if user.role == "patient":
        return Patient.user_id == user.id
    if user.role in CLINIC_STAFF_ROLES:
        return Patient.clinic_id == user.clinic_id
    return false()


def _parse_id(raw_id: str | uuid.UUID, object_type: str) -> uuid.UUID:
    if isinstance(raw_id, uuid.UUID):
        return raw_id
    try:
        return uuid.UUID(raw_id)
    except (ValueError, AttributeError, TypeError):
        # A malformed id cannot exist: same answer as a missing one.
        not_found(object_type)


def not_found(object_type: str) -> NoReturn:
    """Raise the :class:`NotFound` used for missing *and* invisible objects."""
    raise NotFound(object_type)


def _one_visible(user: User, statement: Select[tuple[Row]], object_type: str) -> Row:
    row = db.session.execute(statement.where(patients_visible_to(user))).scalar_one_or_none()
    if row is None:
        not_found(object_type)
    return row


def get_patient_or_404(user: User, patient_id: str | uuid.UUID) -> Patient:
    """The patient with this id if the user may see it, else :class:`NotFound`."""
    key = _parse_id(patient_id, "patient")
    return _one_visible(user, select(Patient).where(Patient.id == key), "patient")


def get_course_or_404(user: User, course_id: str | uuid.UUID) -> TreatmentCourse:
    """The treatment course with this id if the user may see its patient, else :class:`NotFound`."""
    key = _parse_id(course_id, "course")
    statement = select(TreatmentCourse).join(Patient).where(TreatmentCourse.id == key)
    return _one_visible(user, statement, "course")


def get_milestone_or_404(user: User, milestone_id: str | uuid.UUID) -> Milestone:
    """The milestone with this id if the user may see its patient, else :class:`NotFound`."""
    key = _parse_id(milestone_id, "milestone")
    statement = (
        select(Milestone)
        .join(TreatmentCourse, Milestone.course_id == TreatmentCourse.id)
        .join(Patient, TreatmentCourse.patient_id == Patient.id)
        .where(Milestone.id == key)
    )
    return _one_visible(user, statement, "milestone")


def get_adverse_event_or_404(user: User, event_id: str | uuid.UUID) -> AdverseEvent:
    """The adverse event with this id if the user may see its patient, else :class:`NotFound`."""
    key = _parse_id(event_id, "adverse event")
    statement = (
        select(AdverseEvent)
        .join(TreatmentCourse, AdverseEvent.course_id == TreatmentCourse.id)
        .join(Patient, TreatmentCourse.patient_id == Patient.id)
        .where(AdverseEvent.id == key)
    )
    return _one_visible(user, statement, "adverse event")


def own_patient_or_403(user: User) -> Patient:
    """The patient record linked to a patient user's login.

    Raises :class:`Forbidden` for other roles, and :class:`NotFound` for a patient login without
    a record (cannot happen through enrolment, but accounts can be made by admins).
    """
    if user.role != "patient":
        raise Forbidden("Only patients have their own record.")
    patient = db.session.execute(select(Patient).where(Patient.user_id == user.id)).scalar_one_or_none()
    if patient is None:
        not_found("patient")
    return patient
