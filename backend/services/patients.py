"""Patients, their pseudonymous study ids, and consent events."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from backend.errors import Conflict
from backend.extensions import db
from backend.models.accounts import User
from backend.models.clinical import ConsentEvent, Patient
from backend.services import apply_changes, insert_or_conflict
from schemas.clinical import CONSENT_SCOPES

#: Crockford base32 (no I, L, O, U): unambiguous when read aloud or typed.
CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
STUDY_ID_PREFIX = "ST-"
STUDY_ID_LENGTH = 10  # 50 random bits


def random_crockford(length: int) -> str:
    """Random Crockford base32 text from the OS CSPRNG.

    Parameters
    ----------
    length : int
        Number of characters (5 bits of entropy each).
    """
    return "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(length))


def new_study_id() -> str:
    """A new pseudonymous study id, ``ST-`` + 10 Crockford base32 characters.

    Random, so it reveals nothing about the patient, the clinic or enrolment order; unique
    among stored patients (checked here, enforced by a unique constraint).
    """
    while True:
        candidate = STUDY_ID_PREFIX + random_crockford(STUDY_ID_LENGTH)
        taken = db.session.execute(
            select(Patient.id).where(Patient.study_id == candidate)
        ).first()
        if taken is None:
            return candidate


def create_patient(clinic_id: Any, fields: dict[str, Any]) -> Patient:
    """Add a new patient of a clinic to the session.

    Parameters
    ----------
    clinic_id : uuid.UUID
        The creating clinician's clinic.
    fields : dict
        Validated ``PatientCreateSchema`` data.
    """
    patient = Patient(clinic_id=clinic_id, study_id=new_study_id(), **fields)
    db.session.add(patient)
    db.session.flush()
    return patient


def update_patient(patient: Patient, changes: dict[str, Any]) -> list[str]:
    """Apply validated ``PatientUpdateSchema`` data.

    Returns
    -------
    list of str
        Names of the fields whose value changed (for the audit log; never the values).
    """
    return apply_changes(patient, changes)


def _latest_events(patient: Patient) -> dict[str, ConsentEvent]:
    """The latest consent event per scope (scopes never recorded are absent)."""
    latest: dict[str, ConsentEvent] = {}
    events = db.session.execute(
        select(ConsentEvent).where(ConsentEvent.patient_id == patient.id).order_by(ConsentEvent.seq)
    ).scalars()
    for event in events:
        latest[event.scope] = event
    return latest


def _latest_event(patient: Patient, scope: str) -> ConsentEvent | None:
    """The latest consent event of one scope, or None if never recorded."""
    return db.session.execute(
        select(ConsentEvent)
        .where(ConsentEvent.patient_id == patient.id, ConsentEvent.scope == scope)
        .order_by(ConsentEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()


def current_consent(patient: Patient, scope: str) -> bool:
    """Whether the patient's consent for ``scope`` is granted now.

    Parameters
    ----------
    patient : Patient
    scope : str
        One of ``schemas.clinical.CONSENT_SCOPES``.

    Returns
    -------
    bool
        True only if the latest event of that scope is a grant; never granted is False.
    """
    if scope not in CONSENT_SCOPES:
        raise ValueError(f"unknown consent scope {scope!r}")
    event = _latest_event(patient, scope)
    return event is not None and event.action == "grant"


def consent_state(patient: Patient) -> dict[str, Any]:
    """Every scope's current state, in ``ConsentStateSchema`` form."""
    latest = _latest_events(patient)
    scopes = []
    for scope in CONSENT_SCOPES:
        event = latest.get(scope)
        scopes.append(
            {
                "scope": scope,
                "granted": event is not None and event.action == "grant",
                "version": event.version if event else None,
                "since": event.created_at if event else None,
            }
        )
    return {"patient_id": patient.id, "scopes": scopes}


def record_consent(
    patient: Patient, *, scope: str, action: str, version: str, recorded_by: User
) -> ConsentEvent:
    """Append a grant or withdrawal event for one scope.

    Raises
    ------
    Conflict
        Withdrawing a scope that is not granted, or granting again the same version that
        is already granted (a new version may be granted over an older one).
    """
    latest = _latest_event(patient, scope)
    granted = latest is not None and latest.action == "grant"
    if action == "withdraw" and not granted:
        raise Conflict(errors={"action": [f"consent {scope!r} is not granted, so it cannot be withdrawn"]},
                       slug="consent-not-granted")
    if action == "grant" and granted and latest.version == version:
        raise Conflict(errors={"version": [f"consent {scope!r} version {version!r} is already granted"]},
                       slug="consent-already-granted")
    next_seq = latest.seq + 1 if latest is not None else 1
    event = ConsentEvent(
        patient_id=patient.id,
        scope=scope,
        action=action,
        version=version,
        seq=next_seq,
        recorded_by_user_id=recorded_by.id,
    )
    insert_or_conflict(event, Conflict(errors={"scope": [f"consent {scope!r} changed concurrently; reload and retry"]},
                                       slug="consent-conflict"))
    if scope == "clinical_photo" and action == "withdraw":
        from backend.services.photos import purge_patient_photos  # photos build on clinical, not back

        purge_patient_photos(patient.id)
    return event
