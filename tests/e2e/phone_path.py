"""The phone's path through the API, driven over any transport (Flask test client or HTTP).

:func:`walk_phone_path` does what the app and the clinic do: a clinician signs in, creates
the patient, a course and the clinical-photo consent, invites the patient; the patient
enrols, signs in, uploads a baseline JPEG (EXIF orientation + GPS, direct upload), a 2-week
PNG (two-phase upload to the signed URL) and a 1-month HEIC (direct, octet-stream), reads the
quality feedback, waits for the analyses by polling the job status, and reads the stored
measurements of each milestone and the stored bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image, ImageOps

from tests.backend.photo_helpers import exif_has_gps, phone_heic, phone_jpeg, phone_png

#: Capture times (app-reported) of the follow-ups, inside the default schedule's windows.
TWO_WEEKS_AT = dt.datetime(2026, 3, 15, 10, 0, tzinfo=dt.timezone.utc)
ONE_MONTH_AT = dt.datetime(2026, 3, 31, 10, 0, tzinfo=dt.timezone.utc)
COURSE = {
    "indication": "photoaging", "product_name": "Exo Serum", "exosome_source": "msc_umbilical_cord",
    "concentration_value": 5e9, "concentration_unit": "particles_per_ml",
    "delivery": "topical_after_microneedling", "treated_regions": ["forehead", "left_cheek", "right_cheek"],
    "baseline_date": "2026-03-01",
}
PATIENT = {"full_name": "Phone Path", "date_of_birth": "1985-06-15", "sex": "female", "fitzpatrick_type": 3}
PATIENT_LOGIN = ("phone.path@example.org", "phone-path-password-1")


@dataclass
class Reply:
    """An HTTP response: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Transport(Protocol):
    """Sends one request; ``url`` is an API path (``/api/v1/...``) or an absolute URL."""

    def __call__(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                 json_body: Any = None, data: bytes | None = None) -> Reply: ...


def flask_transport(client) -> Transport:
    """Transport over a Flask test client."""

    def send(method, url, *, headers=None, json_body=None, data=None):
        response = client.open(url, method=method, headers=headers or {}, json=json_body, data=data)
        return Reply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.data)

    return send


def http_transport(base_url: str, timeout_s: float = 60.0) -> Transport:
    """Transport over real HTTP (urllib) to ``base_url`` for API paths."""

    def send(method, url, *, headers=None, json_body=None, data=None):
        headers = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        full = url if url.startswith("http") else base_url + url
        request = urllib.request.Request(full, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())

    return send


def expect(reply: Reply, status: int) -> Any:
    """Assert the status and return the JSON body (or None for an empty body)."""
    assert reply.status == status, (reply.status, reply.body[:500])
    return reply.json() if reply.body and reply.headers.get("content-type", "").startswith("application") else None


@dataclass
class PhonePathResult:
    """What the walk produced, for the caller's own checks."""

    patient_id: str
    course_id: str
    photos: dict[str, dict[str, Any]] = field(default_factory=dict)  # milestone name -> photo detail
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)  # milestone name -> upload answer
    downloads: dict[str, bytes] = field(default_factory=dict)  # milestone name -> stored bytes


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def login(send: Transport, email: str, password: str) -> dict[str, str]:
    return bearer(expect(send("POST", "/api/v1/auth/login", json_body={"email": email, "password": password}), 200))


def upload_direct(send: Transport, headers: dict[str, str], patient_id: str, data: bytes, content_type: str,
                  **query: Any) -> dict[str, Any]:
    params = urllib.parse.urlencode({k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in query.items()})
    reply = send("POST", f"/api/v1/patients/{patient_id}/photos?{params}", data=data,
                 headers={**headers, "Content-Type": content_type, "Idempotency-Key": f"direct-{query.get('view')}-{len(data)}"})
    return expect(reply, 201)


def upload_two_phase(send: Transport, headers: dict[str, str], patient_id: str, data: bytes, content_type: str,
                     **metadata: Any) -> dict[str, Any]:
    body = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in metadata.items()}
    created = expect(send("POST", f"/api/v1/patients/{patient_id}/uploads", headers=headers,
                          json_body={**body, "size_bytes": len(data), "content_type": content_type}), 201)
    put = created["put"]
    stored = send(put["method"], put["url"], headers=put["headers"], data=data)
    assert stored.status in (200, 204), (stored.status, stored.body[:300])
    return expect(send("POST", f"/api/v1/uploads/{created['id']}/complete", headers=headers), 201)


