"""Uploading photos: direct and two-phase, quality feedback, sanitising, milestones, refusals."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import pytest
from PIL import Image, ImageOps

from backend.extensions import db
from backend.models.clinical import Milestone
from backend.models.jobs import Job
from backend.models.photos import Photo, PhotoUpload
from backend.storage import current_storage
from imaging.testing import synthetic
from tests.backend.clinical_helpers import assert_problem
from tests.backend.photo_helpers import (
    BASELINE_CAPTURE,
    TWO_WEEKS_CAPTURE,
    blurred_jpeg,
    exif_has_gps,
    grant_photo_consent,
    greyscale_jpeg,
    phone_heic,
    phone_jpeg,
    phone_png,
    upload,
)
from tests.hardening.hostile_files import png_bomb_header

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def consented(app, world) -> Any:
    """The world, with ``world.patient``'s clinical-photo consent granted."""
    grant_photo_consent(app, world.patient, world.clinician_a)
    return world


def stored_bytes(app, photo_id: str) -> bytes:
    with app.app_context():
        photo = db.session.get(Photo, uuid.UUID(str(photo_id)))
        with current_storage().open(photo.storage_key) as stream:
            return stream.read()


def storage_keys(app, patient_id) -> list[str]:
    with app.app_context():
        return list(current_storage().iter_keys(f"photos/{patient_id}/"))


def test_direct_upload_sanitises_assigns_milestone_and_analyses(app, client, consented, headers_of):
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_jpeg(),
                      course_id=consented.course.id, make_up=False, device="Pixel 9")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["quality"]["ok"] is True and body["quality"]["problems"] == []
    assert body["usable"] is True and body["counts"] is True
    assert body["milestone_name"] == "baseline" and body["out_of_window"] is False
    assert body["capture_time_source"] == "exif"
    assert body["captured_at"].startswith("2026-03-01T08:30:00")
    assert body["content_type"] == "image/jpeg"
    # EXIF orientation 6 stored sideways: the stored copy is upright (portrait).
    assert (body["width"], body["height"]) == (600, 800)
    assert response.headers["Location"].endswith(f"/photos/{body['id']}")
    # Inline job backend: the analysis ran after commit.
    detail = client.get(f"/api/v1/photos/{body['id']}", headers=headers_of("patient_user")).get_json()
    assert detail["job"]["status"] == "done"
    analysis = detail["latest_analysis"]
    assert analysis["face_found"] is True
    regions = {m["region"] for m in analysis["measurements"]}
    assert {"all_skin", "forehead"} <= regions
    assert {"redness", "pigment_spots"} <= set(analysis["overlays"]) or analysis["overlays"]

    stored = stored_bytes(app, body["id"])
    assert not exif_has_gps(stored)
    assert synthetic.SECRET_SERIAL.encode() not in stored
    assert synthetic.SECRET_COMMENT.encode() not in stored
    with Image.open(io.BytesIO(stored)) as image:  # the phone's sideways pixels, shown upright
        assert ImageOps.exif_transpose(image).size == (600, 800) and dict(image.getexif()) == {0x0112: 6}
    with app.app_context():
        milestone = db.session.get(Milestone, uuid.UUID(body["milestone_id"]))
        assert milestone.completed_via == "photo"
        assert str(milestone.completed_source_id) == body["id"]


def test_png_and_heic_are_accepted_and_stored_without_metadata(app, client, consented, headers_of):
    headers = headers_of("clinician_a")
    png = upload(client, headers, consented.patient.id, phone_png(), content_type="image/png",
                 course_id=consented.course.id, captured_at=TWO_WEEKS_CAPTURE)
    assert png.status_code == 201, png.get_json()
    assert png.get_json()["milestone_name"] == "2_weeks"
    assert png.get_json()["capture_time_source"] == "app"
    heic = upload(client, headers, consented.patient.id, phone_heic(), content_type="application/octet-stream",
                  course_id=consented.course.id, view="left")
    assert heic.status_code == 201, heic.get_json()
    body = heic.get_json()
    # No EXIF time in pillow-heif output and no app time: the upload time (clock) is used.
    assert body["capture_time_source"] in {"exif", "upload"}
    stored = stored_bytes(app, body["id"])
    assert not exif_has_gps(stored)
    assert synthetic.SECRET_SERIAL.encode() not in stored


