"""The bad-input battery, through the real upload and JSON endpoints.

Every refusal is a 4xx RFC 9457 problem with a clear message, and leaves no row, job or
file behind: each case counts the photo tables and lists every storage key before and
after, and ends with ``check-integrity`` passing.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from imaging.testing import synthetic
from tests.backend.clinical_helpers import assert_problem
from tests.backend.photo_helpers import face_photo, grant_photo_consent, greyscale_jpeg, phone_jpeg, phone_png, upload
from tests.hardening.helpers import holdings, integrity
from tests.hardening.hostile_files import (
    animated_png,
    cmyk_jpeg,
    corrupt_png,
    gif_html_polyglot,
    html_named_jpeg,
    huge_side_png,
    png_bomb_header,
    random_bytes,
    svg_named_jpeg,
)

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def consented(app, world) -> Any:
    grant_photo_consent(app, world.patient, world.clinician_a)
    return world


# ------------------------------------------------------------------ hostile files

def truncated_jpeg() -> bytes:
    data = phone_jpeg()
    return data[: len(data) // 2]


#: (case, body, Content-Type sent, expected status, expected problem type).
REFUSED_UPLOADS: list[tuple[str, Callable[[], bytes], str, int, str]] = [
    ("empty body", lambda: b"", "image/jpeg", 400, "empty-body"),
    ("truncated jpeg", truncated_jpeg, "image/jpeg", 422, "image-truncated-image"),
    ("corrupt png", corrupt_png, "image/png", 422, "image-corrupt-image"),
    ("text named jpg", lambda: b"just some text, not a photo\n" * 20, "image/jpeg", 415, "image-unsupported-format"),
    ("html named jpg", html_named_jpeg, "image/jpeg", 415, "image-unsupported-format"),
    ("svg named jpg", svg_named_jpeg, "image/jpeg", 415, "image-unsupported-format"),
    ("gif/html polyglot", gif_html_polyglot, "image/jpeg", 415, "image-unsupported-format"),
    ("random bytes", random_bytes, "application/octet-stream", 415, "image-unsupported-format"),
    ("png bomb 50000x50000", lambda: png_bomb_header(50_000, 50_000), "image/png", 422, "image-too-many-pixels"),
    ("20000 px side", huge_side_png, "image/png", 422, "image-too-many-pixels"),
    ("cmyk jpeg", lambda: cmyk_jpeg(face_photo().rgb), "image/jpeg", 422, "image-unsupported-colour"),
    ("greyscale jpeg", greyscale_jpeg, "image/jpeg", 422, "image-greyscale-image"),
    ("animated png", lambda: animated_png(face_photo().rgb), "image/png", 422, "image-animated-image"),
    ("jpeg sent as text/plain", phone_jpeg, "text/plain", 415, ""),
    ("jpeg sent as text/html", phone_jpeg, "text/html", 415, ""),
    ("jpeg sent as multipart", phone_jpeg, "multipart/form-data; boundary=x", 415, ""),
]


@pytest.mark.parametrize("case, body, content_type, status, type_", REFUSED_UPLOADS,
                         ids=[case[0] for case in REFUSED_UPLOADS])
def test_refused_direct_upload_leaves_nothing(app, client, consented, headers_of, case, body, content_type,
                                              status, type_):
    before = holdings(app)
    response = upload(client, headers_of("patient_user"), consented.patient.id, body(),
                      content_type=content_type, course_id=consented.course.id)
    problem = assert_problem(response, status)
    if type_:
        assert problem["type"].endswith(type_), problem
    assert problem["detail"] and len(problem["detail"]) < 300  # a sentence, not a traceback
    assert "Traceback" not in problem["detail"]
    assert holdings(app) == before
    assert integrity(app).ok


def test_oversized_body_is_413_and_leaves_nothing(app, client, consented, headers_of):
    app.config["MAX_CONTENT_LENGTH"] = 200_000  # the app fixture restores the config afterwards
    body = phone_jpeg() + b"\x00" * 200_001
    before = holdings(app)
    response = upload(client, headers_of("patient_user"), consented.patient.id, body, course_id=consented.course.id)
    problem = assert_problem(response, 413)
    assert "exceeds" in problem["detail"]
    assert holdings(app) == before
    assert integrity(app).ok


def test_two_phase_declared_too_large_is_413(app, client, consented, headers_of):
    before = holdings(app)
    response = client.post(f"/api/v1/patients/{consented.patient.id}/uploads", headers=headers_of("patient_user"),
                           json={"course_id": str(consented.course.id), "size_bytes": 10**12,
                                 "content_type": "image/jpeg"})
    assert_problem(response, 413, type_=None)
    assert holdings(app) == before


@pytest.mark.parametrize("stored, declared", [(b"", 1), (b"<html>not a photo</html>", 24)])
def test_two_phase_with_zero_or_hostile_bytes_leaves_nothing(app, client, consented, headers_of, stored, declared):
    """Zero bytes PUT (declared 1): 409/422; HTML PUT: 415 - and the staged bytes go too."""
    headers = headers_of("patient_user")
    created = client.post(f"/api/v1/patients/{consented.patient.id}/uploads", headers=headers,
                          json={"course_id": str(consented.course.id), "size_bytes": declared,
                                "content_type": "image/jpeg"})
    assert created.status_code == 201, created.get_json()
    upload_id, put = created.get_json()["id"], created.get_json()["put"]
    sent = client.put(put["url"], data=stored, headers={k: v for k, v in put["headers"].items()
                                                          if k.lower() != "content-length"})
    before = holdings(app)
    response = client.post(f"/api/v1/uploads/{upload_id}/complete", headers=headers)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    after = holdings(app)
    assert (after.photos, after.analyses, after.jobs) == (before.photos, before.analyses, before.jobs)
    assert not any(key.startswith("photos/") for key in after.keys)
    assert sent.status_code >= 200


def test_photo_with_appended_html_is_accepted_only_as_sanitised_pixels(app, client, consented, headers_of):
    """A JPEG/HTML polyglot (valid JPEG, script after EOI): stored bytes are re-encoded, no payload."""
    payload = b"<script>alert('polyglot')</script>"
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_jpeg() + payload,
                      course_id=consented.course.id)
    assert response.status_code == 201, response.get_json()
    photo_id = response.get_json()["id"]
    image = client.get(f"/api/v1/photos/{photo_id}/image", headers=headers_of("patient_user"))
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert payload not in image.get_data()
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert integrity(app).ok


def test_sixteen_bit_png_is_accepted_as_eight_bit(app, client, consented, headers_of):
    """16-bit is a legitimate photo: accepted, stored as a sanitised 8-bit PNG."""
    response = upload(client, headers_of("patient_user"), consented.patient.id,
                      synthetic.to_png(face_photo().rgb, bits=16), content_type="image/png",
                      course_id=consented.course.id)
    assert response.status_code == 201, response.get_json()
    image = client.get(f"/api/v1/photos/{response.get_json()['id']}/image", headers=headers_of("patient_user"))
    with Image.open(io.BytesIO(image.get_data())) as stored:
        assert stored.mode == "RGB"
    assert integrity(app).ok


# ------------------------------------------------------------------ names and paths

@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "..", "%2e%2e", "r%C3%A9dness", "redness%00.png",
                                  "%E2%80%AEgnp.ssendder", "a" * 300])
def test_overlay_names_cannot_traverse(app, client, consented, headers_of, name):
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_png(),
                      content_type="image/png", course_id=consented.course.id)
    photo_id = response.get_json()["id"]
    answer = client.get(f"/api/v1/photos/{photo_id}/overlays/{name}", headers=headers_of("patient_user"))
    assert 400 <= answer.status_code < 500
    assert answer.mimetype == "application/problem+json"


@pytest.mark.parametrize("token", ["../../../etc/passwd", "..%2F..%2Fsecret", "not-a-token", "é" * 40])
def test_local_upload_route_refuses_forged_tokens(app, client, consented, token):
    before = holdings(app)
    response = client.put(f"/api/v1/uploads/local/{token}", data=phone_jpeg(),
                          headers={"Content-Type": "image/jpeg"})
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"
    assert holdings(app) == before


@pytest.mark.parametrize("device", ["../../etc/passwd", "Pixel \u202e9", "📱" * 10, "<script>x</script>"])
def test_unicode_and_path_like_device_names_never_reach_storage_keys(app, client, consented, headers_of, device):
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_png(),
                      content_type="image/png", course_id=consented.course.id, device=device)
    assert response.status_code in (201, 422), response.get_json()
    after = holdings(app)
    assert all(".." not in key and device not in key for key in after.keys)
    assert integrity(app).ok


# ------------------------------------------------------------------ JSON bodies

def _json_cases(world) -> list[tuple[str, str, Any, int]]:
    """(name, path, raw body or JSON value, expected status) against real JSON endpoints."""
    uploads = f"/api/v1/patients/{world.patient.id}/uploads"
    good = {"course_id": str(world.course.id), "size_bytes": 1000, "content_type": "image/jpeg"}
    return [
        ("malformed json", uploads, b'{"course_id": ', 400),
        ("json array", uploads, [], 422),
        ("json string", uploads, "photo", 422),
        ("null body", uploads, None, 422),
        ("unknown field", uploads, {**good, "is_admin": True}, 422),
        ("size as string", uploads, {**good, "size_bytes": "1000"}, 422),
        ("size zero", uploads, {**good, "size_bytes": 0}, 422),
        ("size negative", uploads, {**good, "size_bytes": -5}, 422),
        ("size float", uploads, {**good, "size_bytes": 1.5}, 422),
        ("size huge int", uploads, {**good, "size_bytes": 10**40}, 413),
        ("course not uuid", uploads, {**good, "course_id": "../../x"}, 422),
        ("content type svg", uploads, {**good, "content_type": "image/svg+xml"}, 422),
        ("captured_at garbage", uploads, {**good, "captured_at": "yesterday"}, 422),
        ("captured_at year 99999", uploads, {**good, "captured_at": "99999-01-01T00:00:00Z"}, 422),
        ("view unknown", uploads, {**good, "view": "back"}, 422),
        ("device too long", uploads, {**good, "device": "x" * 10_000}, 422),
        ("make_up not a boolean", uploads, {**good, "make_up": "perhaps"}, 422),
        ("deeply nested", uploads, {**good, "device": [[[[[[[[[["x"]]]]]]]]]]}, 422),
    ]


def test_bad_json_bodies_are_problems_and_leave_nothing(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    before = holdings(app)
    for name, path, body, status in _json_cases(consented):
        if isinstance(body, bytes):
            response = client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
        else:
            response = client.post(path, json=body, headers=headers)
        assert response.status_code == status, (name, response.get_data(as_text=True))
        problem = assert_problem(response, status)
        assert problem["detail"], name
        if status == 422 and name not in ("json array", "json string", "null body"):
            assert problem.get("errors"), (name, problem)
    assert holdings(app) == before
    assert integrity(app).ok


@pytest.mark.parametrize("query", [
    {"course_id": "not-a-uuid"}, {"view": "sideways"}, {"captured_at": "2026-13-45T99:00:00Z"},
    {"make_up": "perhaps"}, {"device": "d" * 1000},
])
def test_bad_upload_query_is_422_and_leaves_nothing(app, client, consented, headers_of, query):
    before = holdings(app)
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_jpeg(),
                      **{"course_id": str(consented.course.id), **query})
    problem = assert_problem(response, 422)
    assert problem.get("errors"), problem
    assert holdings(app) == before


@pytest.mark.parametrize("path_template", [
    "/api/v1/patients/{bad}", "/api/v1/photos/{bad}", "/api/v1/photos/{bad}/image", "/api/v1/uploads/{bad}",
])
@pytest.mark.parametrize("bad", ["not-a-uuid", "1", "../etc", "00000000-0000-0000-0000-00000000000g"])
def test_malformed_ids_are_404_problems(client, consented, headers_of, path_template, bad):
    response = client.get(path_template.format(bad=bad), headers=headers_of("clinician_a"))
    assert_problem(response, 404)
