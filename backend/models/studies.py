"""Studies, participating clinics, researcher grants, participants' pseudonyms and exports.

A study covers the courses of its participating clinics that match its indication (if set)
and whose baseline date falls within its dates. :class:`StudyParticipant` holds the two
secrets of a participant: the random participant code and the date offset; both persist so
later exports of the same study agree.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin, utcnow
from backend.models.clinical import one_of
from schemas.clinical import INDICATIONS
from schemas.studies import DEFAULT_MAX_SUPPRESSION, DEFAULT_MIN_K

EXPORT_STATUSES = ("queued", "running", "ready", "failed")


class Study(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A research study defined by a clinic admin."""

    __tablename__ = "studies"
    __table_args__ = (
        CheckConstraint("indication IS NULL OR " + one_of("indication", INDICATIONS), name="indication_known"),
        CheckConstraint("ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on", name="dates_ordered"),
    )

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: Courses of this indication only; None covers every indication.
    indication: Mapped[str | None] = mapped_column(String(40), default=None)
    #: Courses whose baseline date lies within [starts_on, ends_on] (open ends allowed).
    starts_on: Mapped[dt.date | None] = mapped_column(default=None)
    ends_on: Mapped[dt.date | None] = mapped_column(default=None)
    owner_clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), index=True)
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    #: Privacy floor: research requests may ask for k >= min_k and suppression <= max_suppression only.
    min_k: Mapped[int] = mapped_column(default=DEFAULT_MIN_K, server_default=str(DEFAULT_MIN_K))
    max_suppression: Mapped[float] = mapped_column(default=DEFAULT_MAX_SUPPRESSION,
                                                   server_default=str(DEFAULT_MAX_SUPPRESSION))

    clinics: Mapped[list[StudyClinic]] = relationship(cascade="all, delete-orphan", order_by="StudyClinic.created_at")
    grants: Mapped[list[StudyGrant]] = relationship(cascade="all, delete-orphan", order_by="StudyGrant.created_at")


class StudyClinic(Base):
    """A clinic whose patients a study covers (joined by that clinic's admin)."""

    __tablename__ = "study_clinics"

    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    added_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StudyGrant(Base):
    """A researcher's access to a study's exports and statistics (until revoked)."""

    __tablename__ = "study_grants"

    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    researcher_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    granted_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class StudyParticipant(UUIDPrimaryKeyMixin, Base):
    """The secrets of one patient in one study: random code and date offset (days)."""

    __tablename__ = "study_participants"
    __table_args__ = (UniqueConstraint("study_id", "patient_id"), UniqueConstraint("study_id", "code"))

    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    date_shift_days: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StudyExport(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One export package request and its zip in storage."""

    __tablename__ = "study_exports"
    __table_args__ = (CheckConstraint(one_of("status", EXPORT_STATUSES), name="status_known"),)

    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    requested_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    #: Export parameters (k, max_suppression, parquet, algorithm_version, view).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    storage_key: Mapped[str | None] = mapped_column(String(512), default=None)
    size_bytes: Mapped[int | None] = mapped_column(default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Row counts and the k-anonymity report (no participant-level data).
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
