"""Clinical records: patients, consents, treatment courses, sessions, milestones,
assessments, adverse events and enrolment invitations.

Every row hangs off a :class:`Patient`, and every patient belongs to one clinic; access
rules (``backend.services.access``) filter on that chain. Controlled vocabularies live in
``schemas.clinical`` (the API and export contract) and are enforced here by CHECK
constraints too, so a bad value cannot enter by any path.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin, utcnow
from schemas import clinical as vocab


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL CHECK expression ``column IN ('a', 'b', ...)`` for a fixed vocabulary.

    Parameters
    ----------
    column : str
        Column name.
    values : tuple of str
        Allowed values (identifiers from ``schemas.clinical``; never user input).
    """
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


@dataclass(frozen=True)
class MilestoneWindow:
    """Calendar dates of one milestone for a given baseline date (all inclusive)."""

    target: dt.date
    opens: dt.date
    closes: dt.date


def milestone_window(baseline: dt.date, day_offset: int, before: int, after: int) -> MilestoneWindow:
    """Dates of a milestone's target and window.

    Parameters
    ----------
    baseline : datetime.date
        The course's baseline (day 0).
    day_offset, before, after : int
        Days, as in ``backend.services.milestones.MilestoneSpec``.
    """
    target = baseline + dt.timedelta(days=day_offset)
    return MilestoneWindow(
        target=target,
        opens=target - dt.timedelta(days=before),
        closes=target + dt.timedelta(days=after),
    )


class Patient(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A person treated at a clinic (identified data: name, birth date, contact).

    ``study_id`` is the pseudonym used in exports: random, persistent, never derived from
    identifying data.
    """

    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint(one_of("sex", vocab.SEXES), name="sex_known"),
        CheckConstraint("fitzpatrick_type BETWEEN 1 AND 6", name="fitzpatrick_range"),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), index=True)
    study_id: Mapped[str] = mapped_column(String(16), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[dt.date]
    sex: Mapped[str] = mapped_column(String(20))
    #: Fitzpatrick skin phototype I..VI stored as 1..6.
    fitzpatrick_type: Mapped[int]
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    #: The patient's own login, once enrolled (one user per patient).
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id"), unique=True, default=None
    )

    consent_events: Mapped[list[ConsentEvent]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", passive_deletes=True
    )
    courses: Mapped[list[TreatmentCourse]] = relationship(
        back_populates="patient",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(TreatmentCourse.created_at, TreatmentCourse.id)",
    )


class ConsentEvent(UUIDPrimaryKeyMixin, Base):
    """One grant or withdrawal of one consent scope. Never updated: the current state is
    the latest event per scope (highest ``seq``)."""

    __tablename__ = "consent_events"
    __table_args__ = (
        CheckConstraint(one_of("scope", vocab.CONSENT_SCOPES), name="scope_known"),
        CheckConstraint(one_of("action", vocab.CONSENT_ACTIONS), name="action_known"),
        # seq orders a scope's events without relying on clock resolution; two concurrent
        # writers for the same scope collide here instead of both "winning".
        UniqueConstraint("patient_id", "scope", "seq"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(10))
    #: Version of the consent text the patient saw, e.g. "2026-01".
    version: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    recorded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    patient: Mapped[Patient] = relationship(back_populates="consent_events")


class TreatmentCourse(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A series of treatments for one indication with one product and delivery method."""

    __tablename__ = "treatment_courses"
    __table_args__ = (
        CheckConstraint(one_of("indication", vocab.INDICATIONS), name="indication_known"),
        CheckConstraint(one_of("exosome_source", vocab.EXOSOME_SOURCES), name="source_known"),
        CheckConstraint(one_of("delivery", vocab.DELIVERY_METHODS), name="delivery_known"),
        CheckConstraint(one_of("status", vocab.COURSE_STATUSES), name="status_known"),
        CheckConstraint(
            "split_face_treated_side IS NULL OR " + one_of("split_face_treated_side", vocab.FACE_SIDES),
            name="split_side_known",
        ),
        CheckConstraint(
            "(concentration_value IS NULL) = (concentration_unit IS NULL)",
            name="concentration_value_with_unit",
        ),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    indication: Mapped[str] = mapped_column(String(40))
    product_name: Mapped[str] = mapped_column(String(200))
    exosome_source: Mapped[str] = mapped_column(String(40))
    concentration_value: Mapped[float | None] = mapped_column(default=None)
    concentration_unit: Mapped[str | None] = mapped_column(String(30), default=None)
    delivery: Mapped[str] = mapped_column(String(40))
    #: Sorted list of region names from ``schemas.clinical.FACE_REGIONS``.
    treated_regions: Mapped[list[str]] = mapped_column(JSON)
    #: None: whole-face design; "left"/"right": that side treated, the other is control.
    split_face_treated_side: Mapped[str | None] = mapped_column(String(5), default=None)
    baseline_date: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(20), default="active")
    notes: Mapped[str] = mapped_column(Text, default="")

    patient: Mapped[Patient] = relationship(back_populates="courses")
    sessions: Mapped[list[TreatmentSession]] = relationship(
        back_populates="course", cascade="all, delete-orphan", passive_deletes=True
    )
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="course",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Milestone.day_offset",
    )

    @property
    def split_face_control_side(self) -> str | None:
        """The untreated side of a split-face design, or None."""
        if self.split_face_treated_side is None:
            return None
        return "right" if self.split_face_treated_side == "left" else "left"


