"""Alembic environment: runs on the connection handed in by backend.migrations."""

from __future__ import annotations

from alembic import context

from backend import models  # noqa: F401 - registers every table for autogenerate
from backend.models.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `flask --app backend db-upgrade` or backend.migrations.upgrade()"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode recreates the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
