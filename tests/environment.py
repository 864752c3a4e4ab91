"""The test environment: which databases the suite runs on, and the configuration of every test app.

Plain helpers (fixtures are in ``tests/conftest.py``); also used by the benchmarks and the
end-to-end tests that start their own servers.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from backend import engine_options

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")

#: Cheap Argon2 parameters: hashing cost is not what these tests measure.
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST_KIB": 1024, "ARGON2_PARALLELISM": 1}

#: Configuration of every test app (on top of the environment defaults).
BASE_TEST_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-" + "0" * 48,
    "JOB_BACKEND": "inline",
    "SEED_DEMO": False,
    **FAST_ARGON2,
}


def postgresql_engine_options(schema: str) -> dict[str, Any]:
    """Engine options that confine every connection to ``schema``."""
    return {**engine_options(TEST_DATABASE_URL or "postgresql"),
            "connect_args": {"options": f"-csearch_path={schema}"}}


def create_private_postgresql_schema() -> str:
    """Create an empty schema with a random name in TEST_DATABASE_URL and return its name."""
    schema = f"skintrack_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(TEST_DATABASE_URL, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema


def drop_postgresql_schema(schema: str) -> None:
    admin = create_engine(TEST_DATABASE_URL, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def require_postgresql() -> None:
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
