"""FHIR R4 export of a patient: every resource validates (fhir.resources R4B models = R4 shapes),
units are UCUM from the catalogue, body sites are SNOMED CT, and a round trip finds every value."""

from __future__ import annotations

import datetime as dt

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models.audit import AuditEvent
from backend.models.clinical import Assessment
from imaging.catalogue import MEASURE_BY_KEY
from imaging.version import ALGORITHM_VERSION
from tests import factories
from tests.backend.clinical_helpers import BASELINE
from tests.backend.progress_helpers import add_result, milestone_id

#: SNOMED CT body sites, written out here (not read from the code under test).
EXPECTED_BODY_SITES = {
    "forehead": ("52795006", None), "left_cheek": ("60819002", "7771000"), "right_cheek": ("60819002", "24028007"),
    "nose": ("45206002", None), "chin": ("30291003", None), "all_skin": ("89545001", None),
}
REGION_EXT = "urn:skintrack:fhir:extension:region"
LATERALITY_EXT = "urn:skintrack:fhir:extension:laterality"
REFERENCE_REGION_EXT = "urn:skintrack:fhir:extension:reference-region"
#: The region each photo's redness is a contrast against, as stored with its analysis: the export
#: reports each analysis's own (the imaging keeps a follow-up on its baseline's; these differ so a
#: mix-up shows). A photo without a reference (no forehead or chin measurable) has no redness.
REDNESS_REFERENCE = {"baseline": "forehead", "2_weeks": None, "1_month": "chin"}


def _values(offset: float, with_reference: bool = True) -> dict[tuple[str, str], float]:
    values = {}
    for index, region in enumerate(EXPECTED_BODY_SITES):
        if with_reference:
            values[(region, "redness")] = 20.0 + index + offset
            values[(region, "delta_a_star")] = 1.5 + index + offset
        values[(region, "ita_deg")] = 30.5 - index + offset
        values[(region, "red_area_fraction")] = 0.1 * index + offset / 100
    values[("all_skin", "glcm.contrast")] = 3.0  # a family member without a UCUM unit: not exported
    return values


def _extension(element: dict, url: str) -> dict | None:
    return next((e for e in element.get("extension", []) if e["url"] == url), None)


