"""Declarative base, column types and mixins shared by every model.

All timestamps are timezone-aware UTC in Python. SQLite has no time zone
storage, so :class:`UTCDateTime` stores naive UTC there and re-attaches UTC
on load; PostgreSQL stores ``timestamp with time zone``.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, MetaData, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.types import TypeDecorator

#: Deterministic constraint names, so Alembic (and SQLite batch mode) can
#: refer to constraints by name on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time.

    Returns
    -------
    datetime.datetime
        Timezone-aware, UTC, microsecond resolution.
    """
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    Binding a naive datetime raises ``ValueError``: naive values are ambiguous
    and silently assuming a zone corrupts timelines.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[dt.datetime]:
        return dt.datetime

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given; use a timezone-aware datetime")
        value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            # SQLite compares timestamps as text: store one fixed format (naive UTC).
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every skintrack model."""

    # A registry (not class attributes) so Flask-SQLAlchemy's subclass keeps the type map.
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={dt.datetime: UTCDateTime(), uuid.UUID: Uuid()},
    )


class UUIDPrimaryKeyMixin:
    """A random UUID primary key: ids do not leak counts and cannot be enumerated."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    """``created_at`` / ``updated_at`` columns, set in Python (UTC)."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
