"""Studies API: who may do what, grants, the export job path, cohort statistics against scipy."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from scipy import stats
from sqlalchemy import func, select

from backend.extensions import db
from backend.models.audit import AuditEvent
from backend.models.jobs import Job
from backend.models.studies import StudyExport
from tests import factories
from tests.backend.clinical_helpers import BASELINE, assert_problem
from tests.backend.export_helpers import set_consent, set_privacy_floor
from tests.backend.progress_helpers import add_result

PROBLEM = "application/problem+json"


@pytest.fixture
def small_world(app: Flask, client: FlaskClient) -> SimpleNamespace:
    """Clinic A with a study, a granted researcher, and consenting patients with results.

    Six whole-face and six split-face (treated left) participants; redness at baseline and at
    1 month is known for every region, so the statistics can be recomputed here.
    """
    w = SimpleNamespace(clinic=factories.make_clinic(app, "Clinic A"), clinic_b=factories.make_clinic(app, "B"))
    w.admin = factories.make_user(app, "admin", w.clinic)
    w.admin_b = factories.make_user(app, "admin", w.clinic_b)
    w.clinician = factories.make_user(app, "clinician", w.clinic)
    w.researcher = factories.make_user(app, "researcher", w.clinic)
    w.ungranted = factories.make_user(app, "researcher", w.clinic)
    w.patient, w.patient_user = factories.make_patient_with_login(app, w.clinic)
    w.changes, w.treated_changes, w.control_changes = [], [], []
    rng = np.random.default_rng(7)
    for index in range(12):
        split = index >= 6
        patient = w.patient if index == 0 else factories.make_patient(app, w.clinic, full_name=f"P {index}")
        design = {"split_face_treated_side": "left", "treated_regions": ["left_cheek"]} if split else {}
        course = factories.make_course(app, patient, **design)
        base = float(20 + index)
        change, treated, control = (float(round(x, 3)) for x in rng.normal([-3.0, -4.0, -1.0], 1.5))
        add_result(app, course, "baseline", BASELINE, {("all_skin", "redness"): base,
                                                      ("left_cheek", "redness"): base + 1,
                                                      ("right_cheek", "redness"): base - 1})
        add_result(app, course, "1_month", BASELINE + dt.timedelta(days=30),
                   {("all_skin", "redness"): base + change, ("left_cheek", "redness"): base + 1 + treated,
                    ("right_cheek", "redness"): base - 1 + control})
        w.changes.append(change)
        if split:
            w.treated_changes.append(treated)
            w.control_changes.append(control)
        set_consent(app, patient, "grant", w.clinician)
    w.course = course
    w.h = {name: factories.auth_headers(app, getattr(w, name))
           for name in ("admin", "admin_b", "clinician", "researcher", "ungranted", "patient_user")}
    response = client.post("/api/v1/studies", headers=w.h["admin"], json={"title": "Redness study"})
    assert response.status_code == 201, response.get_json()
    w.study_id = response.get_json()["id"]
    response = client.post(f"/api/v1/studies/{w.study_id}/grants", headers=w.h["admin"],
                           json={"researcher_id": str(w.researcher.id)})
    assert response.status_code == 201
    return w


def test_cohort_statistics_match_scipy(client: FlaskClient, small_world: SimpleNamespace) -> None:
    w = small_world
    set_privacy_floor(client, w.study_id, w.h["admin"], min_k=1)
    response = client.get(f"/api/v1/studies/{w.study_id}/statistics?k=1", headers=w.h["researcher"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["participants"] == 12
    row = next(r for r in body["changes"] if (r["measure"], r["region"], r["milestone"]) == ("redness", "all_skin", "1_month"))
    changes = np.array(w.changes)
    assert row["n"] == 12
    assert row["mean_change"] == pytest.approx(changes.mean())
    low, high = stats.t.interval(0.95, 11, loc=changes.mean(), scale=stats.sem(changes))
    assert (row["mean_ci_low"], row["mean_ci_high"]) == pytest.approx((low, high))
    assert row["median_change"] == pytest.approx(np.median(changes))
    # n = 12: P(3 <= B <= 9) = 0.961 >= 0.95 > P(4 <= B <= 8), so the 3rd and 10th order statistics.
    ordered = np.sort(changes)
    assert (row["median_ci_low"], row["median_ci_high"]) == pytest.approx((ordered[2], ordered[9]))
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(changes).pvalue)
    split = next(r for r in body["split_face"] if (r["measure"], r["milestone"]) == ("redness", "1_month"))
    treated, control = np.array(w.treated_changes), np.array(w.control_changes)
    assert split["n"] == 6 and split["region"] == "treated_minus_control"
    assert split["mean_change"] == pytest.approx((treated - control).mean())
    assert split["wilcoxon_p"] == pytest.approx(stats.wilcoxon(treated, control).pvalue)


def test_statistics_apply_k_anonymity_and_audit(app: Flask, client: FlaskClient, small_world: SimpleNamespace) -> None:
    w = small_world
    body = client.get(f"/api/v1/studies/{w.study_id}/statistics", headers=w.h["researcher"]).get_json()
    # Whole-face and split-face designs are classes of 6: k = 5 is met; k = 7 suppresses them all.
    assert body["participants"] == 12 and body["k_anonymity"]["min_class_size"] == 6
    body = client.get(f"/api/v1/studies/{w.study_id}/statistics?k=7", headers=w.h["researcher"]).get_json()
    assert body["participants"] == 0 and body["changes"] == []
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action)))
    assert "study.statistics_read" in actions


def test_export_job_builds_the_package_and_download_is_audited(app: Flask, client: FlaskClient,
                                                               small_world: SimpleNamespace) -> None:
    w = small_world
    headers = {**w.h["researcher"], "Idempotency-Key": "export-k6"}
    response = client.post(f"/api/v1/studies/{w.study_id}/exports", headers=headers, json={"k": 6})
    assert response.status_code == 202
    export_id = response.get_json()["id"]
    replay = client.post(f"/api/v1/studies/{w.study_id}/exports", headers=headers, json={"k": 6})
    assert replay.status_code == 202 and replay.get_json()["id"] == export_id
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StudyExport)) == 1
        export = db.session.get(StudyExport, uuid.UUID(export_id))
        job = db.session.get(Job, export.job_id)
        assert job.kind == "build_study_export" and job.status == "done"
        assert export.status == "ready" and export.summary["participants"]["released"] == 12
    body = client.get(response.headers["Location"], headers=w.h["researcher"]).get_json()
    download = client.get(body["download_url"], headers=w.h["researcher"])
    assert download.status_code == 200
    import hashlib
    assert hashlib.sha256(download.data).hexdigest() == body["sha256"]
    with app.app_context():
        actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert "study_export.request" in actions and "study_export.download" in actions


def test_download_before_ready_is_a_conflict(app: Flask, client: FlaskClient, small_world: SimpleNamespace) -> None:
    w = small_world
    with app.app_context():
        export = StudyExport(study_id=uuid.UUID(w.study_id), requested_by_user_id=w.researcher.id, options={})
        db.session.add(export)
        db.session.commit()
        export_id = export.id
    response = client.get(f"/api/v1/studies/{w.study_id}/exports/{export_id}/download", headers=w.h["researcher"])
    assert_problem(response, 409, type_="export-not-ready")


def test_failed_build_job_shows_as_failed(app: Flask, client: FlaskClient, small_world: SimpleNamespace) -> None:
    """A job that failed for good (e.g. storage refused the zip) makes the export report failed."""
    w = small_world
    with app.app_context():
        job = Job(kind="build_study_export", payload={}, status="failed")
        db.session.add(job)
        db.session.flush()
        export = StudyExport(study_id=uuid.UUID(w.study_id), requested_by_user_id=w.researcher.id, options={},
                             job_id=job.id)
        db.session.add(export)
        db.session.commit()
        export_id = export.id
    body = client.get(f"/api/v1/studies/{w.study_id}/exports/{export_id}", headers=w.h["researcher"]).get_json()
    assert body["status"] == "failed" and body["download_url"] is None


#: (caller, method, path under the study, expected status): the study authorisation matrix.
STUDY_MATRIX = [
    ("clinician", "post", "/exports", 403),
    ("clinician", "get", "/statistics", 403),
    ("clinician", "get", "", 403),
    ("patient_user", "post", "/exports", 403),
    ("patient_user", "get", "", 403),
    ("admin", "post", "/exports", 403),
    ("admin", "get", "/statistics", 403),
    ("ungranted", "post", "/exports", 404),
    ("ungranted", "get", "/statistics", 404),
    ("ungranted", "get", "", 404),
    ("researcher", "post", "/grants", 403),
    ("admin_b", "post", "/grants", 403),
    ("researcher", "get", "", 200),
    ("admin_b", "get", "", 200),
]


def test_study_authorisation(client: FlaskClient, small_world: SimpleNamespace) -> None:
    """One world, every row of :data:`STUDY_MATRIX` (building the world per row is slow)."""
    w = small_world
    for who, method, path, status in STUDY_MATRIX:
        kwargs: dict[str, Any] = {"headers": w.h[who]}
        if method == "post":
            kwargs["json"] = {"researcher_id": str(w.ungranted.id)} if path == "/grants" else {}
        response = getattr(client, method)(f"/api/v1/studies/{w.study_id}{path}", **kwargs)
        assert response.status_code == status, (who, method, path, response.get_json())
        if status >= 400:
            assert response.mimetype == PROBLEM


def test_researcher_reaches_no_identified_endpoint(app: Flask, client: FlaskClient,
                                                   small_world: SimpleNamespace) -> None:
    """Every GET of the API except auth, studies and the spec refuses a researcher (403/404)."""
    w = small_world
    with app.app_context():
        from backend.models.photos import Photo
        photo_id = db.session.scalars(select(Photo.id)).first()
    ids = {"patient_id": w.patient.id, "course_id": w.course.id, "photo_id": photo_id, "user_id": w.admin.id,
           "upload_id": uuid.uuid4(), "measure": "redness", "fmt": "png", "name": "redness",
           "endpoint_id": uuid.uuid4()}
    checked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.rule.startswith("/api/v1/"):
            continue
        if re.match(r"^/api/v1/(studies|auth/me|openapi\.json|docs)", rule.rule):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(ids[m.group(1)]), rule.rule)
        path = path.replace("<any(png,svg):fmt>", "png")
        response = client.get(path, headers=w.h["researcher"])
        assert response.status_code in (401, 403, 404), (path, response.status_code)
        checked += 1
    assert checked >= 25


def test_grants_and_study_input_are_validated(app: Flask, client: FlaskClient, small_world: SimpleNamespace) -> None:
    w = small_world
    url = f"/api/v1/studies/{w.study_id}"
    assert_problem(client.post(f"{url}/grants", headers=w.h["admin"], json={"researcher_id": str(w.clinician.id)}),
                   422, type_="not-a-researcher")
    assert_problem(client.post(f"{url}/exports", headers=w.h["researcher"], json={"k": 0}), 422)
    assert_problem(client.post(f"{url}/exports", headers=w.h["researcher"], json={"unknown": 1}), 422)
    assert_problem(client.post("/api/v1/studies", headers=w.h["admin"],
                               json={"title": "x", "starts_on": "2026-05-01", "ends_on": "2026-01-01"}), 422)
    # Another clinic's admin may join with their own clinic only.
    assert_problem(client.put(f"{url}/clinics/{w.clinic.id}", headers=w.h["admin_b"]), 403)
    joined = client.put(f"{url}/clinics/{w.clinic_b.id}", headers=w.h["admin_b"])
    assert joined.status_code == 200 and str(w.clinic_b.id) in joined.get_json()["clinic_ids"]
    # Revoking a grant closes the study to the researcher.
    assert client.delete(f"{url}/grants/{w.researcher.id}", headers=w.h["admin"]).status_code == 204
    assert_problem(client.get(f"{url}/statistics", headers=w.h["researcher"]), 404)
    listed = client.get("/api/v1/studies", headers=w.h["researcher"]).get_json()
    assert listed["items"] == []


def test_withdrawn_consent_leaves_later_statistics(app: Flask, client: FlaskClient,
                                                   small_world: SimpleNamespace) -> None:
    w = small_world
    set_privacy_floor(client, w.study_id, w.h["admin"], min_k=1)
    url = f"/api/v1/studies/{w.study_id}/statistics?k=1"
    assert client.get(url, headers=w.h["researcher"]).get_json()["participants"] == 12
    set_consent(app, w.patient, "withdraw", w.clinician)
    assert client.get(url, headers=w.h["researcher"]).get_json()["participants"] == 11


def test_requests_below_the_privacy_floor_are_refused_and_say_the_floor(
        app: Flask, client: FlaskClient, small_world: SimpleNamespace) -> None:
    w = small_world
    url = f"/api/v1/studies/{w.study_id}"
    study = client.get(url, headers=w.h["researcher"]).get_json()
    assert study["privacy_floor"] == {"min_k": 5, "max_suppression": 0.1}
    for response in (client.get(f"{url}/statistics?k=1", headers=w.h["researcher"]),
                     client.post(f"{url}/exports", headers=w.h["researcher"], json={"k": 4}),
                     client.get(f"{url}/statistics?max_suppression=0.5", headers=w.h["researcher"])):
        body = assert_problem(response, 422, type_="below-privacy-floor")
        assert body["privacy_floor"] == {"min_k": 5, "max_suppression": 0.1}
        assert "k >= 5" in body["detail"] and "max_suppression <= 0.1" in body["detail"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StudyExport)) == 0
    # More protection is always allowed; without k the floor applies.
    assert client.get(f"{url}/statistics?k=6&max_suppression=0.05", headers=w.h["researcher"]).status_code == 200
    set_privacy_floor(client, w.study_id, w.h["admin"], min_k=7, max_suppression=0.2)
    body = client.get(f"{url}/statistics", headers=w.h["researcher"]).get_json()
    assert body["options"]["k"] == 7 and body["options"]["max_suppression"] == 0.2
    assert body["participants"] == 0  # classes of 6 < 7
    assert_problem(client.put(f"{url}/privacy-floor", headers=w.h["admin"], json={"min_k": 0, "max_suppression": 0.1}),
                   422)
    assert_problem(client.put(f"{url}/privacy-floor", headers=w.h["admin_b"],
                              json={"min_k": 1, "max_suppression": 0.1}), 403)
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action)))
    assert actions.count("study.privacy_floor") == 1


def test_statistics_cells_below_k_are_suppressed_and_say_so(client: FlaskClient, small_world: SimpleNamespace) -> None:
    """One participant has a 3-month photo: that cell has n = 1 < k and shows no numbers."""
    w = small_world
    add_result(client.application, w.course, "3_months", BASELINE + dt.timedelta(days=90),
               {("all_skin", "redness"): 10.0})
    url = f"/api/v1/studies/{w.study_id}/statistics"
    body = client.get(url, headers=w.h["researcher"]).get_json()
    cells = {(r["measure"], r["region"], r["milestone"]): r for r in body["changes"]}
    small = cells[("redness", "all_skin", "3_months")]
    assert small["suppressed"] is True
    assert all(small[name] is None for name in ("n", "mean_change", "median_change", "wilcoxon_p"))
    large = cells[("redness", "all_skin", "1_month")]
    assert large["suppressed"] is False and large["n"] == 12 and large["mean_change"] is not None
    set_privacy_floor(client, w.study_id, w.h["admin"], min_k=1)
    body = client.get(f"{url}?k=1", headers=w.h["researcher"]).get_json()
    small = next(r for r in body["changes"] if (r["region"], r["milestone"]) == ("all_skin", "3_months"))
    assert small["suppressed"] is False and small["n"] == 1
