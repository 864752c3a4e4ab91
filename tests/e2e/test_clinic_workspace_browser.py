"""Browser tests of the clinic workspace: headless Chromium (system browser, Playwright) against
the real app on a loopback port, over a migrated SQLite database with an empty clinic (one admin).

Every request that leaves the app's own address is aborted, so the pages must work offline
(the API docs included). The app runs on a test clock, so the walk can move on to the 2-week
milestone without waiting. Screenshots of every page go to ``.cache/screenshots/clinic_workspace``;
axe-core checks every page (no serious or critical violations).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from schemas.studies import DEFAULT_MIN_K
from tests.e2e.browser import assert_accessible, launch, requires_chromium, serve

pytestmark = requires_chromium

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "screenshots" / "clinic_workspace"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:

    from backend import create_app
    from backend.migrations import upgrade
    from tests import factories
    from tests.backend.clock import FakeClock

    root = tmp_path_factory.mktemp("workspace")
    url = f"sqlite:///{root / 'skintrack.sqlite3'}"
    upgrade(url)
    clock = FakeClock(dt.datetime.now(dt.timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0))
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "inline",
                      "SECRET_KEY": os.urandom(32).hex(), "LOG_LEVEL": "WARNING", "CLOCK": clock,
                      "PUBLIC_BASE_URL": "https://skintrack.clinic.example"})
    clinic = factories.make_clinic(app, "Empty clinic")
    admin = factories.make_user(app, "admin", clinic)
    with serve(app, "workspace-test-server") as base:
        yield SimpleNamespace(base=base, admin_email=admin.email, password=factories.DEFAULT_PASSWORD, clock=clock,
                              root=root)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        instance = launch(playwright)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, server):
    """A page whose requests to anywhere but the app are aborted (no network), recording
    console errors (CSP violations are reported there)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server.base)
                  else route.abort())
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    yield page
    context.close()


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_api_docs_render_the_spec_offline_under_the_csp(page, server):
    page.goto(f"{server.base}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "skintrack" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag", timeout=15_000)
    assert page.locator(".opblock-tag").count() > 5  # the API's tags (patients, courses, ...)
    shoot(page, "api-docs")
    assert page.console_errors == []


PASSWORD = "a long enough passphrase 42"


def visit(page, name: str) -> None:
    """Screenshot the page and check it with axe-core."""
    page.wait_for_load_state("load")
    shoot(page, name)
    assert_accessible(page, name)


