"""Authorisation matrix: every clinical route x every kind of caller.

The target objects always belong to ``world.patient`` (clinic A). Callers relative to them:

- ``patient_own``: the patient themselves;
- ``patient_other``: another patient of the same clinic;
- ``clinician_same`` / ``clinician_other``: a clinician of clinic A / clinic B;
- ``admin_same`` / ``admin_other``: a clinic admin of clinic A / clinic B;
- ``researcher``: a researcher (no identified data at all).

Expectation: a role the endpoint never serves -> 403; an allowed role that cannot see the
object (another patient's, another clinic's) -> 404; an allowed role that can -> the
endpoint's success status. List endpoints answer 200 to allowed roles but must not contain
objects the caller may not see.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from backend.blueprints.clinical import CLINICAL_BLUEPRINTS
from tests import factories
from tests.backend.clock import FakeClock

PROBLEM = "application/problem+json"

#: Caller -> (world attribute of the user, sees world.patient's records as which role).
CALLERS: dict[str, tuple[str, bool]] = {
    "patient_own": ("patient_user", True),
    "patient_other": ("other_patient_user", False),
    "clinician_same": ("clinician_a", True),
    "clinician_other": ("clinician_b", False),
    "admin_same": ("admin_a", True),
    "admin_other": ("admin_b", False),
    "researcher": ("researcher", False),
}

PATIENT, CLINICIAN, ADMIN = "patient", "clinician", "admin"
READERS = (PATIENT, CLINICIAN, ADMIN)


@dataclass(frozen=True)
class Endpoint:
    """One route of the matrix.

    ``request(world)`` returns (path, json body or None); ``roles`` may use it;
    ``success`` is the status for a caller that may; ``listed`` is set for list endpoints
    (200 for every allowed role) and returns the id that must be present only for callers
    that may see the target.
    """

    endpoint: str
    method: str
    request: Callable[[Any], tuple[str, Any]]
    roles: tuple[str, ...]
    success: int = 200
    listed: Callable[[Any], str] | None = None
    #: Whether another object's caller can even address it (False for /me routes).
    addresses_object: bool = True


def _milestone(world: Any, name: str) -> str:
    return str(next(m.id for m in world.course.milestones if m.name == name))


MATRIX: tuple[Endpoint, ...] = (
    Endpoint("patients.list_patients", "GET", lambda w: ("/api/v1/patients", None), READERS,
             listed=lambda w: str(w.patient.id)),
    Endpoint("patients.create_patient", "POST", lambda w: ("/api/v1/patients", {
        "full_name": "New Person", "date_of_birth": "1990-01-02", "sex": "male",
        "fitzpatrick_type": 4}), (CLINICIAN,), success=201, addresses_object=False),
    Endpoint("patients.get_patient", "GET", lambda w: (f"/api/v1/patients/{w.patient.id}", None), READERS),
    Endpoint("patients.update_patient", "PATCH",
             lambda w: (f"/api/v1/patients/{w.patient.id}", {"phone": "+1 555 0100"}), (CLINICIAN,)),
    Endpoint("patients.get_own_patient", "GET", lambda w: ("/api/v1/me/patient", None), (PATIENT,),
             addresses_object=False),
    Endpoint("patients.get_consents", "GET",
             lambda w: (f"/api/v1/patients/{w.patient.id}/consents", None), READERS),
    Endpoint("patients.list_consent_events", "GET",
             lambda w: (f"/api/v1/patients/{w.patient.id}/consents/history", None), READERS),
    Endpoint("patients.record_consent", "POST", lambda w: (
        f"/api/v1/patients/{w.patient.id}/consents",
        {"scope": "research", "action": "grant", "version": "2026-01"}), (PATIENT, CLINICIAN), success=201),
    Endpoint("courses.list_courses", "GET",
             lambda w: (f"/api/v1/patients/{w.patient.id}/courses", None), READERS),
    Endpoint("courses.create_course", "POST", lambda w: (
        f"/api/v1/patients/{w.patient.id}/courses",
        {"indication": "redness_rosacea", "product_name": "Exo", "exosome_source": "plant",
         "delivery": "peel", "treated_regions": ["nose"], "baseline_date": "2026-03-01"}),
        (CLINICIAN,), success=201),
    Endpoint("courses.get_course", "GET", lambda w: (f"/api/v1/courses/{w.course.id}", None), READERS),
    Endpoint("courses.update_course", "PATCH",
             lambda w: (f"/api/v1/courses/{w.course.id}", {"status": "completed"}), (CLINICIAN,)),
    Endpoint("courses.replace_milestones", "PUT", lambda w: (
        f"/api/v1/courses/{w.course.id}/milestones",
        {"milestones": [{"name": "baseline", "day_offset": 0, "window_before_days": 0,
                         "window_after_days": 2}]}), (CLINICIAN,)),
    Endpoint("courses.record_milestone_visit", "POST",
             lambda w: (f"/api/v1/milestones/{_milestone(w, 'baseline')}/visit", None), (CLINICIAN,)),
    Endpoint("courses.list_sessions", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/sessions", None), READERS),
    Endpoint("courses.create_session", "POST", lambda w: (
        f"/api/v1/courses/{w.course.id}/sessions", {"performed_on": "2026-03-01"}), (CLINICIAN,), success=201),
    Endpoint("courses.course_schedule", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/schedule", None), READERS),
    Endpoint("courses.own_schedule", "GET", lambda w: ("/api/v1/me/schedule", None), (PATIENT,),
             addresses_object=False),
    Endpoint("assessments.list_assessments", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/assessments", None), READERS),
    Endpoint("assessments.create_assessment", "POST", lambda w: (
        f"/api/v1/courses/{w.course.id}/assessments", {"milestone_id": _milestone(w, "2_weeks"), "gais": 3}),
        (PATIENT, CLINICIAN), success=201),
    Endpoint("assessments.list_adverse_events", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/adverse-events", None), READERS),
    Endpoint("assessments.create_adverse_event", "POST", lambda w: (
        f"/api/v1/courses/{w.course.id}/adverse-events",
        {"event_type": "swelling", "severity": "mild", "onset_date": "2026-03-01"}),
        (PATIENT, CLINICIAN), success=201),
    Endpoint("assessments.update_adverse_event", "PATCH", lambda w: (
        f"/api/v1/adverse-events/{w.adverse_event.id}", {"resolution_date": "2026-03-01"}),
        (PATIENT, CLINICIAN)),
    # Invitations target a patient of clinic A without a login (an enrolled one answers 409).
    Endpoint("enrolment.create_invitation", "POST",
             lambda w: (f"/api/v1/patients/{w.new_patient.id}/invitations", {}), (CLINICIAN,), success=201),
)

#: Routes that need no sign-in: anyone gets the same answer (tested in test_enrolment.py).
PUBLIC_ENDPOINTS = {"enrolment.enrol"}


def expected_status(entry: Endpoint, caller: str, role: str) -> int:
    """The status the matrix requires for ``caller`` (of ``role``) on ``entry``."""
    if role not in entry.roles:
        return 403
    if not entry.addresses_object or entry.listed is not None:
        return entry.success
    if entry.endpoint == "enrolment.create_invitation":
        # The target is a clinic-A patient without a login: visible to clinic A's staff only.
        return entry.success if caller in ("clinician_same", "admin_same") else 404
    return entry.success if CALLERS[caller][1] else 404


@pytest.fixture
def clock() -> FakeClock:
    # Day 14 of the factory course: its 2_weeks milestone is open for ratings.
    return FakeClock(dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc))


@pytest.fixture
def app_config(app_config, clock):
    return {**app_config, "CLOCK": clock}


def test_matrix_lists_every_clinical_route(app):
    clinical = {blueprint.name for blueprint in CLINICAL_BLUEPRINTS}
    registered = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in clinical
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    in_matrix = {(entry.endpoint, entry.method) for entry in MATRIX}
    public = {(endpoint, method) for endpoint, method in registered if endpoint in PUBLIC_ENDPOINTS}
    assert registered - public == in_matrix


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("entry", MATRIX, ids=lambda entry: f"{entry.method} {entry.endpoint}")
def test_authorisation_matrix(app, client, entry: Endpoint, caller: str):
    world = factories.make_clinical_world(app)
    user = getattr(world, CALLERS[caller][0])
    path, body = entry.request(world)
    response = client.open(path, method=entry.method, json=body, headers=factories.auth_headers(app, user))
    expected = expected_status(entry, caller, user.role)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert response.mimetype == PROBLEM
        return
    if entry.listed is not None:
        listed_ids = {item["id"] for item in response.get_json()["items"]}
        assert (entry.listed(world) in listed_ids) == CALLERS[caller][1]


@pytest.mark.parametrize("caller", list(CALLERS))
def test_patient_list_never_shows_another_clinic(app, client, caller):
    world = factories.make_clinical_world(app)
    user = getattr(world, CALLERS[caller][0])
    response = client.get("/api/v1/patients", headers=factories.auth_headers(app, user))
    if user.role == "researcher":
        assert response.status_code == 403
        return
    listed = {item["id"] for item in response.get_json()["items"]}
    assert str(world.patient_b.id) not in listed or caller in ("clinician_other", "admin_other")
    if user.role == "patient":
        own = world.patient if caller == "patient_own" else world.other_patient
        assert listed == {str(own.id)}


def test_unauthenticated_requests_get_401(app, client):
    world = factories.make_clinical_world(app)
    for entry in MATRIX:
        path, body = entry.request(world)
        response = client.open(path, method=entry.method, json=body)
        assert response.status_code == 401, entry.endpoint
        assert response.mimetype == PROBLEM


def test_spec_documents_the_matrix_answers_as_problems(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    shared = spec["components"]["responses"]
    for entry in MATRIX:
        path = next(rule for rule in _rules(client.application, entry.endpoint))
        operation = spec["paths"][path][entry.method.lower()]
        documented = set(operation["responses"])
        assert {str(entry.success), "401", "403"} <= documented, entry.endpoint
        if entry.addresses_object and entry.listed is None:
            assert "404" in documented, entry.endpoint
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                content = shared[response["$ref"].rsplit("/", 1)[1]]["content"]
                assert list(content) == [PROBLEM], (entry.endpoint, status)


def _rules(app, endpoint: str):
    """OpenAPI paths of an endpoint (``<uuid:x>`` -> ``{x}``)."""
    for rule in app.url_map.iter_rules(endpoint):
        yield re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
