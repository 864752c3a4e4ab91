"""Fixtures shared by the whole suite.

``app`` is parametrised over database backends: ``sqlite`` always, and
``postgresql`` when ``TEST_DATABASE_URL`` is set (skipped otherwise). Each
backend is migrated once per session (SQLite: a template file copied per test;
PostgreSQL: a private schema truncated after each test).
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from backend import create_app, engine_options
from backend.extensions import db, limiter
from backend.migrations import upgrade
from tests import factories

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")

#: Cheap Argon2 parameters: hashing cost is not what these tests measure.
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST_KIB": 1024, "ARGON2_PARALLELISM": 1}


def postgresql_engine_options(schema: str) -> dict[str, Any]:
    """Engine options that confine a connection to ``schema``."""
    return {**engine_options(TEST_DATABASE_URL or "postgresql"),
            "connect_args": {"options": f"-csearch_path={schema}"}}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgresql_schema() -> Iterator[str]:
    """A private schema in TEST_DATABASE_URL, migrated once, dropped at the end."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    schema = f"skintrack_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(TEST_DATABASE_URL, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        upgrade(TEST_DATABASE_URL, postgresql_engine_options(schema))
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _truncate_postgresql(schema: str) -> None:
    engine = create_engine(TEST_DATABASE_URL, poolclass=NullPool, **postgresql_engine_options(schema))
    try:
        with engine.begin() as conn:
            tables = [t for t in inspect(conn).get_table_names(schema=schema) if t != "alembic_version"]
            if tables:
                names = ", ".join(f'"{schema}"."{t}"' for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Config keys selecting a migrated, empty database of the parametrised backend."""
    if request.param == "sqlite":
        path = tmp_path / "skintrack.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield {"DATABASE_URL": f"sqlite:///{path}"}
        return
    schema = request.getfixturevalue("postgresql_schema")
    try:
        yield {"DATABASE_URL": TEST_DATABASE_URL,
               "SQLALCHEMY_ENGINE_OPTIONS": postgresql_engine_options(schema)}
    finally:
        _truncate_postgresql(schema)


@pytest.fixture
def app_config(database_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The configuration the ``app`` fixture is created with (tests may extend it)."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-" + "0" * 48,
        "STORAGE_URL": f"file://{tmp_path / 'storage'}",
        "JOB_BACKEND": "inline",
        **FAST_ARGON2,
        **database_config,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    """A skintrack app on a migrated, empty database (sqlite, and postgresql if configured)."""
    application = create_app(app_config)
    with application.app_context():
        limiter.reset()  # the in-memory limiter storage outlives apps
    yield application
    with application.app_context():
        db.engine.dispose()


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
