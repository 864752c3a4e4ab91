"""Helpers of the export tests: a study world with consents, results and ratings; the zip and its CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
import zipfile
from types import SimpleNamespace
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models.clinical import Assessment, Patient, TreatmentCourse
from backend.models.studies import StudyParticipant
from backend.services.patients import record_consent
from tests import factories
from tests.backend.clinical_helpers import BASELINE
from tests.backend.progress_helpers import add_result, milestone_id


def add_clinical_record(app: Flask, course: TreatmentCourse, clinician: Any, index: int,
                        redness: tuple[float, float], split_side: str | None = None) -> None:
    """Baseline and 1-month results, a clinician GAIS with a note, an adverse event with a note."""
    values0 = {("all_skin", "redness"): redness[0], ("left_cheek", "redness"): redness[0] + 1.0,
               ("right_cheek", "redness"): redness[0] - 1.0}
    values1 = {("all_skin", "redness"): redness[1], ("left_cheek", "redness"): redness[1] + 1.0 - 0.5 * index,
               ("right_cheek", "redness"): redness[1] - 1.0}
    # Every other baseline photo is taken a day after the planned baseline: day zero is the photo's date.
    # Every third participant's forehead was hidden at baseline: redness against the chin throughout.
    reference = "chin" if index % 3 == 2 else "forehead"
    add_result(app, course, "baseline", BASELINE + dt.timedelta(days=index % 2), values0, redness_reference=reference)
    add_result(app, course, "1_month", BASELINE + dt.timedelta(days=29 + index % 3), values1,
               redness_reference=reference)
    with app.app_context():
        db.session.get(TreatmentCourse, course.id).notes = f"Confidential course note number {index}"
        db.session.add(Assessment(course_id=course.id, milestone_id=milestone_id(course, "1_month"),
                                  rater_role="clinician", rater_user_id=clinician.id, gais=1 + index % 3,
                                  notes=f"Private assessment remark {index}"))
        db.session.commit()
    factories.make_adverse_event(app, course, clinician, onset_date=BASELINE + dt.timedelta(days=2 + index),
                                 resolution_date=BASELINE + dt.timedelta(days=9 + index),
                                 notes=f"Adverse narrative text {index}")


def set_consent(app: Flask, patient: Patient, action: str, by: Any, scope: str = "research") -> None:
    with app.app_context():
        record_consent(db.session.get(Patient, patient.id), scope=scope, action=action, version="2026-01",
                       recorded_by=db.session.get(factories.User, by.id))
        db.session.commit()


def build_study_world(app: Flask, client: FlaskClient) -> SimpleNamespace:
    """Three clinics (two in the study), consenting, withdrawn and non-consenting patients.

    Clinic A: 7 consenting (one aged 92), 2 withdrawn later, 1 without research consent (but
    clinical photo consent). Clinic B: 6 consenting (one male), 1 without any consent.
    Clinic C (not in the study): 2 consenting.
    """
    w = SimpleNamespace(patients={}, courses={}, consenting=[], withdrawn=[], never=[], outside=[])
    w.clinic_a, w.clinic_b, w.clinic_c = (factories.make_clinic(app, f"Clinic {x}") for x in "ABC")
    w.admin_a = factories.make_user(app, "admin", w.clinic_a)
    w.admin_b = factories.make_user(app, "admin", w.clinic_b)
    w.clinician_a = factories.make_user(app, "clinician", w.clinic_a)
    w.clinician_b = factories.make_user(app, "clinician", w.clinic_b)
    w.researcher = factories.make_user(app, "researcher", w.clinic_a)
    w.other_researcher = factories.make_user(app, "researcher", w.clinic_b)
    plan = ([("A", "consent", 1980 + i, 3 + i % 2, "female") for i in range(6)]
            + [("A", "consent", 1933, 3, "female")]
            + [("A", "withdraw", 1981, 3, "female"), ("A", "withdraw", 1982, 4, "female"),
               ("A", "never", 1983, 3, "female")]
            + [("B", "consent", 1981 + i, 3 + i % 2, "female") for i in range(5)]
            + [("B", "consent", 1984, 3, "male"), ("B", "never", 1985, 3, "female")]
            + [("C", "consent", 1980, 3, "female"), ("C", "consent", 1981, 4, "female")])
    for index, (clinic_name, consent, birth_year, fitz, sex) in enumerate(plan):
        clinic = getattr(w, f"clinic_{clinic_name.lower()}")
        clinician = w.clinician_b if clinic_name == "B" else w.clinician_a
        patient = factories.make_patient(
            app, clinic, full_name=f"Quintessa Vandergraaf{index}", email=f"quintessa{index}@mailbox.example",
            phone=f"+44 20 7946 {1000 + index}", date_of_birth=dt.date(birth_year, 1 + index % 12, 3 + index),
            fitzpatrick_type=fitz, sex=sex)
        course = factories.make_course(app, patient, notes=f"Confidential course note number {index}")
        add_clinical_record(app, course, clinician, index, (20.0 + index, 17.0 + index - 0.3 * index))
        w.patients[patient.id], w.courses[patient.id] = patient, course
        if consent in ("consent", "withdraw"):
            set_consent(app, patient, "grant", clinician)
        if consent == "never" and clinic_name == "A":
            set_consent(app, patient, "grant", clinician, scope="clinical_photo")
        group = {"consent": w.consenting, "withdraw": w.withdrawn, "never": w.never}[consent]
        (w.outside if clinic_name == "C" else group).append(patient.id)
    w.headers = {name: factories.auth_headers(app, getattr(w, name))
                 for name in ("admin_a", "admin_b", "clinician_a", "researcher", "other_researcher")}
    response = client.post("/api/v1/studies", headers=w.headers["admin_a"],
                           json={"title": "Exosomes after microneedling", "indication": "photoaging",
                                 "starts_on": "2026-01-01", "ends_on": "2026-12-31"})
    assert response.status_code == 201, response.get_json()
    w.study_id = response.get_json()["id"]
    response = client.put(f"/api/v1/studies/{w.study_id}/clinics/{w.clinic_b.id}", headers=w.headers["admin_b"])
    assert response.status_code == 200, response.get_json()
    response = client.post(f"/api/v1/studies/{w.study_id}/grants", headers=w.headers["admin_a"],
                           json={"researcher_id": str(w.researcher.id)})
    assert response.status_code == 201, response.get_json()
    return w


def set_privacy_floor(client: FlaskClient, study_id: str, admin_headers: dict[str, str], min_k: int,
                      max_suppression: float = 0.1) -> None:
    """The study's admin sets its privacy floor (tests that compare with k = 1 lower it to 1)."""
    response = client.put(f"/api/v1/studies/{study_id}/privacy-floor", headers=admin_headers,
                          json={"min_k": min_k, "max_suppression": max_suppression})
    assert response.status_code == 200, response.get_json()


def export_zip(client: FlaskClient, w: SimpleNamespace, **options: Any) -> zipfile.ZipFile:
    """Request an export (built by the job after commit) and download it."""
    response = client.post(f"/api/v1/studies/{w.study_id}/exports", headers=w.headers["researcher"], json=options)
    assert response.status_code == 202, response.get_json()
    status = client.get(response.headers["Location"], headers=w.headers["researcher"])
    body = status.get_json()
    assert body["status"] == "ready", body
    download = client.get(body["download_url"], headers=w.headers["researcher"])
    assert download.status_code == 200 and download.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(download.data))


def read_csv(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


def codes_of(app: Flask, patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, StudyParticipant]:
    with app.app_context():
        rows = db.session.scalars(select(StudyParticipant).where(StudyParticipant.patient_id.in_(patient_ids)))
        return {row.patient_id: factories._detach(row) for row in rows}
