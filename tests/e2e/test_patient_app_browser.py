"""Browser tests of the patient app (/app/): the system Chromium with a fake camera.

The camera is Chromium's fake capture device fed from a Y4M video that the test writes from a
real face of :mod:`imaging.testing.faces` (the first portrait whose camera-like frame passes the
preview check and the quality gate): one video in good light, one much darker (a dim room). The
server is the real app on a loopback port over a migrated SQLite database, with a fake clock the
test moves from the baseline day to the 2-week check-in; the browser's clock is set to the same
days. Screenshots of every step are saved (the path is printed).

1. The journey: invitation link -> enrolment -> consent -> guided baseline capture -> (14 days
   later, in the dim room) the follow-up with the baseline as a ghost, refused as too dark, and
   its retake screen -> (at the window) the retake accepted -> progress: words, charts,
   before/after, own rating, an adverse-event report -> calendar feed -> without network the
   app still opens from the service worker's cache. axe-core finds no serious or critical
   violation on the pages; the strict CSP reports nothing.
2. The network goes away while a photo is uploading (the server stored it, the answer is
   lost): the photo waits on the phone, the network comes back, it is sent again with the same
   Idempotency-Key, and the patient has exactly one photo.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.e2e.browser import assert_accessible, launch, requires_chromium, serve

pytestmark = requires_chromium

PHONE = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "device_scale_factor": 2}
BASELINE_DAY = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
FOLLOW_UP_DAY = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc)
PASSWORD = "my long phone password"
#: Generous: photo uploads are analysed inline (several seconds on a loaded 2-core machine).
STEP_TIMEOUT_MS = 90_000


def camera_frame() -> np.ndarray:
    """640x480 RGB frame of the first portrait that the preview calls ready and the gate accepts."""
    from bench.preview import frame_of
    from imaging.decode import decode_image
    from imaging.preview import preview_check
    from imaging.quality import quality_gate
    from imaging.testing import faces

    faces.fetch()
    for entry in faces.portraits():
        data = frame_of(entry, face_fraction=0.45, quality=95)
        if preview_check(decode_image(data, min_long_side=640).rgb).ready and quality_gate(data).ok:
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    pytest.fail("no portrait of the face set makes a usable camera frame")


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 30) -> Path:
    """A YUV4MPEG2 video (C420jpeg: full-range BT.601, chroma at half size) repeating one frame."""
    height, width = rgb.shape[:2]
    y, cb, cr = Image.fromarray(rgb).convert("YCbCr").split()
    half = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(half, Image.BOX).tobytes() + cr.resize(half, Image.BOX).tobytes()
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + planes)
    return path


def fake_camera(video: Path) -> list[str]:
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("camera")
    frame = camera_frame()
    dim = (frame.astype(np.float32) * 0.18).round().astype(np.uint8)
    return SimpleNamespace(window=write_y4m(root / "window.y4m", frame), dim=write_y4m(root / "dim.y4m", dim))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[SimpleNamespace]:

    from backend import create_app
    from backend.migrations import upgrade
    from tests import factories
    from tests.backend.clock import FakeClock

    root = tmp_path_factory.mktemp("patient-app")
    url = f"sqlite:///{root / 'skintrack.sqlite3'}"
    upgrade(url)
    clock = FakeClock(BASELINE_DAY)
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "inline",
                      "SECRET_KEY": os.urandom(32).hex(), "LOG_LEVEL": "WARNING", "CLOCK": clock,
                      "RATELIMIT_DEFAULT": "100000 per minute"})
    clinic = factories.make_clinic(app, "App Clinic")
    clinician = factories.make_user(app, "clinician", clinic)
    with serve(app, "patient-app-server") as base:
        app.config["PUBLIC_BASE_URL"] = base
        yield SimpleNamespace(app=app, base=base, clock=clock, client=app.test_client(),
                              staff=lambda: factories.auth_headers(app, clinician))  # on the current clock


@pytest.fixture(scope="module")
def playwright():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as running:
        yield running


@pytest.fixture
def shots(tmp_path_factory, request) -> Iterator:
    folder = tmp_path_factory.mktemp(f"screens-{request.node.name[:30]}")
    counter = iter(range(1, 100))

    def shot(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{next(counter):02d}-{name}.png"), full_page=True)

    yield shot
    print(f"screenshots in {folder}")


def api(server, method: str, path: str, headers: dict, body=None):
    response = server.client.open(path, method=method, headers=headers, json=body)
    assert response.status_code < 300, (path, response.get_data(as_text=True)[:300])
    return response.get_json()


def new_patient(server, name: str, baseline: dt.date) -> SimpleNamespace:
    """As the clinician: a patient with a course starting on ``baseline`` and an invitation."""
    from tests.e2e.phone_path import COURSE

    staff = server.staff()
    patient = api(server, "POST", "/api/v1/patients", staff,
                  {"full_name": name, "date_of_birth": "1984-02-03", "sex": "female", "fitzpatrick_type": 3})
    course = api(server, "POST", f"/api/v1/patients/{patient['id']}/courses", staff,
                 {**COURSE, "baseline_date": baseline.isoformat()})
    invitation = api(server, "POST", f"/api/v1/patients/{patient['id']}/invitations", staff, {})
    return SimpleNamespace(patient=patient, course=course, invitation=invitation)


def phone(browser, server, when: dt.datetime, state=None, **options):
    context = browser.new_context(**PHONE, storage_state=state, **options)
    context.clock.set_fixed_time(when)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return context, page


def photos_of(server, patient_id: str) -> list[dict]:
    from backend.extensions import db
    from backend.models.photos import Photo

    with server.app.app_context():
        rows = db.session.query(Photo).filter(Photo.patient_id == uuid.UUID(patient_id)).order_by(Photo.created_at).all()
        return [{"milestone": p.milestone.name if p.milestone else None, "usable": p.usable,
                 "conditions": p.capture_conditions, "codes": [q["code"] for q in p.quality["problems"]]}
                for p in rows]


def test_invitation_to_progress_with_guided_capture(server, videos, playwright, shots):
    server.clock.current = BASELINE_DAY
    invited = new_patient(server, "App Journey", BASELINE_DAY.date())
    window = launch(playwright, fake_camera(videos.window))
    dim_room = launch(playwright, fake_camera(videos.dim))
    try:
        # -- enrol from the invitation link (the token is in the fragment, then dropped)
        context, page = phone(window, server, BASELINE_DAY)
        page.goto(invited.invitation["link"])
        page.wait_for_selector("text=Welcome to skintrack")
        assert "enrol=" not in page.url
        page.fill("#f-email", "journey@example.org")
        page.fill("#f-password", PASSWORD)
        page.fill("#f-password_again", PASSWORD)
        assert_accessible(page, "enrol")
        shots(page, "enrol")
        page.click("text=Create my account")

        # -- consent, in plain words, recorded with its version
        photos_card = page.wait_for_selector("section[data-scope=clinical_photo]")
        assert_accessible(page, "consents")
        photos_card.query_selector("button").click()
        page.wait_for_selector("section[data-scope=clinical_photo] .ok")
        assert "2026-12-app-1" in page.inner_text("section[data-scope=clinical_photo]")
        shots(page, "consents")
        page.click("text=Continue")

        # -- guided baseline capture: hints, countdown, immediate quality answer
        page.click("text=Take baseline photos")
        page.wait_for_selector("#hints[data-codes]")
        shots(page, "baseline-framing")
        page.wait_for_selector("#quality-ok", timeout=STEP_TIMEOUT_MS)
        assert_accessible(page, "baseline accepted")
        shots(page, "baseline-accepted")
        state = context.storage_state()
        assert not page.errors, page.errors
        context.close()

        # -- two weeks later, in a dim room: ghost overlay, live "too dark", refused photo, retake
        server.clock.current = FOLLOW_UP_DAY
        context, page = phone(dim_room, server, FOLLOW_UP_DAY, state)
        page.goto(f"{server.base}/app/#/")
        page.click("text=Take 2 weeks photos")  # the expired access token is refreshed on the way
        page.wait_for_function("() => { const g = document.getElementById('ghost');"
                               " return g && g.complete && g.naturalWidth > 0; }")
        page.wait_for_selector("#hints[data-codes~=too_dark]", timeout=STEP_TIMEOUT_MS)
        shots(page, "follow-up-ghost-too-dark")
        page.click("text=Take photo now")
        page.wait_for_selector("#quality-refused", timeout=STEP_TIMEOUT_MS)
        assert page.query_selector("#problems li[data-code=underexposed]") is not None
        assert_accessible(page, "refused photo")
        shots(page, "follow-up-refused")
        page.click("#retake")
        page.wait_for_selector("#camera video")
        page.wait_for_selector("#hints[data-codes]")
        shots(page, "retake-framing")
        state = context.storage_state()
        context.close()

        # -- the retake by the window: accepted, then progress
        context, page = phone(window, server, FOLLOW_UP_DAY, state)
        page.goto(f"{server.base}/app/#/")
        page.click("text=Take 2 weeks photos")
        page.wait_for_selector("#ghost")
        page.wait_for_selector("#quality-ok", timeout=STEP_TIMEOUT_MS)
        shots(page, "follow-up-accepted")
        page.click("text=See my progress")
        page.wait_for_selector("#summary-words", timeout=STEP_TIMEOUT_MS)
        page.wait_for_function("() => [...document.querySelectorAll('#before-after img')]"
                               ".every(e => e.complete && e.naturalWidth > 0)")
        assert len(page.query_selector_all("#before-after img")) == 2
        page.check("input[name=gais][value='2']")
        page.select_option("#f-satisfaction", "8")
        page.click("text=Save my rating")
        page.wait_for_selector("#own-ratings >> text=Much improved, satisfaction 8/10")
        page.select_option("#f-event_type", "erythema")
        page.click("text=Tell my clinic")
        page.wait_for_selector("#adverse-form >> text=Your clinic has been told")
        assert_accessible(page, "progress")
        shots(page, "progress")

        # -- calendar feed: a webcal address whose https twin serves the windows
        page.click("nav >> text=More")
        page.click("#feed-create")
        webcal = page.get_attribute("#webcal", "href")
        assert webcal.startswith("webcal://127.0.0.1")
        with urllib.request.urlopen(page.inner_text("#feed-url"), timeout=30) as feed:
            assert b"BEGIN:VEVENT" in feed.read()
        assert_accessible(page, "more")
        shots(page, "calendar")
        assert not page.errors, page.errors

        # -- without network the installed app still opens (the service worker's shell)
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        context.set_offline(True)
        page.reload()
        page.wait_for_selector("#network:not([hidden])")
        page.wait_for_selector("#waiting-section")
        shots(page, "offline-shell")
        context.close()
    finally:
        window.close()
        dim_room.close()

    photos = photos_of(server, invited.patient["id"])
    assert [(p["milestone"], p["usable"]) for p in photos] == [("baseline", True), ("2_weeks", False), ("2_weeks", True)]
    assert "underexposed" in photos[1]["codes"]
    assert photos[0]["conditions"]["width"] == 640 and photos[0]["conditions"]["height"] == 480
    assert "deviceId" not in photos[0]["conditions"]


def test_photo_taken_while_the_network_drops_is_uploaded_exactly_once(server, videos, playwright, shots):
    now = server.clock.current
    invited = new_patient(server, "App Offline", now.date())
    email = "offline@example.org"
    tokens = server.client.post("/api/v1/auth/enrol", json={"code": invited.invitation["code"], "email": email,
                                                          "password": PASSWORD}).get_json()
    api(server, "POST", f"/api/v1/patients/{invited.patient['id']}/consents",
        {"Authorization": f"Bearer {tokens['access_token']}"}, {"scope": "clinical_photo", "action": "grant",
                                                              "version": "2026-12-app-1"})
    state = {"cookies": [], "origins": [{"origin": server.base, "localStorage": [
        {"name": "skintrack.tokens", "value": json.dumps(tokens)}]}]}
    browser = launch(playwright, fake_camera(videos.window))
    try:
        # Service workers would hide the page's requests from the route below.
        context, page = phone(browser, server, now, state, service_workers="block")
        uploads: list[str] = []

        def lose_the_answer(route):
            uploads.append(route.request.headers["idempotency-key"])
            if len(uploads) == 1:
                route.fetch()  # the server stores the photo ...
                context.set_offline(True)  # ... and the network drops before the answer arrives
                route.abort("internetdisconnected")
            else:
                route.continue_()

        page.route("**/api/v1/patients/*/photos?*", lose_the_answer)
        page.goto(f"{server.base}/app/#/")
        page.click("text=Take baseline photos")
        page.wait_for_selector("#queued", timeout=STEP_TIMEOUT_MS)
        page.wait_for_selector("#waiting li")
        assert len(page.query_selector_all("#waiting li")) == 1
        assert page.is_visible("#network")
        shots(page, "offline-waiting")
        assert len(photos_of(server, invited.patient["id"])) == 1  # stored, but the phone does not know
        context.set_offline(False)
        page.wait_for_selector("#waiting-none", timeout=STEP_TIMEOUT_MS)
        shots(page, "back-online-sent")
        context.close()
    finally:
        browser.close()
    assert len(uploads) == 2 and uploads[0] == uploads[1]  # the retry reused the Idempotency-Key
    photos = photos_of(server, invited.patient["id"])
    assert [(p["milestone"], p["usable"]) for p in photos] == [("baseline", True)]