def test_bundle_validates_round_trips_and_is_audited(app: Flask, client: FlaskClient) -> None:
    clinic = factories.make_clinic(app, "Clinic A")
    clinician = factories.make_user(app, "clinician", clinic)
    patient = factories.make_patient(app, clinic, full_name="Ada Example", email="ada@mailbox.example")
    course = factories.make_course(app, patient)
    stored = {"baseline": _values(0.0), "2_weeks": _values(-1.0, with_reference=False), "1_month": _values(-2.5)}
    photo_ids = {name: add_result(app, course, name, BASELINE + dt.timedelta(days=day), stored[name],
                                  redness_reference=REDNESS_REFERENCE[name])
                 for name, day in (("baseline", 0), ("2_weeks", 14), ("1_month", 30))}
    with app.app_context():
        db.session.add(Assessment(course_id=course.id, milestone_id=milestone_id(course, "1_month"),
                                  rater_role="patient", gais=2, satisfaction=8))
        db.session.commit()
    factories.make_adverse_event(app, course, clinician, onset_date=BASELINE + dt.timedelta(days=2))

    response = client.get(f"/api/v1/patients/{patient.id}/fhir", headers=factories.auth_headers(app, clinician))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    raw = response.get_json()

    # Every resource validates on its own, by its type.
    kinds = []
    for entry in raw["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        kinds.append(resource["resourceType"])
    assert kinds.count("Patient") == 1 and kinds.count("EpisodeOfCare") == 1
    assert kinds.count("Media") == 3 and kinds.count("AdverseEvent") == 1
    assert kinds.count("Observation") == 3 + 2  # a panel per photo; GAIS and satisfaction

    # Round trip: parse the Bundle back with the model library and find each stored value.
    bundle = Bundle.model_validate_json(response.data)
    panels = {}
    for entry in bundle.entry:
        resource = entry.resource
        if resource.get_resource_type() == "Observation" and resource.code.coding[0].code == "skin-imaging-panel":
            panels[resource.derivedFrom[0].reference] = resource
    for milestone, photo_id in photo_ids.items():
        panel = panels[f"urn:uuid:{photo_id}"]
        assert panel.method.coding[0].code == ALGORITHM_VERSION
        found = {}
        for component in panel.component:
            data = component.model_dump(mode="json")
            region = _extension(data, REGION_EXT)["valueCodeableConcept"]
            laterality = _extension(data, LATERALITY_EXT)
            site = (region["coding"][0]["code"],
                    laterality["valueCodeableConcept"]["coding"][0]["code"] if laterality else None)
            region_key = next(k for k, v in EXPECTED_BODY_SITES.items() if v == site)
            measure = MEASURE_BY_KEY[component.code.coding[0].code]
            quantity = component.valueQuantity
            assert quantity.system == "http://unitsofmeasure.org" and quantity.code == measure.ucum
            assert quantity.unit == measure.unit
            found[(region_key, measure.key)] = float(quantity.value)
            # Redness names the region it is a contrast against; absolute and area measures name none.
            reference = _extension(data, REFERENCE_REGION_EXT)
            if measure.key in ("redness", "delta_a_star"):
                code = reference["valueCodeableConcept"]["coding"][0]["code"]
                assert code == EXPECTED_BODY_SITES[REDNESS_REFERENCE[milestone]][0]
            else:
                assert reference is None, measure.key
        expected = {key: value for key, value in stored[milestone].items() if not key[1].startswith("glcm")}
        assert found == expected

    units = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["code"]
             for e in raw["entry"] if e["resource"]["resourceType"] == "Observation"
             for c in e["resource"].get("component", [])}
    assert units == {"redness": "10*-2{OD}", "delta_a_star": "1", "ita_deg": "deg", "red_area_fraction": "1"}
    surveys = {e["resource"]["code"]["coding"][0]["code"]: e["resource"]["valueInteger"]
               for e in raw["entry"] if e["resource"]["resourceType"] == "Observation"
               and "valueInteger" in e["resource"]}
    assert surveys == {"gais": 2, "satisfaction": 8}
    media = next(e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Media")
    assert media["view"]["coding"][0]["code"] == "front" and media["bodySite"]["coding"][0]["code"] == "89545001"
    assert media["createdDateTime"].startswith(BASELINE.isoformat())
    with app.app_context():
        reads = db.session.execute(select(AuditEvent.action, AuditEvent.object_id)).all()
    assert ("patient.read", str(patient.id)) in reads
    assert {("photo.read", str(p)) for p in photo_ids.values()} <= set(reads)


def test_only_clinicians_of_the_patients_clinic(app: Flask, client: FlaskClient) -> None:
    clinic, other = factories.make_clinic(app, "A"), factories.make_clinic(app, "B")
    patient, patient_user = factories.make_patient_with_login(app, clinic)
    url = f"/api/v1/patients/{patient.id}/fhir"
    for user, status in ((factories.make_user(app, "clinician", other), 404),
                         (factories.make_user(app, "admin", clinic), 403), (patient_user, 403),
                         (factories.make_user(app, "researcher", clinic), 403)):
        response = client.get(url, headers=factories.auth_headers(app, user))
        assert response.status_code == status and response.mimetype == "application/problem+json"


def test_readme_lists_the_exported_units_and_body_sites() -> None:
    """The README's UCUM and SNOMED CT tables are the catalogue's (rendered here, compared)."""
    from pathlib import Path

    from imaging.catalogue import MEASURES, REGION_BY_KEY

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    units = "\n".join(f"| `{m.key}` | {m.unit} | `{m.ucum}` | {m.comparability.value} |" for m in MEASURES if m.ucum)
    assert units in readme
    for key, (code, laterality) in EXPECTED_BODY_SITES.items():
        region = REGION_BY_KEY[key]
        assert region.snomed_code == code and region.laterality_code == laterality
        assert f"| {code} " in readme