def sign_in(page, base: str, email: str, password: str, check: bool = False) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/dashboard/login")
    if check:  # the same page each time: checked once
        visit(page, "sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("#sign-in")
    page.wait_for_load_state("load")


def submit(page, button: str) -> None:
    with page.expect_navigation():
        page.click(button)


def test_every_role_walks_its_work_from_an_empty_clinic(page, server):
    from tests.backend.photo_helpers import phone_jpeg

    base = server.base
    # The admin creates a clinician and a researcher.
    sign_in(page, base, server.admin_email, server.password, check=True)
    page.goto(f"{base}/dashboard/admin/users")
    visit(page, "admin-users")
    for email, role in (("dr.ines@clinic.example", "clinician"), ("rita@uni.example", "researcher")):
        page.fill("#f-email", email)
        page.select_option("#f-role", role)
        page.fill("#f-password", PASSWORD)
        submit(page, "#create-user")
    page.fill("#f-email", "not an email")  # a refused form says why, next to the field
    submit(page, "#create-user")
    assert page.locator("#e-email").is_visible() and page.locator("#form-errors").is_visible()
    visit(page, "admin-users-error")
    assert page.locator("#users").inner_text().count("@") == 3

    # The clinician: patient, consent, course, enrolment sheet, baseline photo, session.
    sign_in(page, base, "dr.ines@clinic.example", PASSWORD)
    visit(page, "patients-empty")
    page.click("#new-patient")
    visit(page, "patient-new")
    page.fill("#f-full_name", "Maria Example")
    page.fill("#f-date_of_birth", "1979-04-12")
    page.select_option("#f-sex", "female")
    page.select_option("#f-fitzpatrick_type", "3")
    submit(page, "#save-patient")
    assert "Maria Example" in page.inner_text("#patient-name")
    visit(page, "patient")
    patient_url = page.url
    page.click("#consents")
    for scope in ("clinical_photo", "research"):
        page.select_option("#f-scope", scope)
        page.check("input[name=action][value=grant]")
        page.fill("#f-version", "2026-01")
        submit(page, "#record-consent")
    assert page.locator("#consent-state").inner_text().count("granted") == 2
    visit(page, "consents")
    page.goto(patient_url)
    page.click("#new-course")
    visit(page, "course-new")
    page.select_option("#f-indication", "redness_rosacea")
    page.fill("#f-product_name", "Exo Serum")
    page.select_option("#f-exosome_source", "adipose")
    page.select_option("#f-delivery", "topical_after_microneedling")
    for region in ("forehead", "left_cheek", "right_cheek"):
        page.check(f"input[name=treated_regions][value={region}]")
    submit(page, "#save-course")
    visit(page, "patient-with-course")
    submit(page, "#invite")
    code = page.inner_text("#invitation-code")
    assert len(code) == 14 and page.inner_text("#invitation-link").startswith("https://skintrack.clinic.example/app/#")
    page.emulate_media(media="print")
    visit(page, "enrolment-sheet-print")
    page.emulate_media(media="screen")
    page.goto(patient_url)
    page.click("#upload-photo")
    visit(page, "photo-upload")
    photo = server.root / "baseline.jpg"
    photo.write_bytes(phone_jpeg(captured_at=None))
    page.set_input_files("#f-photo", str(photo))
    submit(page, "#save-photo")
    assert "Usable." in page.inner_text("#gate-answer")
    visit(page, "photo-gate-answer")
    page.goto(patient_url)
    page.click("#new-session")
    page.fill("#f-device_settings", "needle depth mm: 1.0\ndevice: Dermapen 4")
    page.fill("#f-product_manufacturer", "Exo Labs")
    page.fill("#f-product_lot", "LOT-7781")
    page.fill("#f-product_volume_ml", "2.5")
    visit(page, "session-new")
    submit(page, "#save-session")
    assert "LOT-7781" in page.inner_text("#sessions")

    # Two weeks later: a GAIS rating and an adverse event.
    server.clock.advance(days=14)
    page.click("#new-rating")
    page.select_option("#f-milestone_id", label=page.locator("#f-milestone_id option", has_text="2 weeks").inner_text())
    page.select_option("#f-gais", "2")
    visit(page, "rating-new")
    submit(page, "#save-rating")
    page.click("#new-adverse-event")
    page.select_option("#f-event_type", "erythema")
    page.select_option("#f-severity", "mild")
    visit(page, "adverse-event-new")
    submit(page, "#save-adverse-event")
    assert "erythema" in page.inner_text("#adverse-events")
    visit(page, "patient-complete")
    page.goto(f"{base}/dashboard/lots?lot=LOT-7781")
    assert "Maria Example" in page.inner_text("#lot-recipients")
    visit(page, "lot")
    page.goto(f"{base}/dashboard/worklist")
    visit(page, "worklist")

    # The admin: a study, the researcher granted; the audit log and its chain.
    sign_in(page, base, server.admin_email, server.password)
    page.goto(f"{base}/dashboard/admin/studies")
    page.fill("#f-title", "Rosacea outcomes")
    submit(page, "#create-study")
    page.select_option("#f-researcher_id", label="rita@uni.example")
    submit(page, "#grant")
    assert "rita@uni.example" in page.inner_text("#grants")
    visit(page, "study")
    page.goto(f"{base}/dashboard/admin/audit")
    visit(page, "audit")
    submit(page, "#verify-chain")
    assert "Intact." in page.inner_text("#chain-result")

    # The researcher: export requested, built, downloaded; statistics.
    sign_in(page, base, "rita@uni.example", PASSWORD)
    visit(page, "research-home")
    page.click("text=Rosacea outcomes")
    page.fill("#f-k", str(DEFAULT_MIN_K))  # the study's privacy floor (the least k it allows)
    submit(page, "#request-export")
    page.wait_for_selector("a.download", timeout=30_000)  # the page refreshes itself until ready
    visit(page, "research-study")
    with page.expect_download() as download:
        page.click("a.download")
    assert download.value.suggested_filename.endswith(".zip")
    page.click("#statistics")
    visit(page, "research-statistics")
    # Nothing was blocked by the CSP (the one console error is the refused form's 422).
    assert not [m for m in page.console_errors if "Content Security Policy" in m or "Refused to" in m]
