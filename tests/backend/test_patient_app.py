"""The patient app's server side: the shell at /app/, invitation links and QR codes, the
personal calendar feed, the preview check and the camera settings stored with a photo."""

from __future__ import annotations

import io
import json
import uuid

import icalendar
import pytest
from PIL import Image
from sqlalchemy import select

from backend.extensions import db
from backend.models.accounts import User
from backend.models.audit import AuditEvent
from backend.models.clinical import TreatmentCourse
from backend.models.photos import Photo
from imaging.preview import HINTS
from tests.backend.clinical_helpers import assert_problem
from tests.backend.photo_helpers import face_photo, grant_photo_consent, phone_jpeg, upload

pytestmark = pytest.mark.usefixtures("clock")  # 2026-03-01, the factory course's baseline day

BASE = "https://clinic.example.org/skin"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "PUBLIC_BASE_URL": BASE}


def frame(rgb=None, size=(640, 480)) -> bytes:
    """A preview frame: the test face (or a flat image) fitted into 640x480, JPEG."""
    image = Image.fromarray(face_photo().rgb) if rgb is None else Image.new("RGB", size, rgb)
    from PIL import ImageOps

    buffer = io.BytesIO()
    ImageOps.pad(image, size, color=(200, 200, 200)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_shell_manifest_and_worker_keep_the_strict_policy(client):
    shell = client.get("/app/")
    assert shell.status_code == 200 and shell.mimetype == "text/html"
    csp = shell.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "http" not in csp
    assert shell.headers["Permissions-Policy"].startswith("camera=(self)")
    html = shell.get_data(as_text=True)
    assert "<script " not in html.replace('<script type="module" src=', "")  # no inline script
    assert 'rel="manifest"' in html
    manifest = client.get("/app/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    body = manifest.get_json(force=True)
    assert body["start_url"] == "/app/" and body["display"] == "standalone"
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200, icon
    worker = client.get("/app/sw.js")
    assert worker.headers["Service-Worker-Allowed"] == "/app/" and worker.headers["Cache-Control"] == "no-cache"
    # Every file the worker precaches exists (a missing one would make its install fail).
    text = worker.get_data(as_text=True)
    shell_files = json.loads(text.split("const SHELL = ", 1)[1].split(";", 1)[0])
    for path in shell_files:
        assert client.get(path).status_code == 200, path


def test_invitation_answer_has_the_app_link_and_its_qr_code(client, world, headers_of):
    response = client.post(f"/api/v1/patients/{world.new_patient.id}/invitations", json={},
                           headers=headers_of("clinician_a"))
    invitation = response.get_json()
    # The token travels in the fragment: browsers never send it to a server.
    assert invitation["link"] == f"{BASE}/app/#enrol={invitation['link_token']}"
    svg = invitation["qr_svg"]
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg and "<path" in svg
    enrolled = client.post("/api/v1/auth/enrol", json={
        "token": invitation["link"].split("#enrol=", 1)[1], "email": "new.patient@example.org",
        "password": "a long new password"})
    assert enrolled.status_code == 201


def test_calendar_feed_lists_windows_without_health_data_and_can_be_replaced_and_revoked(app, client, world,
                                                                                         headers_of):
    patient = headers_of("patient_user")
    assert client.get("/api/v1/me/calendar-feed", headers=patient).get_json()["active"] is False
    created = client.post("/api/v1/me/calendar-feed", headers=patient)
    assert created.status_code == 201
    feed = created.get_json()
    assert feed["webcal_url"].startswith("webcal://clinic.example.org/skin/api/v1/calendar/")
    path = feed["url"].removeprefix(BASE)
    answer = client.get(path)  # no sign-in: calendar programs cannot
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(answer.data)
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    with app.app_context():
        windows = {m.name: m.window for m in db.session.get(TreatmentCourse, world.course.id).milestones}
    assert set(events) == {f"Skin photo check-in: {name.replace('_', ' ')}" for name in windows}
    two_weeks = events["Skin photo check-in: 2 weeks"]
    window = windows["2_weeks"]
    assert two_weeks.decoded("dtstart") == window.opens
    assert (two_weeks.decoded("dtend") - window.closes).days == 1  # DTEND is exclusive
    text = answer.get_data(as_text=True)
    for private in (world.patient.full_name, world.course.product_name, world.course.indication, "Pat"):
        assert private not in text
    with app.app_context():
        reads = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "calendar_feed.read")).all()
        assert [r.object_id for r in reads] == [str(world.patient.id)]
        assert all(path.split("/")[-1].split(".")[0] not in json.dumps(r.details) for r in reads)
    assert client.get("/api/v1/me/calendar-feed", headers=patient).get_json()["last_fetched_at"] is not None
    replaced = client.post("/api/v1/me/calendar-feed", headers=patient).get_json()
    assert_problem(client.get(path), 404)
    new_path = replaced["url"].removeprefix(BASE)
    assert client.get(new_path).status_code == 200
    with app.app_context():  # a deactivated login's feed stops too
        db.session.get(User, world.patient_user.id).is_active = False
        db.session.commit()
    assert_problem(client.get(new_path), 404)
    with app.app_context():
        db.session.get(User, world.patient_user.id).is_active = True
        db.session.commit()
    assert client.get(new_path).status_code == 200
    assert client.delete("/api/v1/me/calendar-feed", headers=patient).status_code == 204
    assert_problem(client.get(new_path), 404)
    assert_problem(client.get("/api/v1/calendar/not-a-token.ics"), 404)