def wait_for_jobs(send: Transport, headers: dict[str, str], photo_ids: list[str], deadline_s: float) -> None:
    """Poll each photo's job until done (fails on ``failed`` or at the deadline)."""
    deadline = time.monotonic() + deadline_s
    pending = list(photo_ids)
    while pending:
        job = expect(send("GET", f"/api/v1/photos/{pending[0]}/job", headers=headers), 200)
        assert job["status"] != "failed", job
        if job["status"] == "done":
            pending.pop(0)
            continue
        assert time.monotonic() < deadline, f"analysis not done within {deadline_s} s: {job}"
        # A network round trip per poll; the embedded inline backend never gets here.
        time.sleep(0.5)


def enrol_patient(send: Transport, staff: dict[str, str], patient_body: dict[str, Any],
                  credentials: tuple[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """As a clinician: create the patient, a course (:data:`COURSE`) and the clinical-photo
    consent, invite the patient; as the patient: enrol with ``credentials`` and sign in.

    Returns
    -------
    (patient, course, phone headers)
    """
    patient = expect(send("POST", "/api/v1/patients", headers=staff, json_body=patient_body), 201)
    course = expect(send("POST", f"/api/v1/patients/{patient['id']}/courses", headers=staff, json_body=COURSE), 201)
    expect(send("POST", f"/api/v1/patients/{patient['id']}/consents", headers=staff,
                json_body={"scope": "clinical_photo", "action": "grant", "version": "v1"}), 201)
    invitation = expect(send("POST", f"/api/v1/patients/{patient['id']}/invitations", headers=staff, json_body={}), 201)
    email, password = credentials
    expect(send("POST", "/api/v1/auth/enrol", json_body={"code": invitation["code"], "email": email,
                                                         "password": password}), 201)
    return patient, course, login(send, email, password)


def walk_phone_path(send: Transport, clinician: tuple[str, str], *, analysis_deadline_s: float = 300.0) -> PhonePathResult:
    """Walk the phone path end to end and check every answer on the way.

    Parameters
    ----------
    send : Transport
    clinician : (email, password)
        A clinician account of a clinic.
    analysis_deadline_s : float
        Longest wait for all three analyses, seconds.
    """
    staff = login(send, *clinician)
    patient, course, phone = enrol_patient(send, staff, PATIENT, PATIENT_LOGIN)
    result = PhonePathResult(patient_id=patient["id"], course_id=course["id"])

    result.uploads["baseline"] = upload_direct(send, phone, patient["id"], phone_jpeg(), "image/jpeg",
                                               course_id=course["id"], view="front", make_up="false")
    result.uploads["2_weeks"] = upload_two_phase(send, phone, patient["id"], phone_png(), "image/png",
                                                 course_id=course["id"], view="front", captured_at=TWO_WEEKS_AT)
    result.uploads["1_month"] = upload_direct(send, phone, patient["id"], phone_heic(), "application/octet-stream",
                                              course_id=course["id"], view="front", captured_at=ONE_MONTH_AT)
    for milestone, answer in result.uploads.items():
        # Immediate quality feedback with the assigned milestone and the analysis job.
        assert answer["quality"]["ok"] is True, answer["quality"]
        assert answer["milestone_name"] == milestone and answer["out_of_window"] is False
        assert answer["job"]["status"] in {"queued", "running", "done"}

    wait_for_jobs(send, phone, [a["id"] for a in result.uploads.values()], analysis_deadline_s)
    listing = expect(send("GET", f"/api/v1/patients/{patient['id']}/photos", headers=phone), 200)
    by_milestone = {item["milestone_name"]: item for item in listing["items"]}
    assert set(by_milestone) == {"baseline", "2_weeks", "1_month"}
    baseline_id = result.uploads["baseline"]["id"]
    for milestone, photo in by_milestone.items():
        analysis = photo["latest_analysis"]
        assert analysis is not None and analysis["face_found"] is True, (milestone, photo)
        values = {(m["region"], m["measure"]): m["value"] for m in analysis["measurements"]}
        for measure in ("redness", "pigmentation", "texture", "a_star"):
            assert values[("all_skin", measure)] is not None, (milestone, measure)
        assert analysis["baseline_photo_id"] == (None if milestone == "baseline" else baseline_id)
        result.photos[milestone] = photo
        image = send("GET", f"/api/v1/photos/{photo['id']}/image", headers=phone)
        assert image.status == 200
        result.downloads[milestone] = image.body
        assert not exif_has_gps(image.body)
        with Image.open(io.BytesIO(image.body)) as stored:
            assert ImageOps.exif_transpose(stored).size == (600, 800)  # shown upright
    schedule = expect(send("GET", f"/api/v1/courses/{course['id']}/schedule", headers=phone), 200)
    completed = {item["name"] for item in schedule.get("completed", [])}
    assert {"baseline", "2_weeks", "1_month"} <= completed, schedule
    return result
