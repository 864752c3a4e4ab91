"""Patients and consents: ``/api/v1/patients``, ``/api/v1/me/patient``."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, json, url_for
from sqlalchemy import select

from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import (
    CLINICIANS,
    RATERS,
    READERS,
    audit_change,
    audit_reads,
    clinical_blueprint,
)
from backend.http.idempotency import idempotent
from backend.http.pagination import paginate
from backend.models.clinical import ConsentEvent, Patient
from backend.services import access, fhir
from backend.services import patients as patient_service
from backend.unit_of_work import transactional
from schemas.clinical import (
    ConsentEventCreateSchema,
    ConsentEventSchema,
    ConsentStateSchema,
    PatientCreateSchema,
    PatientListArgsSchema,
    PatientSchema,
    PatientUpdateSchema,
)
from schemas.common import CursorArgsSchema, page_schema

blp = clinical_blueprint("patients", "Patient records and their consents.")


@blp.route("/patients", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(PatientListArgsSchema, location="query")
@blp.response(200, page_schema(PatientSchema))
def list_patients(page_args: dict[str, Any]) -> dict[str, Any]:
    """List the patients visible to the caller (a patient: only themselves), oldest first."""
    statement = select(Patient).where(access.patients_visible_to(current_user()))
    if page_args.get("study_id") is not None:
        statement = statement.where(Patient.study_id == page_args["study_id"])
    items, next_cursor = paginate(statement, (Patient.created_at, Patient.id), page_args)
    audit_reads("patient", (patient.id for patient in items))
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/patients", methods=["POST"])
@auth_required(*CLINICIANS)
@idempotent
@blp.arguments(PatientCreateSchema)
@blp.response(201, PatientSchema)
def create_patient(data: dict[str, Any]) -> tuple[Patient, int, dict[str, str]]:
    """Create a patient in the clinician's clinic (with a new random study id)."""
    patient = patient_service.create_patient(current_user().clinic_id, data)
    audit_change("create", "patient", patient.id)
    return patient, 201, {"Location": url_for("patients.get_patient", patient_id=patient.id)}


@blp.route("/patients/<uuid:patient_id>", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, PatientSchema)
def get_patient(patient_id: uuid.UUID) -> Patient:
    """Read one patient record."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    audit_reads("patient", [patient.id])
    return patient


@blp.route("/patients/<uuid:patient_id>/fhir", methods=["GET"])
@auth_required(*CLINICIANS)
@transactional
@blp.response(200, description="FHIR R4 Bundle (collection): Patient, EpisodeOfCare per course, Media and a "
              "panel Observation per analysed photo, GAIS and satisfaction Observations, AdverseEvents.",
              content_type=fhir.FHIR_MEDIA_TYPE)
@blp.alt_response(404, response="NOT_FOUND")
def patient_fhir(patient_id: uuid.UUID) -> Response:
    """The patient's record as a FHIR R4 Bundle for the clinic's EMR (clinicians of the patient's clinic)."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    bundle = fhir.patient_bundle(patient)
    audit_reads("patient", [patient.id])
    audit_reads("photo", [entry["resource"]["id"] for entry in bundle["entry"]
                          if entry["resource"]["resourceType"] == "Media"])
    return Response(json.dumps(bundle), mimetype=fhir.FHIR_MEDIA_TYPE, headers={"Cache-Control": "private, no-store"})


@blp.route("/patients/<uuid:patient_id>", methods=["PATCH"])
@auth_required(*CLINICIANS)
@transactional
@blp.arguments(PatientUpdateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, PatientSchema)
def update_patient(changes: dict[str, Any], patient_id: uuid.UUID) -> Patient:
    """Change a patient's demographics or contact details (only the fields given)."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    changed = patient_service.update_patient(patient, changes)
    audit_change("update", "patient", patient.id, fields=sorted(changed))
    return patient


@blp.route("/me/patient", methods=["GET"])
@auth_required("patient")
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, PatientSchema)
def get_own_patient() -> Patient:
    """The signed-in patient's own record."""
    patient = access.own_patient_or_403(current_user())
    audit_reads("patient", [patient.id])
    return patient


@blp.route("/patients/<uuid:patient_id>/consents", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, ConsentStateSchema)
def get_consents(patient_id: uuid.UUID) -> dict[str, Any]:
    """Current state of every consent scope (derived from the latest event of each)."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    audit_reads("patient", [patient.id])
    return patient_service.consent_state(patient)


@blp.route("/patients/<uuid:patient_id>/consents/history", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(CursorArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, page_schema(ConsentEventSchema))
def list_consent_events(page_args: dict[str, Any], patient_id: uuid.UUID) -> dict[str, Any]:
    """Every consent event of the patient, oldest first."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    statement = select(ConsentEvent).where(ConsentEvent.patient_id == patient.id)
    items, next_cursor = paginate(statement, (ConsentEvent.created_at, ConsentEvent.id), page_args)
    audit_reads("patient", [patient.id])
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/patients/<uuid:patient_id>/consents", methods=["POST"])
@auth_required(*RATERS)
@idempotent
@blp.arguments(ConsentEventCreateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.response(201, ConsentEventSchema)
def record_consent(data: dict[str, Any], patient_id: uuid.UUID) -> ConsentEvent:
    """Grant or withdraw one consent scope (by the patient, or a clinician on their behalf).

    Withdrawing a scope that is not granted, or granting the version already granted,
    answers 409.
    """
    user = current_user()
    patient = access.get_patient_or_404(user, patient_id)
    event = patient_service.record_consent(patient, recorded_by=user, **data)
    audit_change(event.action, "consent_event", event.id, patient_id=str(patient.id), scope=event.scope)
    return event