def test_unusable_photo_is_kept_with_problems(client, consented, headers_of):
    response = upload(client, headers_of("patient_user"), consented.patient.id, blurred_jpeg(),
                      course_id=consented.course.id)
    assert response.status_code == 201
    body = response.get_json()
    assert body["usable"] is False and body["counts"] is False
    codes = [p["code"] for p in body["quality"]["problems"]]
    assert "blurred" in codes
    problem = body["quality"]["problems"][0]
    assert problem["message"] and "threshold" in problem and "value" in problem


def test_a_colour_chart_in_the_frame_makes_a_cast_it_corrects_usable_at_upload(client, consented, headers_of):
    """The upload gate judges the light's colour on the chart-corrected photo (imaging.quality.judge_photo)."""
    headers = headers_of("patient_user")
    photo = synthetic.sharp_phone_photo((1512, 2016))
    cast = (0.8, 1.3, 0.8)  # a green light
    plain = upload(client, headers, consented.patient.id,
                   synthetic.to_jpeg(synthetic.white_balance(photo, cast).rgb, captured_at=BASELINE_CAPTURE),
                   course_id=consented.course.id).get_json()
    assert plain["usable"] is False
    assert "coloured_lighting" in [p["code"] for p in plain["quality"]["problems"]]
    charted = upload(client, headers, consented.patient.id, synthetic.colorchecker_photo(cast, photo=photo),
                     course_id=consented.course.id).get_json()
    assert charted["usable"] is True, charted["quality"]["problems"]


def test_retake_supersedes_but_keeps_the_earlier_photo(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    first = upload(client, headers, consented.patient.id, blurred_jpeg(), course_id=consented.course.id).get_json()
    second = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id).get_json()
    listing = client.get(f"/api/v1/patients/{consented.patient.id}/photos", headers=headers).get_json()
    by_id = {item["id"]: item for item in listing["items"]}
    assert set(by_id) == {first["id"], second["id"]}
    assert by_id[first["id"]]["superseded_by_id"] == second["id"]
    assert by_id[second["id"]]["superseded_by_id"] is None
    assert by_id[second["id"]]["counts"] is True and by_id[first["id"]]["counts"] is False


def test_out_of_window_capture_is_flagged(client, consented, headers_of):
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_jpeg(),
                      course_id=consented.course.id, captured_at=dt.datetime(2026, 3, 8, tzinfo=dt.timezone.utc))
    body = response.get_json()
    assert response.status_code == 201
    assert body["out_of_window"] is True and body["milestone_id"] is None and body["counts"] is False


@pytest.mark.parametrize(("data", "content_type", "status", "code"), [
    (b"%PDF-1.7 not an image", "application/octet-stream", 415, "unsupported_format"),
    (png_bomb_header(), "image/png", 422, "too_many_pixels"),
    ("greyscale", "image/jpeg", 422, "greyscale_image"),
])
def test_refused_images_leave_nothing_behind(app, client, consented, headers_of, data, content_type, status, code):
    body = greyscale_jpeg() if data == "greyscale" else data
    response = upload(client, headers_of("patient_user"), consented.patient.id, body,
                      content_type=content_type, course_id=consented.course.id)
    problem = assert_problem(response, status)
    assert problem["code"] == code
    with app.app_context():
        assert db.session.query(Photo).count() == 0
        assert db.session.query(Job).count() == 0
    assert storage_keys(app, consented.patient.id) == []


def test_body_media_type_and_size_limits(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    assert_problem(upload(client, headers, consented.patient.id, phone_jpeg(), content_type="text/plain",
                          course_id=consented.course.id), 415)
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert_problem(upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id), 413)
    with app.app_context():
        assert db.session.query(Photo).count() == 0


def test_empty_body_is_a_bad_request(client, consented, headers_of):
    response = upload(client, headers_of("patient_user"), consented.patient.id, b"", course_id=consented.course.id)
    assert_problem(response, 400, type_="empty-body")


def test_metadata_is_validated(client, consented, headers_of):
    headers = headers_of("patient_user")
    response = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id,
                      view="top", captured_at="yesterday")
    problem = assert_problem(response, 422)
    assert {"view", "captured_at"} <= set(problem["errors"])
    other_course = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course_b.id)
    assert_problem(other_course, 404)


