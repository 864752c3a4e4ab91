"""Demo clinic records so every workspace page has content on first run.

Treatment sessions with the product applied (one lot shared by two patients, so lot tracing
shows both), clinician and patient GAIS ratings with satisfaction, an adverse event, a second
patient with a split-face course, and a study with the demo researcher granted. Everything goes
through the services the API and the pages call, so the demo obeys the same rules. All fictional.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from backend.models.accounts import Clinic, User
from backend.models.clinical import Milestone, Patient, TreatmentCourse

#: The lot number on the demo vials (two patients received it).
DEMO_LOT = "DEMO-LOT-0042"
DEMO_PRODUCT = {"product_manufacturer": "Demo Biolabs (fictional)", "product_lot": DEMO_LOT,
                "product_volume_ml": 2.0, "product_particles_per_vial": 1.0e10}
#: Days the split-face course of the second demo patient has been running.
SPLIT_FACE_DAYS_AGO = 40
#: (milestone, clinician GAIS, patient GAIS, patient satisfaction 0..10) of the demo course.
DEMO_RATINGS = (("1_month", 3, 3, 6), ("3_months", 2, 2, 8), ("6_months", 2, 1, 9))


def _milestone(course: TreatmentCourse, name: str) -> Milestone:
    return next(m for m in course.milestones if m.name == name)


def _session(course: TreatmentCourse, day: int, clinician: User, **extra: Any) -> None:
    from backend.services.courses import add_session
    from schemas.clinical import SessionCreateSchema

    performed = course.baseline_date + dt.timedelta(days=day)
    fields = SessionCreateSchema().load({
        "performed_on": performed.isoformat(),
        "device_settings": {"device": "Dermapen 4", "needle_depth_mm": 0.5 if day else 1.0, "passes": 3},
        "product_expiry": (performed + dt.timedelta(days=300)).isoformat(),
        **DEMO_PRODUCT, **extra,
    })
    add_session(course, fields, clinician)


def add_demo_records(clinic: Clinic, course: TreatmentCourse, clinician: User, patient_user: User,
                     admin: User, researcher: User, today: dt.date) -> None:
    """Add the demo records around the demo patient's ``course`` (baseline long enough ago that
    every milestone up to 6 months has passed). The caller commits."""
    from backend.services.assessments import record_assessment, report_adverse_event
    from backend.services.courses import create_course
    from backend.services.patients import create_patient, record_consent
    from backend.services.studies import create_study, grant_researcher
    from schemas.clinical import AdverseEventCreateSchema, CourseCreateSchema, PatientCreateSchema

    at = dt.datetime.combine(today, dt.time(12), tzinfo=dt.timezone.utc)
    for day in (0, 14, 30):
        _session(course, day, clinician, notes="Demo session (fictional).")
    for name, clinician_gais, patient_gais, satisfaction in DEMO_RATINGS:
        milestone_id = _milestone(course, name).id
        record_assessment(course, {"milestone_id": milestone_id, "gais": clinician_gais, "notes": "Demo rating."},
                          clinician, today=today, at=at)
        record_assessment(course, {"milestone_id": milestone_id, "gais": patient_gais, "satisfaction": satisfaction},
                          patient_user, today=today, at=at)
    report_adverse_event(course, AdverseEventCreateSchema().load({
        "event_type": "erythema", "severity": "mild",
        "onset_date": (course.baseline_date + dt.timedelta(days=1)).isoformat(),
        "resolution_date": (course.baseline_date + dt.timedelta(days=4)).isoformat(),
        "notes": "Redness after microneedling, settled in three days (fictional)."}), clinician, today=today)

    second: Patient = create_patient(clinic.id, PatientCreateSchema().load({
        "full_name": "Second Demo Patient (fictional)", "date_of_birth": "1978-02-03", "sex": "male",
        "fitzpatrick_type": 4}))
    for scope in ("clinical_photo", "research"):
        record_consent(second, scope=scope, action="grant", version="demo-1", recorded_by=clinician)
    split = create_course(second, CourseCreateSchema().load({
        "indication": "redness_rosacea", "product_name": "Demo exosome serum (fictional)",
        "exosome_source": "msc_umbilical_cord", "delivery": "topical_after_microneedling",
        "treated_regions": ["forehead", "left_cheek"], "split_face_treated_side": "left",
        "baseline_date": (today - dt.timedelta(days=SPLIT_FACE_DAYS_AGO)).isoformat(),
        "notes": "Split-face: left side treated, right side is the untreated control."}))
    _session(split, 0, clinician, notes="Left side only (split-face).")

    study = create_study(admin, {"title": "Demo study: exosome serum outcomes (fictional)",
                                 "description": "De-identified outcomes of the demo clinic's courses.",
                                 "indication": None, "starts_on": None, "ends_on": None})
    grant_researcher(study, researcher.id, admin)
