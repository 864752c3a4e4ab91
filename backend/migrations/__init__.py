"""Alembic migrations, configured programmatically (no alembic.ini).

Use ``flask --app backend db-upgrade`` / ``db-downgrade`` or the functions here.
Revision ids are fixed and chained: ``0001_accounts`` -> ``0002_clinical`` -> ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """Alembic configuration pointing at this package's scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@contextmanager
def migration_connection(
    database_url: str, engine_options: Mapping[str, Any] | None = None
) -> Iterator[Connection]:
    """Yield a connection in a transaction suitable for running migrations.

    On SQLite, foreign keys are switched off for the duration (batch mode
    recreates tables, and dropping a referenced table with foreign keys on
    would cascade or fail) and checked afterwards.
    """
    options = {k: v for k, v in (engine_options or {}).items() if k not in {"pool_size", "max_overflow"}}
    engine = create_engine(database_url, poolclass=NullPool, **options)
    try:
        with engine.connect() as conn:
            is_sqlite = conn.dialect.name == "sqlite"
            if is_sqlite:
                # Outside any transaction: PRAGMA foreign_keys is a no-op inside one.
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            with conn.begin():
                yield conn
                if is_sqlite:
                    violations = conn.execute(text("PRAGMA foreign_key_check")).fetchall()
                    if violations:
                        raise RuntimeError(f"foreign key violations after migration: {violations[:5]}")
    finally:
        engine.dispose()


def _run(action: str, database_url: str, engine_options: Mapping[str, Any] | None, revision: str) -> None:
    config = alembic_config()
    with migration_connection(database_url, engine_options) as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def upgrade(database_url: str, engine_options: Mapping[str, Any] | None = None, revision: str = "head") -> None:
    """Upgrade the database at ``database_url`` to ``revision`` (default: head)."""
    _run("upgrade", database_url, engine_options, revision)


def downgrade(database_url: str, engine_options: Mapping[str, Any] | None = None, revision: str = "base") -> None:
    """Downgrade the database at ``database_url`` to ``revision`` (default: base, i.e. empty)."""
    _run("downgrade", database_url, engine_options, revision)


def current_revision(database_url: str, engine_options: Mapping[str, Any] | None = None) -> str | None:
    """Return the revision the database is at, or None if it is not migrated."""
    with migration_connection(database_url, engine_options) as conn:
        return MigrationContext.configure(conn).get_current_revision()