def test_upload_needs_clinical_photo_consent(client, world, headers_of):
    response = upload(client, headers_of("patient_user"), world.patient.id, phone_jpeg(), course_id=world.course.id)
    assert_problem(response, 409, type_="consent-required")


def test_idempotent_retry_replays_and_stores_once(app, client, consented, headers_of):
    headers = {**headers_of("patient_user"), "Idempotency-Key": "photo-1"}
    first = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id)
    again = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    other_view = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id,
                        view="left")
    assert_problem(other_view, 422, type_="idempotency-key-reused")
    other_bytes = upload(client, headers, consented.patient.id, phone_png(), content_type="image/png",
                         course_id=consented.course.id)
    assert_problem(other_bytes, 422)
    with app.app_context():
        assert db.session.query(Photo).count() == 1
    assert len([k for k in storage_keys(app, consented.patient.id) if k.endswith("original.jpg")]) == 1


def test_two_phase_upload(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    data = phone_jpeg(captured_at=None)
    created = client.post(f"/api/v1/patients/{consented.patient.id}/uploads", headers=headers, json={
        "course_id": str(consented.course.id), "captured_at": TWO_WEEKS_CAPTURE.isoformat(),
        "view": "front", "size_bytes": len(data), "content_type": "image/jpeg"})
    assert created.status_code == 201, created.get_json()
    upload_body = created.get_json()
    put = upload_body["put"]
    early = client.post(f"/api/v1/uploads/{upload_body['id']}/complete", headers=headers)
    assert_problem(early, 409, type_="upload-incomplete")
    stored = client.put(put["url"], data=data, headers=put["headers"])
    assert stored.status_code == 204, stored.get_data(as_text=True)
    done = client.post(f"/api/v1/uploads/{upload_body['id']}/complete", headers=headers)
    assert done.status_code == 201, done.get_json()
    photo = done.get_json()
    assert photo["milestone_name"] == "2_weeks" and photo["quality"]["ok"] is True
    assert not exif_has_gps(stored_bytes(app, photo["id"]))
    repeat = client.post(f"/api/v1/uploads/{upload_body['id']}/complete", headers=headers)
    assert repeat.status_code == 200 and repeat.get_json()["id"] == photo["id"]
    with app.app_context():
        staged = db.session.get(PhotoUpload, uuid.UUID(upload_body["id"]))
        assert staged.status == "completed"
        assert not current_storage().exists(staged.staging_key)
    # Another user cannot complete (or see) someone else's upload.
    assert_problem(client.post(f"/api/v1/uploads/{upload_body['id']}/complete",
                               headers=headers_of("clinician_a")), 404)


def test_two_phase_upload_refuses_wrong_bytes(app, client, consented, headers_of):
    headers = headers_of("clinician_a")
    data = b"GIF89a" + b"\0" * 200
    created = client.post(f"/api/v1/patients/{consented.patient.id}/uploads", headers=headers, json={
        "course_id": str(consented.course.id), "size_bytes": len(data), "content_type": "image/png"}).get_json()
    client.put(created["put"]["url"], data=data, headers=created["put"]["headers"])
    response = client.post(f"/api/v1/uploads/{created['id']}/complete", headers=headers)
    assert_problem(response, 415)
    with app.app_context():
        assert db.session.query(Photo).count() == 0
        assert db.session.get(PhotoUpload, uuid.UUID(created["id"])).status == "pending"


def test_follow_up_gates_read_the_baseline_reference_once_per_process(app, client, consented, headers_of,
                                                                     monkeypatch):
    from imaging.analysis import BaselineReference

    headers = headers_of("patient_user")
    baseline = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id,
                      captured_at=BASELINE_CAPTURE)
    assert baseline.status_code == 201, baseline.get_json()
    parsed: list[int] = []
    real = BaselineReference.geometry_from_bytes
    monkeypatch.setattr(BaselineReference, "geometry_from_bytes",
                        staticmethod(lambda data: parsed.append(len(data)) or real(data)))
    for _ in range(3):  # a follow-up and two retakes: each gate compares the framing with the baseline's
        follow_up = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id,
                           captured_at=TWO_WEEKS_CAPTURE)
        assert follow_up.status_code == 201, follow_up.get_json()
        assert follow_up.get_json()["quality"]["ok"] is True
    assert len(parsed) == 1  # fetched and parsed for the first gate only
