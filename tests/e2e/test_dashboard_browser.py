"""Browser test: headless Chromium (system browser, driven by Playwright) against a real server.

The server is the real app on a free loopback port (werkzeug, threaded) over a migrated
SQLite database seeded like ``make run``: the demo clinic and the demo patient's photo series
uploaded and analysed through the real pipeline. A clinician signs in, opens the demo
patient, sees the charts and the before/after viewer (screenshots are saved); a clinician of
another clinic cannot open that patient.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.e2e.browser import launch, requires_chromium, serve

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:

    from backend import create_app
    from backend.demo import seed
    from backend.demo.series import add_demo_series
    from backend.extensions import db
    from backend.migrations import upgrade
    from backend.models.clinical import Patient
    from tests import factories

    root = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{root / 'skintrack.sqlite3'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "inline",
                      "SECRET_KEY": os.urandom(32).hex(), "LOG_LEVEL": "WARNING"})
    today = dt.datetime.now(dt.timezone.utc).date()
    with app.app_context():
        accounts = {a.role: a for a in seed.seed_demo(today)}
        add_demo_series(today)
        patient_id = db.session.query(Patient.id).filter(Patient.user_id.is_not(None)).one()[0]  # the demo patient
    other_clinic = factories.make_clinic(app, "Another clinic")
    other_clinician = factories.make_user(app, "clinician", other_clinic)
    with serve(app) as base:
        yield SimpleNamespace(base=base, clinician=accounts["clinician"], other_email=other_clinician.email,
                              other_password=factories.DEFAULT_PASSWORD, patient_id=patient_id)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        instance = launch(playwright)
        yield instance
        instance.close()


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/dashboard/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("#sign-in")
    page.wait_for_load_state("networkidle")


def all_images_loaded(page, selector: str) -> bool:
    return page.eval_on_selector_all(
        selector, "els => els.length > 0 && els.every(e => e.complete && e.naturalWidth > 0)")


def test_clinician_sees_demo_patient_charts_and_viewer(demo_server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    sign_in(page, demo_server.base, demo_server.clinician.email, demo_server.clinician.password)
    assert page.url.endswith("/dashboard/")
    page.screenshot(path=str(tmp_path / "1-patients.png"), full_page=True)

    page.click("text=Demo Patient (fictional)")
    page.wait_for_load_state("networkidle")
    assert "Demo Patient (fictional)" in page.inner_text("#patient-name")
    # Lazy images: scroll each into view, then every chart must have decoded.
    for chart in page.query_selector_all("img.chart"):
        chart.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('img.chart')]"
                           ".every(e => e.complete && e.naturalWidth > 0)", timeout=120_000)
    assert len(page.query_selector_all("img.chart")) == 3 * 6 + 1  # measures x regions, and the timeline
    page.screenshot(path=str(tmp_path / "2-patient.png"), full_page=True)

    page.click("#open-viewer")
    page.wait_for_selector("#viewer[data-ready=true]")
    page.wait_for_function("() => ['img-before', 'img-after'].every(id => {"
                           "const e = document.getElementById(id); return e.complete && e.naturalWidth > 0; })")
    assert "/aligned/baseline.png" in page.get_attribute("#img-before", "src")
    page.screenshot(path=str(tmp_path / "3-viewer-side.png"), full_page=True)
    page.check("input[name=layer][value=redness]")
    page.check("input[name=mode][value=slider]")
    page.fill("#slider", "35")
    page.wait_for_function("() => document.getElementById('img-after').src.includes('/overlays/redness.png')"
                           " && document.getElementById('img-after').naturalWidth > 0")
    assert "inset(0px 0px 0px 35%)" in page.eval_on_selector(".pane.after", "e => getComputedStyle(e).clipPath")
    page.screenshot(path=str(tmp_path / "4-viewer-slider-redness.png"), full_page=True)
    assert not console_errors, console_errors  # includes CSP violations
    context.close()
    print(f"screenshots in {tmp_path}")


def test_other_clinic_cannot_open_demo_patient(demo_server, browser):
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, demo_server.base, demo_server.other_email, demo_server.other_password)
    assert "Demo Patient" not in page.content()
    response = page.goto(f"{demo_server.base}/dashboard/patients/{demo_server.patient_id}")
    assert response.status == 404
    assert page.goto(f"{demo_server.base}/dashboard/patients/{demo_server.patient_id}/viewer").status == 404
    context.close()
