"""Shared pieces of the browser tests: the system Chromium, axe-core, screenshots.

Chromium comes from Debian (``apt-get install -y chromium``; ``.ci/run`` installs it) and is
driven by Playwright with ``executable_path`` (never ``playwright install``). axe-core comes
from the npm registry: :func:`axe_source` installs the pinned version once into
``.cache/npm`` (``npm install`` with the machine's Node.js) and returns the script's text,
which :func:`axe_violations` evaluates in the page (the strict CSP blocks script tags, not
``page.evaluate``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE_VERSION = "4.14.1"
NPM_PREFIX = Path(__file__).resolve().parents[2] / ".cache" / "npm"
#: axe-core impact levels that fail a page (WCAG 2.1 AA rules and best practices).
FAILING_IMPACTS = ("serious", "critical")

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="system Chromium missing: apt-get install -y chromium (.ci/run does this)")


def launch(playwright, extra_args: list[str] | None = None):
    """Launch the system Chromium headless with the sandbox-free flags this machine needs."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), chromium_sandbox=False,
                                      args=CHROMIUM_ARGS + list(extra_args or []))


@functools.cache
def axe_source() -> str:
    """Text of ``axe.min.js`` at :data:`AXE_VERSION`, installed from npm on first use."""
    script = NPM_PREFIX / "node_modules" / "axe-core" / "axe.min.js"
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    # One install at a time: the suite's parallel workers share the prefix.
    with (NPM_PREFIX / ".install-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is needed to install axe-core for the accessibility checks")
            subprocess.run([npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund",
                            "--loglevel=error", f"axe-core@{AXE_VERSION}"], check=True, timeout=300)
    return script.read_text(encoding="utf-8")


def axe_violations(page, impacts: tuple[str, ...] = FAILING_IMPACTS) -> list[dict]:
    """Run axe-core (WCAG 2.0/2.1 A and AA rules) on the page; return violations of ``impacts``."""
    page.evaluate(axe_source())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in impacts]


def assert_accessible(page, where: str = "") -> None:
    """Fail with a readable list when axe finds serious or critical violations."""
    violations = axe_violations(page)
    assert not violations, f"axe violations on {where or page.url}:\n" + json.dumps(violations, indent=1)


@contextlib.contextmanager
def serve(app, name: str = "browser-test-server"):
    """Serve ``app`` (werkzeug, threaded) on a free loopback port; yields its base URL.

    On exit the server stops and the app's database connections are closed (SQLite files of
    the test's temporary folder can then go).
    """
    from werkzeug.serving import make_server

    from backend.extensions import db

    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()
