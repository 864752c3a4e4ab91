"""The export package: nothing identifying leaks, consent decides inclusion, k is met, checksums match."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections import Counter

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Uuid, select

from backend.extensions import db
from backend.models import Base
from backend.models.clinical import AdverseEvent, Assessment, Milestone, Patient, TreatmentCourse
from backend.models.photos import Photo, PhotoAnalysis
from backend.services import deidentify
from tests import factories
from tests.backend.export_helpers import (
    build_study_world,
    codes_of,
    export_zip,
    read_csv,
    set_consent,
)

EXPORT_FILES = {"participants.csv", "visits.csv", "measurements.csv", "assessments.csv", "adverse_events.csv",
                "repeatability.csv", "summary.csv", "codebook.csv", "manifest.json"}


def identifying_strings(app: Flask) -> set[str]:
    """Every name, email, phone, clinic pseudonym, free text, exact date and UUID in the database."""
    found: set[str] = set()
    with app.app_context():
        for patient in db.session.scalars(select(Patient)):
            found |= {patient.full_name, patient.email, patient.phone, patient.study_id,
                      patient.date_of_birth.isoformat()}
        for course in db.session.scalars(select(TreatmentCourse)):
            found |= {course.notes, course.baseline_date.isoformat(), course.product_name}
            for milestone in course.milestones:
                window = milestone.window
                found |= {window.target.isoformat(), window.opens.isoformat(), window.closes.isoformat()}
        for photo in db.session.scalars(select(Photo)):
            found |= {photo.capture_date.isoformat(), photo.captured_at.isoformat()}
        for row in db.session.scalars(select(Assessment)):
            found.add(row.notes)
        for event in db.session.scalars(select(AdverseEvent)):
            found |= {event.notes, event.onset_date.isoformat(), event.resolution_date.isoformat()}
        for user in db.session.scalars(select(factories.User)):
            found.add(user.email)
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, Uuid)]
            for column in columns:
                for value in db.session.execute(select(column)).scalars():
                    if value is not None:
                        found |= {str(value), value.hex}
    return {s for s in found if s}


def test_package_is_deidentified_consented_k_anonymous_and_checksummed(app: Flask, client: FlaskClient) -> None:
    w = build_study_world(app, client)
    first = export_zip(client, w)
    first_codes = {row["participant_id"] for row in read_csv(first, "participants.csv")}
    for patient_id in w.withdrawn:
        set_consent(app, w.patients[patient_id], "withdraw", w.clinician_a)
    archive = export_zip(client, w, k=5, parquet=True)

    names = set(archive.namelist())
    assert EXPORT_FILES <= names
    manifest = json.loads(archive.read("manifest.json"))
    # Checksums: every file but the manifest is listed and matches.
    assert set(manifest["files"]) == names - {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = archive.read(name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]

    # Nothing identifying in any file.
    secrets = identifying_strings(app)
    assert len(secrets) > 100
    for name in names:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq
            text = str(pq.read_table(io.BytesIO(archive.read(name))).to_pylist())
        else:
            text = archive.read(name).decode("utf-8")
        leaked = [s for s in secrets if s in text]
        assert leaked == [], f"{name} leaks {leaked[:5]}"

    # Inclusion: consenting patients of participating clinics only; withdrawal applies to later exports.
    participants = read_csv(archive, "participants.csv")
    codes = {row["participant_id"] for row in participants}
    consenting = codes_of(app, w.consenting)
    withdrawn = codes_of(app, w.withdrawn)
    assert codes_of(app, w.never + w.outside) == {}
    assert {withdrawn[p].code for p in w.withdrawn} <= first_codes
    assert codes.isdisjoint(row.code for row in withdrawn.values())
    assert codes <= {row.code for row in consenting.values()}
    for name in ("visits.csv", "measurements.csv", "assessments.csv", "adverse_events.csv"):
        assert {row["participant_id"] for row in read_csv(archive, name)} <= codes

    # k-anonymity: every class of the quasi-identifiers has at least k members; the report says so.
    classes = Counter(tuple(row[q] for q in deidentify.QUASI_IDENTIFIERS) for row in participants)
    assert min(classes.values()) >= 5
    report = manifest["k_anonymity"]
    assert report["k"] == 5 and report["min_class_size"] >= 5
    assert report["participants_released"] == len(participants)
    assert report["participants_suppressed"] == len(consenting) - len(participants) > 0
    for row in participants:
        assert row["age_band"] == "90+" or int(row["age_band"].split("-")[1]) <= 89

    # Dates: shifted by one secret offset per participant, so intervals are exact.
    by_code = {row.code: (patient_id, row) for patient_id, row in consenting.items()}
    low, high = deidentify.DATE_SHIFT_RANGE_DAYS
    events = read_csv(archive, "adverse_events.csv")
    assert events
    with app.app_context():
        day_zero = {photo.patient_id: photo.capture_date for photo in db.session.scalars(
            select(Photo).join(Milestone, Photo.milestone_id == Milestone.id).where(Milestone.name == "baseline"))}
    assert len(set(day_zero.values())) == 2
    for row in participants:
        patient_id, secret = by_code[row["participant_id"]]
        shift = (dt.date.fromisoformat(row["baseline_date_shifted"]) - day_zero[patient_id]).days
        assert shift == secret.date_shift_days and low <= shift <= high
    for event in events:
        patient_id, secret = by_code[event["participant_id"]]
        baseline_shifted = next(dt.date.fromisoformat(r["baseline_date_shifted"]) for r in participants
                                if r["participant_id"] == event["participant_id"])
        assert (dt.date.fromisoformat(event["onset_date_shifted"]) - baseline_shifted).days == int(event["onset_day"])

    # Each measured visit says which region its redness is a contrast against, the same at every
    # visit of a participant (a follow-up keeps its baseline's); visits without a measurement say nothing.
    references: dict[str, set[str]] = {}
    for visit in read_csv(archive, "visits.csv"):
        if visit["measured"] == "true":
            references.setdefault(visit["participant_id"], set()).add(visit["redness_reference"])
        else:
            assert visit["redness_reference"] == "", visit
    assert all(len(regions) == 1 for regions in references.values()), references
    assert set().union(*references.values()) == {"forehead", "chin"}
    # ... and it is the one stored with that participant's own analyses.
    with app.app_context():
        stored = {}
        for patient_id, summary in db.session.execute(
                select(Photo.patient_id, PhotoAnalysis.summary).join(PhotoAnalysis, PhotoAnalysis.photo_id == Photo.id)):
            stored.setdefault(patient_id, set()).add(summary["redness_reference"])
    assert {code: stored[by_code[code][0]] for code in references} == references

    # Persistent codes: the same participant keeps the code across exports.
    assert codes <= first_codes
    # Row counts in the manifest match; the codebook describes every column of every table.
    for name, count in manifest["row_counts"].items():
        assert len(read_csv(archive, name)) == count
    codebook = read_csv(archive, "codebook.csv")
    described = {(row["file"], row["variable"]) for row in codebook}
    for name in EXPORT_FILES - {"manifest.json", "codebook.csv"}:
        header = archive.read(name).decode().splitlines()[0].split(",")
        assert {(name, column) for column in header} <= described
    assert all(row["type"] and row["source"] for row in codebook)
    assert manifest["parameters"]["parquet"] is True and "parquet/measurements.parquet" in names
