"""The repeatability page in a real browser: reached from the header, Bland-Altman plots decode,
no console or CSP errors, no serious axe-core (WCAG 2.1 AA) violations."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.e2e.browser import assert_accessible, launch, requires_chromium, serve

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:

    from backend import create_app
    from backend.demo import seed
    from backend.extensions import db
    from backend.migrations import upgrade
    from backend.models.accounts import User
    from backend.models.clinical import Patient, TreatmentCourse
    from backend.services import repeatability
    from tests.backend.repeatability_helpers import add_pairs, tight

    root = tmp_path_factory.mktemp("repeatability-browser")
    url = f"sqlite:///{root / 'skintrack.sqlite3'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "inline",
                      "SECRET_KEY": os.urandom(32).hex(), "LOG_LEVEL": "WARNING"})
    with app.app_context():
        accounts = {a.role: a for a in seed.seed_demo(dt.datetime.now(dt.timezone.utc).date())}
        # The demo patient's course (the demo workspace adds other patients with their own courses).
        patient_user = db.session.query(User).filter_by(email=accounts["patient"].email).one()
        course = db.session.query(TreatmentCourse).join(Patient).filter(Patient.user_id == patient_user.id).one()
        assert [m.name for m in course.milestones]  # loaded before leaving the session
        db.session.expunge_all()
    add_pairs(app, course, tight(8))
    with app.app_context():
        repeatability.recompute()
        db.session.commit()
    with serve(app, "repeatability-browser-server") as base:
        yield SimpleNamespace(base=base, clinician=accounts["clinician"])


def test_repeatability_page_is_reachable_accessible_and_plots_decode(server, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{server.base}/dashboard/login")
        page.fill("input[name=email]", server.clinician.email)
        page.fill("input[name=password]", server.clinician.password)
        page.click("#sign-in")
        page.wait_for_load_state("networkidle")
        page.click("text=Repeatability")
        page.wait_for_load_state("networkidle")
        assert page.url.endswith("/dashboard/repeatability")
        for image in page.query_selector_all("img.chart"):
            image.scroll_into_view_if_needed()
        page.wait_for_function("() => [...document.querySelectorAll('img.chart')]"
                               ".every(e => e.complete && e.naturalWidth > 0)", timeout=120_000)
        assert "All skin\t8\t" in page.inner_text("#measure-redness")  # the clinic's 8 pairs
        assert_accessible(page, "repeatability page")
        page.screenshot(path=str(tmp_path / "repeatability.png"), full_page=True)
        assert not errors, errors  # includes CSP violations
        browser.close()
