"""The append-only, hash-chained audit log."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base


class AuditEvent(Base):
    """One audited action. Rows are never updated or deleted.

    ``hash`` is SHA-256 over a canonical serialisation of the row including
    ``prev_hash`` (see :mod:`backend.audit`), so editing, inserting or removing
    a row breaks the chain from that row on.
    """

    __tablename__ = "audit_events"

    #: 1, 2, 3 ... without gaps; assigned under the chain lock.
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor_user_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str | None] = mapped_column(String(20))
    #: Clinic the event belongs to (actor's clinic); admins read their clinic's events.
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str | None] = mapped_column(String(80))
    object_id: Mapped[str | None] = mapped_column(String(80))
    client_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    #: Canonical JSON of non-sensitive details (never health data or secrets).
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
