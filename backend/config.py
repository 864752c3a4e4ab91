"""Configuration: one table of environment variables, their defaults and meaning.

The README's configuration table mirrors :data:`SETTINGS` (a test checks it).
Values come from the process environment; ``create_app(config=...)`` overrides
them (tests use that).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One environment variable.

    Attributes
    ----------
    name : str
        Environment variable name, also the Flask config key.
    default : str | None
        Default as text (``None``: computed from the instance folder, see description).
    description : str
        One sentence for the README table.
    parse : callable
        Converts the text value to its Python type.
    """

    name: str
    default: str | None
    description: str
    parse: Callable[[str], Any] = str


def parse_bool(text: str) -> bool:
    """Parse ``1/true/yes/on`` (any case) as True and ``0/false/no/off/''`` as False."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_positive_int(text: str) -> int:
    """Parse a strictly positive integer (seconds, bytes, counts)."""
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be > 0: {text!r}")
    return value


def parse_non_negative_int(text: str) -> int:
    """Parse an integer >= 0."""
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0: {text!r}")
    return value


def parse_worker_nice(text: str) -> int:
    """Parse a niceness increment, 0..19."""
    value = parse_non_negative_int(text)
    if value > 19:
        raise ValueError(f"must be 0..19: {text!r}")
    return value


def parse_positive_float(text: str) -> float:
    """Parse a number > 0 (seconds)."""
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be > 0: {text!r}")
    return value


def parse_non_negative_float(text: str) -> float:
    """Parse a number >= 0 (seconds)."""
    value = float(text)
    if not value >= 0:
        raise ValueError(f"must be >= 0: {text!r}")
    return value


def parse_public_base_url(text: str) -> str:
    """An absolute ``http(s)://`` address without query or fragment (trailing ``/`` dropped)."""
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("expected an absolute http(s):// address without query or fragment")
    return text.strip().rstrip("/")


def parse_job_backend(text: str) -> str:
    """Accept one of ``thread``, ``celery``, ``inline``."""
    if text not in {"thread", "celery", "inline"}:
        raise ValueError(f"JOB_BACKEND must be thread, celery or inline, not {text!r}")
    return text


