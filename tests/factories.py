"""Test data factories. Each runs in its own app context and commits, like a
request would, and returns detached but fully loaded objects.

Account factories (platform); clinical appends patient/course factories below.
"""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask

from backend.auth.passwords import hash_password
from backend.auth.tokens import issue_token_pair
from backend.extensions import db
from backend.models.accounts import Clinic, User, normalise_email

#: Password of every factory-made user unless one is given.
DEFAULT_PASSWORD = "correct horse battery staple"

_sequence = itertools.count(1)


def _detach(obj: Any) -> Any:
    db.session.refresh(obj)
    db.session.expunge(obj)
    return obj


def make_clinic(app: Flask, name: str | None = None, *, is_demo: bool = False) -> Clinic:
    """Create and commit a clinic."""
    with app.app_context():
        clinic = Clinic(name=name or f"Clinic {next(_sequence)}", is_demo=is_demo)
        db.session.add(clinic)
        db.session.commit()
        return _detach(clinic)


def make_user(
    app: Flask,
    role: str,
    clinic: Clinic | None = None,
    *,
    email: str | None = None,
    password: str | None = DEFAULT_PASSWORD,
    is_active: bool = True,
    display_name: str = "",
) -> User:
    """Create and commit a user of ``role`` in ``clinic`` (a new clinic if None).

    ``password=None`` creates an account without a password.
    """
    if clinic is None:
        clinic = make_clinic(app)
    with app.app_context():
        user = User(
            email=normalise_email(email or f"{role}{next(_sequence)}@example.org"),
            role=role,
            clinic_id=clinic.id,
            display_name=display_name or role.title(),
            password_hash=hash_password(password) if password is not None else None,
            is_active=is_active,
        )
        db.session.add(user)
        db.session.commit()
        return _detach(user)


def issue_tokens(app: Flask, user: User) -> dict[str, Any]:
    """Issue a real token pair for ``user`` (as a login would) and commit it."""
    with app.app_context():
        pair = issue_token_pair(db.session.get(User, user.id))
        db.session.commit()
        return pair


def auth_headers(app: Flask, user: User) -> dict[str, str]:
    """``Authorization`` header with a freshly issued access token for ``user``."""
    return {"Authorization": f"Bearer {issue_tokens(app, user)['access_token']}"}


# --- Clinical factories (clinical engineer) ----------------------------------------------

import datetime as _dt  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from backend.models.clinical import AdverseEvent, Patient, TreatmentCourse  # noqa: E402
from backend.services.assessments import report_adverse_event  # noqa: E402
from backend.services.courses import create_course  # noqa: E402
from backend.services.patients import create_patient  # noqa: E402

#: A valid patient record; tests override what they look at.
PATIENT_FIELDS: dict[str, Any] = {
    "full_name": "Test Patient",
    "date_of_birth": _dt.date(1985, 6, 15),
    "sex": "female",
    "fitzpatrick_type": 3,
    "email": "patient.contact@example.org",
    "phone": "+44 20 7946 0000",
}

#: A valid course design; tests override what they look at.
COURSE_FIELDS: dict[str, Any] = {
    "indication": "photoaging",
    "product_name": "Exo Serum",
    "exosome_source": "msc_umbilical_cord",
    "concentration_value": 5e9,
    "concentration_unit": "particles_per_ml",
    "delivery": "topical_after_microneedling",
    "treated_regions": ["forehead", "left_cheek", "right_cheek"],
    "baseline_date": _dt.date(2026, 3, 1),
}


def make_patient(app: Flask, clinic: Clinic, *, user: User | None = None, **fields: Any) -> Patient:
    """Create and commit a patient of ``clinic`` (through the real service), linked to
    ``user`` (a patient login) if given."""
    with app.app_context():
        patient = create_patient(clinic.id, {**PATIENT_FIELDS, **fields})
        if user is not None:
            patient.user_id = user.id
        db.session.commit()
        return _detach(patient)


def make_patient_with_login(app: Flask, clinic: Clinic, **fields: Any) -> tuple[Patient, User]:
    """A patient of ``clinic`` with their own patient login."""
    user = make_user(app, "patient", clinic)
    return make_patient(app, clinic, user=user, **fields), user


def make_course(app: Flask, patient: Patient, **fields: Any) -> TreatmentCourse:
    """Create and commit a treatment course (default schedule unless ``milestones`` given).

    The returned course has its milestones loaded (``course.milestones[i].id``, ``.name``).
    """
    with app.app_context():
        course = create_course(db.session.get(Patient, patient.id), {**COURSE_FIELDS, **fields})
        db.session.commit()
        db.session.refresh(course)
        for milestone in course.milestones:
            db.session.refresh(milestone)
        db.session.expunge_all()
        return course


def make_adverse_event(app: Flask, course: TreatmentCourse, reporter: User, **fields: Any) -> AdverseEvent:
    """Create and commit an adverse event of ``course`` reported by ``reporter``."""
    with app.app_context():
        event = report_adverse_event(
            db.session.get(TreatmentCourse, course.id),
            {"event_type": "erythema", "severity": "mild", "onset_date": course.baseline_date, **fields},
            db.session.get(User, reporter.id),
            today=course.baseline_date + _dt.timedelta(days=400),
        )
        db.session.commit()
        return _detach(db.session.get(AdverseEvent, event.id))


def make_clinical_world(app: Flask) -> Any:
    """Two clinics with staff, patients, courses and an adverse event, for access tests.

    Attributes of the returned namespace: ``clinic_a``, ``clinic_b``; users
    ``patient_user`` (login of ``patient``), ``other_patient_user`` (login of
    ``other_patient``, same clinic), ``clinician_a``, ``clinician_b``, ``admin_a``,
    ``admin_b``, ``researcher`` (clinic A); patients ``patient`` and ``other_patient``
    (clinic A, enrolled), ``new_patient`` (clinic A, not enrolled), ``patient_b`` (clinic B);
    courses ``course`` (of ``patient``), ``course_b`` (of ``patient_b``); ``adverse_event``
    (of ``course``).
    """
    world = SimpleNamespace()
    world.clinic_a = make_clinic(app, "Clinic A")
    world.clinic_b = make_clinic(app, "Clinic B")
    world.clinician_a = make_user(app, "clinician", world.clinic_a)
    world.clinician_b = make_user(app, "clinician", world.clinic_b)
    world.admin_a = make_user(app, "admin", world.clinic_a)
    world.admin_b = make_user(app, "admin", world.clinic_b)
    world.researcher = make_user(app, "researcher", world.clinic_a)
    world.patient, world.patient_user = make_patient_with_login(app, world.clinic_a, full_name="Pat Own")
    world.other_patient, world.other_patient_user = make_patient_with_login(
        app, world.clinic_a, full_name="Pat Other"
    )
    world.new_patient = make_patient(app, world.clinic_a, full_name="Pat New")
    world.patient_b = make_patient(app, world.clinic_b, full_name="Pat Bee")
    world.course = make_course(app, world.patient)
    world.course_b = make_course(app, world.patient_b)
    world.adverse_event = make_adverse_event(app, world.course, world.clinician_a)
    return world
