"""Clinician dashboard: session sign-in with CSRF, flags, patient page, viewer images, PDF, isolation."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from backend.extensions import db
from backend.models.audit import AuditEvent
from tests import factories
from tests.backend.clinical_helpers import BASELINE, assert_problem
from tests.backend.dashboard_helpers import csrf_of, sign_in
from tests.backend.progress_helpers import add_overlay, add_result, write_mdc_table

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path, clock) -> dict[str, Any]:
    # The clock is conftest's (set by its app_config too); this adds the MDC table.
    table = write_mdc_table(tmp_path / "reliability.json", {("all_skin", "redness"): 2.0})
    return {**app_config, "CLOCK": clock, "RELIABILITY_TABLE_PATH": table}


@pytest.fixture
def clinician_client(app, world) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, world.clinician_a.email).status_code == 302
    return client


def audit_actions(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_sign_in_sets_a_hardened_session_cookie(app, world):
    client = app.test_client()
    response = sign_in(client, world.clinician_a.email)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("skintrack_dashboard=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/dashboard"):
        assert attribute in cookie
    page = client.get("/dashboard/")
    assert page.status_code == 200 and world.patient.full_name in page.get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert [e.actor_user_id for e in audit_actions(app, "auth.login")] == [world.clinician_a.id]


def test_sign_in_refusals(app, world):
    client = app.test_client()
    assert client.get("/dashboard/").status_code == 302  # to the sign-in page
    no_csrf = client.post("/dashboard/login", data={"email": world.clinician_a.email,
                                                    "password": factories.DEFAULT_PASSWORD})
    assert_problem(no_csrf, 400, type_="csrf-failed")
    assert sign_in(client, world.clinician_a.email, "wrong password").status_code == 401
    # Patients have no dashboard, even with the right password (researchers have their study pages).
    assert sign_in(client, world.patient_user.email).status_code == 401
    assert sign_in(client, world.researcher.email).headers["Location"] == "/dashboard/research/"
    assert client.get("/dashboard/").status_code == 302
    assert len(audit_actions(app, "auth.login_failed")) == 2


def test_open_redirect_refused(app, world):
    client = app.test_client()
    page = client.get("/dashboard/login?next=https://evil.example/")
    response = client.post("/dashboard/login?next=https://evil.example/", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "email": world.clinician_a.email,
        "password": factories.DEFAULT_PASSWORD})
    assert response.headers["Location"].endswith("/dashboard/")


def test_logout_needs_csrf(clinician_client):
    page = clinician_client.get("/dashboard/").get_data(as_text=True)
    assert_problem(clinician_client.post("/dashboard/logout", data={"csrf_token": "forged"}), 400)
    assert clinician_client.get("/dashboard/").status_code == 200
    response = clinician_client.post("/dashboard/logout", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302
    assert clinician_client.get("/dashboard/").status_code == 302


def test_password_change_ends_dashboard_sessions(app, clinician_client, world):
    from backend.auth.passwords import hash_password
    from backend.models.accounts import User

    with app.app_context():
        db.session.get(User, world.clinician_a.id).password_hash = hash_password("a brand new passphrase")
        db.session.commit()
    assert clinician_client.get("/dashboard/").status_code == 302


def test_patient_list_flags(app, clinician_client, world, clock):
    course = world.course
    add_result(app, course, "baseline", BASELINE, {("all_skin", "redness"): 30.0})
    add_result(app, course, "1_month", BASELINE + dt.timedelta(days=30), {("all_skin", "redness"): 33.5})
    add_result(app, course, "3_months", BASELINE + dt.timedelta(days=90), {}, usable=False)
    clock.advance(days=200)  # the 6-month window (days 166-194) has closed without a photo
    html = clinician_client.get("/dashboard/").get_data(as_text=True)
    own_row = next(row for row in html.split("<tr") if world.patient.full_name in row)
    for flag in ("overdue milestone", "unusable last photo", "worse beyond MDC: redness (all skin)", "adverse event"):
        assert flag in own_row
    other_row = next(row for row in html.split("<tr") if world.other_patient.full_name in row)
    assert "class=\"flag " not in other_row and ">none<" in other_row
    assert world.patient_b.full_name not in html  # another clinic's patient is not listed


def test_patient_page_and_isolation(app, clinician_client, world):
    add_result(app, world.course, "baseline", BASELINE, {("all_skin", "redness"): 30.0}, redness_reference="chin")
    page = clinician_client.get(f"/dashboard/patients/{world.patient.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Which region the redness charts are a contrast against (the chin: the forehead was hidden).
    assert "a contrast against the chin of the same photo (the forehead was hidden at the baseline)" in html
    charts = re.findall(r'src="(/dashboard/patients/[^"]+/charts/[^"]+)"', html)
    assert len(charts) == 3 * 6  # three measures x (all skin + five regions)
    chart = clinician_client.get(charts[0].replace("&amp;", "&"))
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert "erythema (mild)" in html  # the adverse event in the timeline table ...
    timeline = re.search(r'src="(/dashboard/patients/[^"]+/timeline.svg)"', html).group(1)
    timeline_svg = clinician_client.get(timeline)
    assert timeline_svg.mimetype == "image/svg+xml" and "erythema (mild)" in timeline_svg.get_data(as_text=True)
    assert_problem(clinician_client.get(f"/dashboard/patients/{world.patient_b.id}"), 404)
    assert_problem(clinician_client.get(
        f"/dashboard/patients/{world.patient_b.id}/courses/{world.course_b.id}/charts/redness.svg"), 404)
    assert_problem(clinician_client.get(f"/dashboard/patients/{world.patient_b.id}/report.pdf"), 404)
    assert_problem(clinician_client.get(f"/dashboard/patients/{world.patient_b.id}/viewer"), 404)


def test_viewer_images_are_aligned_halves_and_audited(app, clinician_client, world):
    baseline = add_result(app, world.course, "baseline", BASELINE, {("all_skin", "redness"): 30.0})
    followup = add_result(app, world.course, "1_month", BASELINE + dt.timedelta(days=30),
                          {("all_skin", "redness"): 28.0})
    left = np.full((40, 30, 3), (200, 10, 10), np.uint8)
    right = np.full((40, 30, 3), (10, 10, 200), np.uint8)
    pair = np.concatenate([left, np.zeros((40, 8, 3), np.uint8), right], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pair).save(buffer, format="PNG")
    add_overlay(app, followup, "before_after", buffer.getvalue())
    add_overlay(app, baseline, "redness", buffer.getvalue())

    page = clinician_client.get(f"/dashboard/patients/{world.patient.id}/viewer")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="viewer"' in html and "viewer.js" in html
    before_url = f"/dashboard/photos/{followup}/aligned/baseline.png"
    assert before_url in html
    before = Image.open(io.BytesIO(clinician_client.get(before_url).data)).convert("RGB")
    after = Image.open(io.BytesIO(clinician_client.get(
        f"/dashboard/photos/{followup}/aligned/followup.png").data)).convert("RGB")
    assert before.size == after.size == (30, 40)
    assert before.getpixel((15, 20)) == (200, 10, 10) and after.getpixel((15, 20)) == (10, 10, 200)
    overlay = clinician_client.get(f"/dashboard/photos/{baseline}/overlays/redness.png")
    assert overlay.status_code == 200 and overlay.mimetype == "image/png"
    reads = [(e.object_id, json.loads(e.details).get("endpoint")) for e in audit_actions(app, "photo.read")]
    assert (str(followup), "dashboard.aligned_face") in reads and (str(baseline), "dashboard.photo_overlay") in reads
    assert (str(baseline), "dashboard.viewer") in reads

    other = app.test_client()
    assert sign_in(other, world.clinician_b.email).status_code == 302
    assert_problem(other.get(before_url), 404)
    assert_problem(other.get(f"/dashboard/photos/{baseline}/overlays/redness.png"), 404)


def test_report_pdf_is_one_page(app, clinician_client, world):
    add_result(app, world.course, "baseline", BASELINE, {("all_skin", "redness"): 30.0})
    add_result(app, world.course, "1_month", BASELINE + dt.timedelta(days=30), {("all_skin", "redness"): 26.0})
    response = clinician_client.get(f"/dashboard/patients/{world.patient.id}/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", response.data)) == 1
    assert audit_actions(app, "patient.report")
