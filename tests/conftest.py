"""Fixtures shared by the whole suite.

``app`` is parametrised over database backends: ``sqlite`` always, and
``postgresql`` when ``TEST_DATABASE_URL`` is set (skipped otherwise). Each
backend gets one app per session on a database migrated once (SQLite: a temp
file; PostgreSQL: a private schema, dropped at the end); every table is
emptied after each test, and config changes a test made are undone.

Tests change configuration by overriding the ``app_config`` fixture (keys read
at request time: CLOCK, token TTLs, limits, ARGON2_* ...). The clinical fixtures
(``clock``, ``world``, ``headers_of``) are here too: a test using ``clock`` runs its
app on it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, text

from backend import create_app
from backend.extensions import db, limiter
from backend.migrations import upgrade
from backend.models.base import Base
from tests import factories
from tests.backend.clock import FakeClock
from tests.environment import (
    BASE_TEST_CONFIG,
    TEST_DATABASE_URL,
    create_private_postgresql_schema,
    drop_postgresql_schema,
    postgresql_engine_options,
    require_postgresql,
)


@pytest.fixture(scope="session")
def sqlite_session_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    root = tmp_path_factory.mktemp("sqlite-app")
    url = f"sqlite:///{root / 'skintrack.sqlite3'}"
    upgrade(url)
    application = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": url,
                              "STORAGE_URL": f"file://{root / 'storage'}"})
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def postgresql_session_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    require_postgresql()
    schema = create_private_postgresql_schema()
    try:
        upgrade(TEST_DATABASE_URL, postgresql_engine_options(schema))
        application = create_app({
            **BASE_TEST_CONFIG, "DATABASE_URL": TEST_DATABASE_URL,
            "SQLALCHEMY_ENGINE_OPTIONS": postgresql_engine_options(schema),
            "STORAGE_URL": f"file://{tmp_path_factory.mktemp('pg-app') / 'storage'}",
        })
        yield application
        with application.app_context():
            db.engine.dispose()
    finally:
        drop_postgresql_schema(schema)


def empty_all_tables() -> None:
    """Delete every row of every table of the app's database (app context needed).

    SQLite: the audit table's append-only triggers are dropped for the
    cleanup and recreated. PostgreSQL: TRUNCATE does not fire row triggers.
    """
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            if tables:
                names = ", ".join(f'"{table}"' for table in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        triggers = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all()
        for name, _ in triggers:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        existing = set(inspect(conn).get_table_names())
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in existing:
                conn.execute(table.delete())
        for _, sql in triggers:
            conn.exec_driver_sql(sql)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_backend(request: pytest.FixtureRequest) -> str:
    """Name of the database backend of this test run: ``sqlite`` or ``postgresql``."""
    return request.param


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """(url, engine options) of a database without any table."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}", {}
        return
    require_postgresql()
    schema = create_private_postgresql_schema()
    try:
        yield TEST_DATABASE_URL, postgresql_engine_options(schema)
    finally:
        drop_postgresql_schema(schema)


@pytest.fixture
def clock() -> FakeClock:
    """A controllable clock at noon UTC on 2026-03-01, the baseline date of factory-made courses.

    A test that uses it (directly, or with ``pytestmark = pytest.mark.usefixtures("clock")`` for
    a whole module) runs its app on it: ``app_config`` sets it as ``CLOCK``.
    """
    return FakeClock(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc))


@pytest.fixture
def app_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Config applied to the app for one test (override to change time, limits ...)."""
    config: dict[str, Any] = {"STORAGE_URL": f"file://{tmp_path / 'storage'}"}
    if "clock" in request.fixturenames:
        config["CLOCK"] = request.getfixturevalue("clock")
    return config


@pytest.fixture
def app(request: pytest.FixtureRequest, database_backend: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    """A skintrack app on a migrated, empty database of the parametrised backend."""
    application: Flask = request.getfixturevalue(f"{database_backend}_session_app")
    saved_config = dict(application.config)
    application.config.update(app_config)
    with application.app_context():
        limiter.reset()  # in-memory counters outlive tests
    try:
        yield application
    finally:
        application.config.clear()
        application.config.update(saved_config)
        with application.app_context():
            db.session.remove()
            empty_all_tables()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_clinic(app: Flask) -> Callable[..., Any]:
    """``make_clinic(name=None, *, is_demo=False) -> Clinic``."""
    return functools.partial(factories.make_clinic, app)


@pytest.fixture
def make_user(app: Flask) -> Callable[..., Any]:
    """``make_user(role, clinic=None, *, email=None, password=DEFAULT_PASSWORD, ...) -> User``."""
    return functools.partial(factories.make_user, app)


@pytest.fixture
def auth_headers(app: Flask) -> Callable[..., dict[str, str]]:
    """``auth_headers(user) -> {"Authorization": "Bearer ..."}`` from a real token issue."""
    return functools.partial(factories.auth_headers, app)


@pytest.fixture
def world(app: Flask) -> Any:
    """Two clinics with their users, patients and a course: see :func:`tests.factories.make_clinical_world`."""
    return factories.make_clinical_world(app)


@pytest.fixture
def headers_of(app: Flask, world: Any) -> Callable[[str], dict[str, str]]:
    """``headers_of("clinician_a")``: bearer headers of a world user (cached per test)."""
    cache: dict[str, dict[str, str]] = {}

    def headers(name: str) -> dict[str, str]:
        if name not in cache:
            cache[name] = factories.auth_headers(app, getattr(world, name))
        return cache[name]

    return headers