class TreatmentSession(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One treatment appointment within a course."""

    __tablename__ = "treatment_sessions"

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("treatment_courses.id", ondelete="CASCADE"), index=True
    )
    performed_on: Mapped[dt.date]
    #: Flat {name: number | string} of device parameters (e.g. needle depth in mm).
    device_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    performed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # The product actually applied (traceability: contamination and poor purification are the
    # known risks of these products, so a lot must lead to every patient who received it).
    product_manufacturer: Mapped[str | None] = mapped_column(String(200), default=None)
    #: Lot (batch) number as printed on the vial; indexed to find every session of a lot.
    product_lot: Mapped[str | None] = mapped_column(String(80), default=None, index=True)
    product_expiry: Mapped[dt.date | None] = mapped_column(default=None)
    #: Volume applied, millilitres.
    product_volume_ml: Mapped[float | None] = mapped_column(default=None)
    #: Particle count per vial as stated by the manufacturer.
    product_particles_per_vial: Mapped[float | None] = mapped_column(default=None)

    course: Mapped[TreatmentCourse] = relationship(back_populates="sessions")


class Milestone(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A scheduled follow-up visit of a course (see ``backend.services.milestones``).

    ``completed_*`` is the status field the photo pipeline sets (via
    ``mark_milestone_completed``) once a usable photo arrives; a follow-up assessment or a
    visit recorded by a clinician sets it too.
    """

    __tablename__ = "milestones"
    __table_args__ = (
        UniqueConstraint("course_id", "name"),
        CheckConstraint("day_offset >= 0", name="offset_not_negative"),
        CheckConstraint(
            "window_before_days >= 0 AND window_after_days >= 0", name="window_not_negative"
        ),
        CheckConstraint(
            "completed_via IS NULL OR " + one_of("completed_via", vocab.COMPLETION_SOURCES),
            name="completed_via_known",
        ),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("treatment_courses.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    day_offset: Mapped[int]
    window_before_days: Mapped[int]
    window_after_days: Mapped[int]
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    completed_via: Mapped[str | None] = mapped_column(String(20), default=None)
    completed_source_id: Mapped[uuid.UUID | None] = mapped_column(default=None)

    course: Mapped[TreatmentCourse] = relationship(back_populates="milestones")
    assessments: Mapped[list[Assessment]] = relationship(back_populates="milestone")

    @property
    def window(self) -> MilestoneWindow:
        """Calendar dates of this milestone from its course's baseline date."""
        return milestone_window(
            self.course.baseline_date, self.day_offset, self.window_before_days, self.window_after_days
        )


class Assessment(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A GAIS rating (and, from the patient, satisfaction) at one milestone.

    One rating per rater role and milestone: the patient's and the clinic's.
    """

    __tablename__ = "assessments"
    __table_args__ = (
        UniqueConstraint("milestone_id", "rater_role"),
        CheckConstraint(one_of("rater_role", vocab.RATER_ROLES), name="rater_role_known"),
        CheckConstraint("gais BETWEEN 1 AND 5", name="gais_range"),
        CheckConstraint(
            "satisfaction IS NULL OR (satisfaction BETWEEN 0 AND 10 AND rater_role = 'patient')",
            name="satisfaction_by_patient",
        ),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("treatment_courses.id", ondelete="CASCADE"), index=True
    )
    milestone_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("milestones.id", ondelete="CASCADE"), index=True
    )
    rater_role: Mapped[str] = mapped_column(String(20))
    rater_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    #: Global Aesthetic Improvement Scale, 1 (very much improved) .. 5 (worse).
    gais: Mapped[int]
    #: Patient satisfaction 0..10; None for clinician ratings.
    satisfaction: Mapped[int | None] = mapped_column(default=None)
    notes: Mapped[str] = mapped_column(Text, default="")

    milestone: Mapped[Milestone] = relationship(back_populates="assessments")


class AdverseEvent(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An unwanted effect during a course; ongoing while ``resolution_date`` is None."""

    __tablename__ = "adverse_events"
    __table_args__ = (
        CheckConstraint(one_of("event_type", vocab.ADVERSE_EVENT_TYPES), name="type_known"),
        CheckConstraint(one_of("severity", vocab.SEVERITIES), name="severity_known"),
        CheckConstraint(
            "resolution_date IS NULL OR resolution_date >= onset_date", name="resolved_after_onset"
        ),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("treatment_courses.id", ondelete="CASCADE"), index=True
    )
    milestone_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("milestones.id", ondelete="SET NULL"), default=None
    )
    event_type: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(10))
    onset_date: Mapped[dt.date]
    resolution_date: Mapped[dt.date | None] = mapped_column(default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    reporter_role: Mapped[str] = mapped_column(String(20))
    reported_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class Invitation(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A one-time enrolment invitation for a patient to create their login.

    Only keyed hashes of the code and the link token are stored (HMAC-SHA-256 with the
    app's secret key), so a database leak does not reveal usable codes.
    """

    __tablename__ = "invitations"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: Set when a newer invitation for the same patient replaced this one.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    used_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
