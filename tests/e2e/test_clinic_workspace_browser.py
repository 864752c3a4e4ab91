"""Browser tests of the clinic workspace: headless Chromium (system browser, Playwright) against
the real app on a loopback port, over a migrated SQLite database with an empty clinic.

Every request that leaves the app's own address is aborted, so the pages must work offline
(the API docs included).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e.browser import launch, requires_chromium

pytestmark = requires_chromium

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "screenshots" / "clinic_workspace"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    from werkzeug.serving import make_server

    from backend import create_app
    from backend.extensions import db
    from backend.migrations import upgrade
    from tests import factories

    root = tmp_path_factory.mktemp("workspace")
    url = f"sqlite:///{root / 'skintrack.sqlite3'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "inline",
                      "SECRET_KEY": os.urandom(32).hex(), "LOG_LEVEL": "WARNING"})
    clinic = factories.make_clinic(app, "Empty clinic")
    admin = factories.make_user(app, "admin", clinic)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="workspace-test-server", daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(base=f"http://127.0.0.1:{http.server_port}", admin_email=admin.email,
                              password=factories.DEFAULT_PASSWORD)
    finally:
        http.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


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
