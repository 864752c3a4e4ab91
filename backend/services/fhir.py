"""A patient's record as a FHIR R4 Bundle (``application/fhir+json``) for the clinic's own EMR.

The Bundle (type ``collection``) holds:

- ``Patient``: identified (name, birth date, gender, contacts, the clinic's study id);
- ``EpisodeOfCare`` per treatment course (status, period from the baseline date, indication);
- ``Media`` per analysed photo (view, face body site, capture time, size; ``partOf`` its course);
- ``Observation`` per analysed photo: a panel (category ``imaging``) whose ``component`` holds one
  value per measure and region, in UCUM units, the region as a SNOMED CT body site (extension
  :data:`REGION_EXTENSION`, with laterality for the cheeks) and the measure's comparability
  (extension :data:`COMPARABILITY_EXTENSION`); redness and delta a* also name the face region
  they are a contrast against (extension :data:`REFERENCE_REGION_EXTENSION`, a SNOMED CT body
  site); ``method`` names the imaging algorithm version,
  ``derivedFrom`` the Media;
- ``Observation`` per GAIS score and per satisfaction score (category ``survey``);
- ``AdverseEvent`` per reported adverse event.

Measure keys, labels, units (display and UCUM) and region codes are read from
:mod:`imaging.catalogue`, their one definition. The tests validate every resource against the R4
shapes of ``fhir.resources`` (its ``R4B`` models) and parse the Bundle back; the endpoint does not
validate each response again (about 100 ms per photo's panel, measured with ``bench/interop.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from backend.extensions import db, now
from backend.models.clinical import AdverseEvent, Assessment, Patient, TreatmentCourse
from backend.models.photos import Photo, PhotoAnalysis
from imaging.catalogue import MEASURE_BY_KEY, REFERENCE_MEASURES, REFERENCE_REGIONS, REGION_BY_KEY, Measure, Region

FHIR_MEDIA_TYPE = "application/fhir+json"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
#: Our own code systems and extensions (URNs: no resolvable host is implied).
MEASURE_SYSTEM = "urn:skintrack:fhir:measure"
ALGORITHM_SYSTEM = "urn:skintrack:fhir:algorithm-version"
VIEW_SYSTEM = "urn:skintrack:fhir:photo-view"
ASSESSMENT_SYSTEM = "urn:skintrack:fhir:assessment"
ADVERSE_EVENT_SYSTEM = "urn:skintrack:fhir:adverse-event-type"
INDICATION_SYSTEM = "urn:skintrack:fhir:indication"
PATIENT_ID_SYSTEM = "urn:skintrack:patient-study-id"
REGION_EXTENSION = "urn:skintrack:fhir:extension:region"
LATERALITY_EXTENSION = "urn:skintrack:fhir:extension:laterality"
COMPARABILITY_EXTENSION = "urn:skintrack:fhir:extension:comparability"
COLOUR_REFERENCE_EXTENSION = "urn:skintrack:fhir:extension:colour-reference"
REFERENCE_REGION_EXTENSION = "urn:skintrack:fhir:extension:reference-region"
RATER_EXTENSION = "urn:skintrack:fhir:extension:rater-role"
PANEL_CODE = "skin-imaging-panel"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

GENDERS = {"female": "female", "male": "male", "intersex": "other", "unknown": "unknown"}
EPISODE_STATUSES = {"planned": "planned", "active": "active", "completed": "finished", "discontinued": "cancelled"}


def _urn(object_id: uuid.UUID) -> str:
    return f"urn:uuid:{object_id}"


def _ref(object_id: uuid.UUID) -> dict[str, str]:
    return {"reference": _urn(object_id)}


def _instant(value: dt.datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code}]}]


def region_concept(region: Region) -> dict[str, Any]:
    """The region as a SNOMED CT body-site CodeableConcept (its label as text)."""
    return {"coding": [{"system": SNOMED, "code": region.snomed_code, "display": region.snomed_display}],
            "text": region.label}


def _region_extensions(region: Region) -> list[dict[str, Any]]:
    extensions = [{"url": REGION_EXTENSION, "valueCodeableConcept": region_concept(region)}]
    if region.laterality_code is not None:
        extensions.append({"url": LATERALITY_EXTENSION, "valueCodeableConcept": {"coding": [
            {"system": SNOMED, "code": region.laterality_code, "display": region.laterality_display}]}})
    return extensions


def measure_component(measure: Measure, region: Region, value: float,
                      reference_region: Region | None = None) -> dict[str, Any]:
    """One component of a photo's panel: the measure's value in one region, in UCUM units, with
    the region it is a contrast against for :data:`~imaging.catalogue.REFERENCE_MEASURES`."""
    reference = ([{"url": REFERENCE_REGION_EXTENSION, "valueCodeableConcept": region_concept(reference_region)}]
                 if reference_region is not None and measure.key in REFERENCE_MEASURES else [])
    return {
        "extension": [*_region_extensions(region),
                      {"url": COMPARABILITY_EXTENSION, "valueCode": measure.comparability.value}, *reference],
        "code": {"coding": [{"system": MEASURE_SYSTEM, "code": measure.key, "display": measure.label}],
                 "text": f"{measure.label}, {region.label.lower()}"},
        "valueQuantity": {"value": value, "unit": measure.unit, "system": UCUM, "code": measure.ucum},
    }


def _patient(patient: Patient) -> dict[str, Any]:
    telecom = [{"system": "email", "value": patient.email}] if patient.email else []
    telecom += [{"system": "phone", "value": patient.phone}] if patient.phone else []
    return {"resourceType": "Patient", "id": str(patient.id),
            "identifier": [{"system": PATIENT_ID_SYSTEM, "value": patient.study_id}],
            "name": [{"text": patient.full_name}], "gender": GENDERS.get(patient.sex, "unknown"),
            "birthDate": patient.date_of_birth.isoformat(), **({"telecom": telecom} if telecom else {})}


def _episode(course: TreatmentCourse, patient: Patient) -> dict[str, Any]:
    return {"resourceType": "EpisodeOfCare", "id": str(course.id),
            "status": EPISODE_STATUSES.get(course.status, "active"),
            "type": [{"coding": [{"system": INDICATION_SYSTEM, "code": course.indication}],
                      "text": course.indication.replace("_", " ")}],
            "patient": _ref(patient.id), "period": {"start": course.baseline_date.isoformat()}}


def _media(photo: Photo, patient: Patient) -> dict[str, Any]:
    return {"resourceType": "Media", "id": str(photo.id), "status": "completed",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/media-type", "code": "image"}]},
            "view": {"coding": [{"system": VIEW_SYSTEM, "code": photo.view}], "text": f"{photo.view} view"},
            "subject": _ref(patient.id), "partOf": [_ref(photo.course_id)],
            "createdDateTime": _instant(photo.captured_at),
            "bodySite": region_concept(REGION_BY_KEY["all_skin"]),
            "width": photo.width, "height": photo.height,
            "content": {"contentType": photo.content_type, "size": photo.size_bytes,
                        "title": f"{photo.view} photo of {photo.capture_date.isoformat()}"}}


def _panel(photo: Photo, analysis: PhotoAnalysis, patient: Patient) -> dict[str, Any]:
    components = []
    reference = analysis.summary.get("redness_reference")
    reference_region = REGION_BY_KEY[reference] if reference in REFERENCE_REGIONS else None
    for row in sorted(analysis.measurements, key=lambda m: (m.measure, m.region)):
        measure, region = MEASURE_BY_KEY.get(row.measure), REGION_BY_KEY.get(row.region)
        # Catalogue measures with a UCUM unit only (GLCM features have none); missing values are left out.
        if measure is None or region is None or measure.ucum is None or row.value is None:
            continue
        components.append(measure_component(measure, region, row.value, reference_region))
    colour_reference = str(analysis.summary.get("color_reference", "none"))
    return {"resourceType": "Observation", "id": str(analysis.id), "status": "final",
            "extension": [{"url": COLOUR_REFERENCE_EXTENSION, "valueCode": colour_reference}],
            "category": _category("imaging"),
            "code": {"coding": [{"system": MEASURE_SYSTEM, "code": PANEL_CODE, "display": "Skin imaging panel"}],
                     "text": "Skin imaging measures per face region"},
            "subject": _ref(patient.id), "effectiveDateTime": _instant(photo.captured_at),
            "bodySite": region_concept(REGION_BY_KEY["all_skin"]),
            "method": {"coding": [{"system": ALGORITHM_SYSTEM, "code": analysis.algorithm_version}],
                       "text": f"skintrack imaging algorithm {analysis.algorithm_version}"},
            "derivedFrom": [_ref(photo.id)], "component": components}


def _assessment_observations(assessment: Assessment, patient: Patient, on: dt.datetime) -> list[dict[str, Any]]:
    rater = [{"url": RATER_EXTENSION, "valueCode": assessment.rater_role}]
    scores = [("gais", "Global Aesthetic Improvement Scale (1 very much improved .. 5 worse)", assessment.gais)]
    if assessment.satisfaction is not None:
        scores.append(("satisfaction", "Patient satisfaction (0..10)", assessment.satisfaction))
    return [{"resourceType": "Observation", "id": str(uuid.uuid5(assessment.id, code)), "status": "final",
             "extension": rater, "category": _category("survey"),
             "code": {"coding": [{"system": ASSESSMENT_SYSTEM, "code": code}], "text": text},
             "subject": _ref(patient.id), "effectiveDateTime": _instant(on), "valueInteger": value}
            for code, text, value in scores]


def _adverse_event(event: AdverseEvent, patient: Patient) -> dict[str, Any]:
    outcome = "resolved" if event.resolution_date is not None else "ongoing"
    return {"resourceType": "AdverseEvent", "id": str(event.id), "actuality": "actual",
            "event": {"coding": [{"system": ADVERSE_EVENT_SYSTEM, "code": event.event_type}],
                      "text": event.event_type.replace("_", " ")},
            "subject": _ref(patient.id), "date": event.onset_date.isoformat(),
            "severity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
                                     "code": event.severity}]},
            "outcome": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                                    "code": outcome}]}}


def analysed_photos(patient: Patient) -> Iterable[tuple[Photo, PhotoAnalysis]]:
    """The patient's photos (not deleted, not retaken) with their newest analysis that found a face."""
    photos = db.session.scalars(select(Photo).where(
        Photo.patient_id == patient.id, Photo.deleted_at.is_(None), Photo.superseded_by_id.is_(None))
        .order_by(Photo.captured_at, Photo.id))
    for photo in photos:
        analyses = [a for a in photo.analyses if a.face_found]
        if analyses:
            yield photo, max(analyses, key=lambda a: (a.created_at, str(a.id)))


def patient_bundle(patient: Patient) -> dict[str, Any]:
    """The patient's FHIR R4 Bundle as a JSON-ready dict."""
    resources = [_patient(patient)]
    courses = sorted(patient.courses, key=lambda c: (c.baseline_date, str(c.id)))
    resources += [_episode(course, patient) for course in courses]
    for photo, analysis in analysed_photos(patient):
        resources += [_media(photo, patient), _panel(photo, analysis, patient)]
    for course in courses:
        assessments = db.session.scalars(select(Assessment).where(Assessment.course_id == course.id))
        for assessment in sorted(assessments, key=lambda a: (a.milestone.day_offset, a.rater_role)):
            resources += _assessment_observations(assessment, patient, assessment.created_at)
        events = db.session.scalars(select(AdverseEvent).where(AdverseEvent.course_id == course.id))
        resources += [_adverse_event(e, patient) for e in sorted(events, key=lambda e: (e.onset_date, str(e.id)))]
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": _instant(now()),
              "entry": [{"fullUrl": _urn(uuid.UUID(r["id"])), "resource": r} for r in resources]}
    return bundle
