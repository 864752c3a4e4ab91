"""Who is in a study: inclusion, persistent participant codes and date offsets, quasi-identifiers.

Patients of the study's participating clinics whose latest ``research`` consent event is a grant
at the time of the export, with a course matching the study (indication if set, baseline date
within the study dates). One course per participant: the earliest matching baseline (ties:
earliest created). A withdrawal removes the patient from every later export and statistic,
because inclusion is evaluated anew each time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models.clinical import Patient, TreatmentCourse
from backend.models.studies import Study, StudyParticipant
from backend.services import deidentify
from backend.services.patients import current_consent


@dataclass
class Participant:
    """One included patient with the course the study uses and their secrets."""

    patient: Patient
    course: TreatmentCourse
    code: str
    date_shift_days: int
    clinic_code: str


def study_clinic_codes(study: Study) -> dict[uuid.UUID, str]:
    """Pseudonymous clinic codes ``C01``.. in the order clinics joined the study."""
    return {link.clinic_id: f"C{index:02d}" for index, link in enumerate(study.clinics, start=1)}


def covered_courses(study: Study) -> list[TreatmentCourse]:
    """Each covered patient's first matching course (consent not yet checked)."""
    clinic_ids = [link.clinic_id for link in study.clinics]
    if not clinic_ids:
        return []
    statement = (select(TreatmentCourse).join(Patient, TreatmentCourse.patient_id == Patient.id)
                 .where(Patient.clinic_id.in_(clinic_ids))
                 .order_by(TreatmentCourse.baseline_date, TreatmentCourse.created_at, TreatmentCourse.id))
    if study.indication is not None:
        statement = statement.where(TreatmentCourse.indication == study.indication)
    if study.starts_on is not None:
        statement = statement.where(TreatmentCourse.baseline_date >= study.starts_on)
    if study.ends_on is not None:
        statement = statement.where(TreatmentCourse.baseline_date <= study.ends_on)
    first: dict[uuid.UUID, TreatmentCourse] = {}
    for course in db.session.scalars(statement):
        first.setdefault(course.patient_id, course)
    return list(first.values())


def participant_secrets(study: Study, patient_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StudyParticipant]:
    """The persistent code and date offset of each patient in the study, created when missing.

    A concurrent creator for the same patient wins on the unique constraint; its row is used.
    """
    rows = {row.patient_id: row for row in db.session.scalars(
        select(StudyParticipant).where(StudyParticipant.study_id == study.id))}
    for patient_id in patient_ids:
        if patient_id in rows:
            continue
        taken = {row.code for row in rows.values()}
        code = deidentify.new_participant_code()
        while code in taken:
            code = deidentify.new_participant_code()
        row = StudyParticipant(study_id=study.id, patient_id=patient_id, code=code,
                               date_shift_days=deidentify.new_date_shift_days())
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:
            row = db.session.execute(select(StudyParticipant).where(
                StudyParticipant.study_id == study.id, StudyParticipant.patient_id == patient_id)).scalar_one()
        rows[patient_id] = row
    return rows


def included_participants(study: Study) -> list[Participant]:
    """Patients in the study now: covered course and current research consent."""
    courses = [c for c in covered_courses(study) if current_consent(c.patient, "research")]
    secrets = participant_secrets(study, [c.patient_id for c in courses])
    clinic_codes = study_clinic_codes(study)
    return [Participant(course.patient, course, secrets[course.patient_id].code,
                        secrets[course.patient_id].date_shift_days, clinic_codes[course.patient.clinic_id])
            for course in courses]


def quasi_identifiers(participant: Participant) -> deidentify.QuasiIdentifiers:
    """The raw quasi-identifiers of a participant (age at the course baseline)."""
    patient, course = participant.patient, participant.course
    return deidentify.QuasiIdentifiers(
        age=deidentify.age_in_years(patient.date_of_birth, course.baseline_date), sex=patient.sex,
        fitzpatrick_type=patient.fitzpatrick_type, clinic_code=participant.clinic_code,
        indication=course.indication, exosome_source=course.exosome_source, delivery=course.delivery,
        split_face=course.split_face_treated_side is not None,
    )
