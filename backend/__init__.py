"""skintrack backend: the Flask application factory."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from backend.config import SETTINGS_BY_NAME, derived_config, load_config, load_or_create_secret_key

#: Accepted shape of a client-supplied X-Request-ID (otherwise we generate one).
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

#: CSP of API responses: they are JSON, nothing may be loaded or framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the skintrack Flask application.

    Parameters
    ----------
    config : mapping, optional
        Overrides of the environment-derived configuration (keys of
        :data:`backend.config.SETTINGS` or any Flask config key).

    Returns
    -------
    Flask
        The app, with database, API, rate limiter, error handlers and CLI
        commands set up. The schema is not created here: run migrations
        (``flask --app backend db-upgrade``).
    """
    app = Flask(__name__, instance_relative_config=True)
    overrides = dict(config or {})
    settings = load_config(Path(app.instance_path))
    settings.update({k: v for k, v in overrides.items() if k in SETTINGS_BY_NAME})
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = load_or_create_secret_key(Path(app.instance_path))
    app.config.update(settings)
    app.config.update(derived_config(settings))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(settings["DATABASE_URL"])
    app.config.update(overrides)

    logging.basicConfig(level=app.config["LOG_LEVEL"])
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"])  # type: ignore[method-assign]

    from backend import models  # noqa: F401 - registers every table
    from backend.blueprints import register_blueprints
    from backend.extensions import api, db, limiter
    from backend.http.media_types import enforce_request_media_type
    from backend.http.problems import register_error_handlers
    from backend.ops.cli import register_cli

    app.before_request(_assign_request_id)  # first: every response, even 429/415, carries the id
    db.init_app(app)
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    limiter.init_app(app)
    register_error_handlers(app)
    app.before_request(lambda: enforce_request_media_type(app))  # after the request id is assigned
    from backend.jobs import init_jobs
    from backend.storage import init_storage

    init_storage(app)
    init_jobs(app)
    register_blueprints(api)
    from backend.http.api_docs import init_api_docs
    init_api_docs(app)  # packaged Swagger UI at /api/v1/docs (sets its own CSP)
    from backend.dashboard import init_dashboard
    init_dashboard(app)  # server-rendered clinician pages under /dashboard
    from backend.patient_app import init_patient_app
    init_patient_app(app)  # the patient web app (static PWA on the public API) under /app
    register_cli(app)
    app.after_request(_add_response_headers)
    return app


def engine_options(database_url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for a database URL.

    ``hide_parameters`` keeps bound values (which may be health data) out of
    exception messages and therefore out of logs.
    """
    options: dict[str, Any] = {"hide_parameters": True}
    if not database_url.startswith("sqlite"):
        options["pool_pre_ping"] = True
    return options


def _assign_request_id() -> None:
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if _REQUEST_ID_PATTERN.match(supplied) else uuid.uuid4().hex


def _add_response_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if "request_id" in g:
        headers["X-Request-ID"] = g.request_id
    if request.path.startswith("/api/"):
        headers.setdefault("Content-Security-Policy", API_CSP)
        # API responses may carry health data: never store them in caches.
        headers.setdefault("Cache-Control", "no-store")
    return response