def test_preview_check_finds_the_face_and_words_hints(client, headers_of):
    patient = headers_of("patient_user")
    answer = client.post("/api/v1/me/preview-check", data=frame(), headers={**patient, "Content-Type": "image/jpeg"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    x, y, w, h = body["face_box"]
    assert 0.0 <= x < x + w <= 1.0 and 0.0 <= y < y + h <= 1.0 and w > 0.15
    assert body["n_faces"] == 1 and body["skin_lightness"] > 35 and body["yaw_deg"] is not None
    assert body["ready"] == (body["hints"] == []) and {h["code"] for h in body["hints"]} <= set(HINTS)
    dark = client.post("/api/v1/me/preview-check", data=frame((40, 70, 120)),
                       headers={**patient, "Content-Type": "image/jpeg"}).get_json()
    assert dark["face_box"] is None and [h["code"] for h in dark["hints"]] == ["no_face"]
    refused = client.post("/api/v1/me/preview-check", data=b"\xff\xd8 not a jpeg",
                          headers={**patient, "Content-Type": "image/jpeg"})
    assert refused.status_code in (415, 422) and refused.mimetype == "application/problem+json"
    too_big = client.post("/api/v1/me/preview-check", data=b"\xff" * (600 * 1024),
                          headers={**patient, "Content-Type": "image/jpeg"})
    assert_problem(too_big, 413)


def test_camera_settings_are_stored_with_the_photo(app, client, world, headers_of):
    grant_photo_consent(app, world.patient, world.clinician_a)
    patient = headers_of("patient_user")
    conditions = {"exposureMode": "manual", "whiteBalanceMode": "manual", "colorTemperature": 5000,
                  "width": 1280, "height": 720, "exposureLocked": True}
    answer = upload(client, patient, world.patient.id, phone_jpeg(), course_id=world.course.id,
                    capture_conditions=json.dumps(conditions))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["capture_conditions"] == conditions
    with app.app_context():
        assert db.session.get(Photo, uuid.UUID(answer.get_json()["id"])).capture_conditions == conditions
    for bad in ({"deviceId": "abc"}, {"iso": float("nan")}, "not json", {"zoom": [1, 2]}):
        text = bad if isinstance(bad, str) else json.dumps(bad)
        refused = upload(client, patient, world.patient.id, phone_jpeg(), course_id=world.course.id,
                         capture_conditions=text)
        assert_problem(refused, 422, fields=("capture_conditions",))