def normalise_database_url(url: str) -> str:
    """Make PostgreSQL URLs use the installed psycopg 3 driver.

    ``postgres://`` (Heroku style) and ``postgresql://`` would otherwise select
    psycopg2, which is not installed.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", None,
            "SQLAlchemy URL; default `sqlite:///<instance>/skintrack.sqlite3`. "
            "`postgresql+psycopg://user@host:5432/db` for PostgreSQL.", normalise_database_url),
    Setting("SECRET_KEY", None,
            "Signs access tokens (HS256). Default: generated once and stored in "
            "`<instance>/secret_key` (mode 0600); never logged."),
    Setting("STORAGE_URL", None,
            "Where photos are stored: `file:///abs/dir` (default `file://<instance>/storage`) or "
            "`s3://bucket/prefix` (credentials from boto3's standard `AWS_ACCESS_KEY_ID` / "
            "`AWS_SECRET_ACCESS_KEY`)."),
    Setting("S3_ENDPOINT_URL", "", "S3-compatible endpoint for `s3://` storage; empty means AWS."),
    Setting("S3_REGION", "", "Signing region for `s3://` storage; empty uses boto3's default."),
    Setting("S3_CREATE_BUCKET", "false", "Create the `s3://` bucket at start if missing (development).",
            parse_bool),
    Setting("JOB_BACKEND", "thread",
            "Background jobs: `thread` (in-process worker), `celery` (needs REDIS_URL) or `inline`.",
            parse_job_backend),
    Setting("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis for the celery job backend."),
    Setting("JOB_CELERY_QUEUE", "skintrack-jobs", "Celery queue the job tasks go to."),
    Setting("JOB_WORKER_AUTOSTART", "true",
            "`thread` backend: start the in-process worker (at the first request, or by wsgi.py).",
            parse_bool),
    Setting("JOB_HANDLER_MODULES", "", "Extra comma-separated modules to import for their job handlers."),
    Setting("JOB_MAX_ATTEMPTS", "5", "Attempts per job before it is marked failed.", parse_positive_int),
    Setting("JOB_RETRY_BASE_S", "10",
            "Seconds before a job's first retry; doubles per attempt.", parse_non_negative_float),
    Setting("JOB_RETRY_MAX_S", "3600", "Longest retry delay in seconds.", parse_non_negative_float),
    Setting("JOB_LEASE_S", "60",
            "Seconds a worker's claim on a job lasts unless renewed; a dead worker's job is "
            "redone after it.", parse_positive_float),
    Setting("JOB_POLL_INTERVAL_S", "5", "`thread` backend: longest idle wait between table polls.",
            parse_positive_float),
    Setting("JOB_WORKER_NICE", "10",
            "Niceness added to analysis workers (the `thread` worker thread, Celery worker "
            "processes) so that requests waiting on the quality gate get the CPU first; 0..19, "
            "0 keeps normal priority. Linux.", parse_worker_nice),
    Setting("JOB_SWEEP_INTERVAL_S", "30",
            "`celery` workers: how often jobs with lost messages or dead workers are re-sent.",
            parse_positive_float),
    Setting("JOB_SWEEP_GRACE_S", "30",
            "A queued job due this many seconds without a worker taking it is re-sent.",
            parse_non_negative_float),
    Setting("ACCESS_TOKEN_TTL", "900", "Access token lifetime in seconds.", parse_positive_int),
    Setting("REFRESH_TOKEN_TTL", "2592000", "Refresh token lifetime in seconds (30 days).",
            parse_positive_int),
    Setting("MAX_CONTENT_LENGTH", "26214400",
            "Largest accepted request body in bytes (25 MiB); larger answers 413.", parse_positive_int),
    Setting("RATELIMIT_STORAGE_URI", "memory://",
            "Flask-Limiter storage for per-address request limits; use `redis://...` with "
            "several gunicorn workers. Login limits are counted in the database.",),
    Setting("RATELIMIT_KEY_PREFIX", "skintrack",
            "Prefix of the rate-limit counters' keys, so that deployments sharing one Redis do not "
            "count each other's requests."),
    Setting("RATELIMIT_DEFAULT", "300 per minute",
            "Per-address request limit for all API endpoints (Flask-Limiter syntax)."),
    Setting("LOGIN_MAX_FAILURES_PER_ACCOUNT", "5",
            "Failed logins per account within LOGIN_FAILURE_WINDOW before 429.", parse_positive_int),
    Setting("LOGIN_MAX_FAILURES_PER_ADDRESS", "20",
            "Failed logins per client address within LOGIN_FAILURE_WINDOW before 429.",
            parse_positive_int),
    Setting("LOGIN_FAILURE_WINDOW", "900", "Login failure counting window in seconds.",
            parse_positive_int),
    Setting("IDEMPOTENCY_KEY_TTL", "86400",
            "Seconds an Idempotency-Key is remembered at least; `flask prune` deletes older ones.",
            parse_positive_int),
    Setting("ARGON2_TIME_COST", "3", "Argon2id passes; changing it rehashes passwords at next login.",
            parse_positive_int),
    Setting("ARGON2_MEMORY_COST_KIB", "65536", "Argon2id memory per hash in KiB (64 MiB).",
            parse_positive_int),
    Setting("ARGON2_PARALLELISM", "1", "Argon2id lanes.", parse_positive_int),
    Setting("PROXY_FIX_X_FOR", "0",
            "Number of trusted reverse proxies setting X-Forwarded-For (0: use the socket address).",
            parse_non_negative_int),
    Setting("DASHBOARD_COOKIE_SECURE", "true",
            "Send the clinician dashboard's session cookie over HTTPS only (Secure). Browsers accept "
            "it from http://localhost and http://127.0.0.1; set false only for plain HTTP on another host.",
            parse_bool),
    Setting("PUBLIC_BASE_URL", "http://localhost:5000",
            "Public address of this server (scheme, host, optional port and path) for links handed out: "
            "the patient app's enrolment links and QR codes, calendar feed URLs.", parse_public_base_url),
    Setting("SEED_DEMO", "false",
            "`flask init-db` seeds the demo clinic into an empty database when true (`make run` "
            "sets it). Serving (`gunicorn wsgi:app`) never seeds.", parse_bool),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false",
            "Development only: let webhook endpoints use plain HTTP and private, loopback or link-local "
            "addresses (refused otherwise: server-side request forgery).", parse_bool),
    Setting("WEBHOOK_TIMEOUT_S", "10", "Seconds a webhook delivery attempt may take (connect and answer).",
            parse_positive_float),
    Setting("WEBHOOK_MAX_ATTEMPTS", "8",
            "Attempts per webhook delivery (retries back off as JOB_RETRY_BASE_S doubling) before it fails.",
            parse_positive_int),
    Setting("WEBHOOK_DISABLE_AFTER_FAILURES", "20",
            "Consecutive failed attempts after which an endpoint is disabled (audited; an admin re-enables it).",
            parse_positive_int),
)

SETTINGS_BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


def load_or_create_secret_key(instance_path: Path) -> str:
    """Return the instance's secret key, creating it (0600) on first use.

    Parameters
    ----------
    instance_path : Path
        Flask instance folder; created if missing.

    Returns
    -------
    str
        64 hex characters (256 random bits).
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        key = secrets.token_hex(32)
        handle.write(key)
    return key


def load_config(instance_path: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from the environment.

    Parameters
    ----------
    instance_path : Path
        Flask instance folder (defaults for database, storage and secret key live there).
    environ : mapping, optional
        Environment variables; default ``os.environ``.

    Returns
    -------
    dict
        Flask config keys (the setting names plus derived Flask/extension keys).

    Raises
    ------
    ValueError
        If a variable has an unparseable value (message names the variable).
    """
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        text = environ.get(setting.name, setting.default)
        if text is None:
            config[setting.name] = None
            continue
        try:
            config[setting.name] = setting.parse(text)
        except ValueError as exc:
            raise ValueError(f"{setting.name}: {exc}") from None
    if config["DATABASE_URL"] is None:
        config["DATABASE_URL"] = f"sqlite:///{instance_path / 'skintrack.sqlite3'}"
    if config["STORAGE_URL"] is None:
        config["STORAGE_URL"] = f"file://{instance_path / 'storage'}"
    return config


def derived_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Flask and extension keys computed from the skintrack settings."""
    return {
        "SQLALCHEMY_DATABASE_URI": config["DATABASE_URL"],
        "RATELIMIT_STORAGE_URI": config["RATELIMIT_STORAGE_URI"],
        "RATELIMIT_DEFAULT": config["RATELIMIT_DEFAULT"],
        "RATELIMIT_KEY_PREFIX": config["RATELIMIT_KEY_PREFIX"],
        # Off: Flask-Limiter would add Retry-After to every response; our 429 handler sets it.
        "RATELIMIT_HEADERS_ENABLED": False,
        "API_TITLE": "skintrack",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        # No OPENAPI_SWAGGER_UI_PATH: flask-smorest's page loads a CDN; backend.http.api_docs
        # serves the packaged Swagger UI at /api/v1/docs instead.
    }
