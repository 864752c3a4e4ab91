"""Stored responses of POST requests that carried an ``Idempotency-Key``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UUIDPrimaryKeyMixin, utcnow


class IdempotencyRecord(UUIDPrimaryKeyMixin, Base):
    """The first successful response to (scope, key), written in the same
    transaction as the rows that request created.

    The unique constraint is what stops two concurrent requests with the same
    key from both creating: the second commit fails and replays the first.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    #: "user:<uuid>" for signed-in callers, "anonymous:<address>" otherwise.
    scope: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    #: Hex SHA-256 of method, path and request body.
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    response_location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
