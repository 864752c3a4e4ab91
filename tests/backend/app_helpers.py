"""A second app on the test database: another service process, as it were (job and fault tests)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from backend import create_app
from backend.extensions import db
from backend.jobs import stop_worker


def sibling_app(app: Flask, **overrides: Any) -> Flask:
    """Another service process, as it were: a new app on the same database and settings as ``app``."""
    shared = ("DATABASE_URL", "SQLALCHEMY_ENGINE_OPTIONS", "SECRET_KEY", "STORAGE_URL", "TESTING", "CLOCK",
              "JOB_RETRY_BASE_S", "JOB_RETRY_MAX_S", "JOB_LEASE_S", "JOB_POLL_INTERVAL_S")
    config = {key: app.config[key] for key in shared if key in app.config}
    return create_app({**config, "JOB_BACKEND": "thread", "JOB_WORKER_AUTOSTART": False, **overrides})


def close_app(application: Flask) -> None:
    """Stop its worker and close its connections."""
    stop_worker(application, timeout_s=30.0)
    with application.app_context():
        db.engine.dispose()
