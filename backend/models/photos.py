"""Photos, two-phase uploads, analysis results per region and measure, overlay references.

Storage holds bytes only; every fact about a photo (owner, milestone, capture conditions,
quality, usability, deletion) lives here. Keys in storage are derived from ids
(:func:`photo_prefix`), so a photo's bytes and everything derived from them sit under one
prefix that deletion removes as a whole.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from backend.models.clinical import Milestone, one_of
from schemas.photos import CAPTURE_TIME_SOURCES, DELETION_REASONS, PHOTO_VIEWS, UPLOAD_STATUSES


def photo_prefix(patient_id: uuid.UUID, photo_id: uuid.UUID) -> str:
    """Storage prefix of one photo and everything derived from it (ends with ``/``)."""
    return f"photos/{patient_id}/{photo_id}/"


class Photo(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One uploaded face photo (sanitised bytes in storage under :func:`photo_prefix`).

    Attributes
    ----------
    patient_id, course_id : UUID
        Owner and treatment course.
    milestone_id : UUID or None
        The milestone whose window contains the capture date (or the one the app named);
        None when ``out_of_window`` and no milestone was named.
    out_of_window : bool
        The capture date lies outside the assigned (or every) milestone window.
    view : str
        One of :data:`PHOTO_VIEWS`.
    captured_at : datetime
        Capture time, UTC; ``capture_time_source`` says whether the app, EXIF or the
        upload time gave it.
    capture_date : date
        Calendar date of capture in the photographer's local time (windows are dates).
    make_up : bool or None
        Capture condition reported by the app.
    device : str or None
        Device model reported by the app (never a serial number).
    content_type, image_format, width, height, size_bytes, sha256
        Of the stored (sanitised) bytes; type sniffed from the bytes, never from the client.
    storage_key : str or None
        Key of the sanitised photo; None once the bytes were removed.
    quality : dict
        The quality-gate report (``ok``, ``problems`` with code/message/value/threshold).
    usable : bool
        ``quality.ok`` at upload time.
    superseded_by_id : UUID or None
        A later photo of the same course, milestone and view that counts (a usable retake).
    repeat_of_id : UUID or None
        Set on a repeat capture: the photo of the same patient, course, milestone and view taken
        at most 30 minutes earlier that this one repeats (to measure noise; it never counts for
        the milestone and never supersedes).
    analysis_job_id : UUID or None
        The latest analysis job.
    deleted_at, deletion_reason
        Set when the bytes (and overlays) were removed; the row stays for the record.
    """

    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint(one_of("view", PHOTO_VIEWS), name="view_known"),
        CheckConstraint(one_of("capture_time_source", CAPTURE_TIME_SOURCES), name="capture_time_source_known"),
        CheckConstraint(
            "deletion_reason IS NULL OR " + one_of("deletion_reason", DELETION_REASONS),
            name="deletion_reason_known",
        ),
        CheckConstraint("size_bytes > 0 AND width > 0 AND height > 0", name="dimensions_positive"),
        # Listing a patient's photos in cursor order; finding a milestone slot's photos.
        Index("ix_photos_patient_created", "patient_id", "created_at", "id"),
        Index("ix_photos_slot", "course_id", "milestone_id", "view"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("treatment_courses.id", ondelete="CASCADE"))
    milestone_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("milestones.id", ondelete="SET NULL"), default=None
    )
    out_of_window: Mapped[bool] = mapped_column(default=False)
    view: Mapped[str] = mapped_column(String(8))
    captured_at: Mapped[dt.datetime]
    capture_date: Mapped[dt.date]
    capture_time_source: Mapped[str] = mapped_column(String(8))
    make_up: Mapped[bool | None] = mapped_column(default=None)
    device: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Camera settings the app reported (exposure/white-balance mode, exposure time, ISO,
    #: colour temperature, ...): capture conditions, never identifiers.
    capture_conditions: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    uploaded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    content_type: Mapped[str] = mapped_column(String(32))
    image_format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int]
    height: Mapped[int]
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(512), default=None)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    usable: Mapped[bool] = mapped_column(default=False)
    superseded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("photos.id", ondelete="SET NULL"), default=None
    )
    analysis_job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None
    )
    deleted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    deletion_reason: Mapped[str | None] = mapped_column(String(20), default=None)
    repeat_of_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("photos.id", ondelete="SET NULL"), default=None, index=True
    )

    milestone: Mapped[Milestone | None] = relationship(lazy="joined", foreign_keys=[milestone_id])
    analyses: Mapped[list[PhotoAnalysis]] = relationship(
        back_populates="photo", order_by="PhotoAnalysis.created_at", cascade="all, delete-orphan",
        foreign_keys="PhotoAnalysis.photo_id",
    )

    @property
    def prefix(self) -> str:
        """Storage prefix of this photo and its derived files."""
        return photo_prefix(self.patient_id, self.id)


class PhotoUpload(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A two-phase upload: metadata first, bytes PUT to a signed URL, then ``complete``.

    Attributes
    ----------
    patient_id, course_id : UUID
    created_by_user_id : UUID
        Only this user may complete it.
    capture : dict
        The photo metadata given at creation (milestone_id, captured_at, view, make_up,
        device), applied when the upload completes.
    declared_size : int
        Bytes the client will PUT (exact).
    declared_content_type : str
        Media type the client will PUT (re-sniffed at completion).
    staging_key : str
        Where the client's bytes land; removed once completed.
    expires_at : datetime
        End of the signed URL's validity, UTC.
    status : str
        ``pending`` or ``completed``.
    photo_id : UUID or None
        The photo made at completion.
    """

    __tablename__ = "photo_uploads"
    __table_args__ = (
        CheckConstraint(one_of("status", UPLOAD_STATUSES), name="status_known"),
        CheckConstraint("declared_size > 0", name="declared_size_positive"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("treatment_courses.id", ondelete="CASCADE"))
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    capture: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    declared_size: Mapped[int]
    declared_content_type: Mapped[str] = mapped_column(String(32))
    staging_key: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="pending")
    photo_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"), default=None)


class PhotoAnalysis(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One analysis of one photo by one algorithm version (older versions are kept).

    Attributes
    ----------
    photo_id : UUID
    algorithm_version : str
        ``imaging.version.ALGORITHM_VERSION`` of the run; unique per photo.
    baseline_photo_id : UUID or None
        The baseline photo this follow-up was registered to (None for a baseline itself,
        or when the course has no usable baseline yet). When another baseline comes to count,
        the analysis is replaced by one registered to it (same photo and version, new id).
    quality : dict
        Full-resolution quality report of the analysis.
    summary : dict
        ``imaging.analysis.AnalysisResult.to_dict()`` without per-region measures
        (colour reference and correction, geometry, registration, timings).
    face_found : bool
        False when nothing could be measured.
    baseline_reference_key : str or None
        Storage key of the serialised baseline reference (baseline-milestone photos only).
    """

    __tablename__ = "photo_analyses"
    __table_args__ = (UniqueConstraint("photo_id", "algorithm_version"),)

    photo_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    algorithm_version: Mapped[str] = mapped_column(String(32))
    baseline_photo_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("photos.id", ondelete="SET NULL"), default=None
    )
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    face_found: Mapped[bool] = mapped_column(default=False)
    baseline_reference_key: Mapped[str | None] = mapped_column(String(512), default=None)

    photo: Mapped[Photo] = relationship(back_populates="analyses", foreign_keys=[photo_id])
    measurements: Mapped[list[PhotoMeasurement]] = relationship(
        back_populates="analysis", cascade="all, delete-orphan", order_by="(PhotoMeasurement.region, PhotoMeasurement.measure)"
    )
    overlays: Mapped[list[PhotoOverlay]] = relationship(
        back_populates="analysis", cascade="all, delete-orphan", order_by="PhotoOverlay.name"
    )


class PhotoMeasurement(UUIDPrimaryKeyMixin, Base):
    """One number of one analysis: a measure in a region (``all_skin`` for the whole face).

    Attributes
    ----------
    analysis_id : UUID
    region : str
        ``all_skin`` or a region name of ``imaging.catalogue.REGION_NAMES``.
    measure : str
        Dotted path of the measure in imaging's result (e.g. ``redness.mean_a_star``).
    value : float or None
        None when the measure could not be computed (NaN).
    """

    __tablename__ = "photo_measurements"
    __table_args__ = (UniqueConstraint("analysis_id", "region", "measure"),)

    analysis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("photo_analyses.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(String(40))
    measure: Mapped[str] = mapped_column(String(120))
    value: Mapped[float | None] = mapped_column(Float, default=None)

    analysis: Mapped[PhotoAnalysis] = relationship(back_populates="measurements")


class PhotoOverlay(UUIDPrimaryKeyMixin, Base):
    """A PNG overlay of one analysis, stored under the photo's prefix.

    Attributes
    ----------
    analysis_id : UUID
    name : str
        Overlay name from imaging (``redness``, ``pigment``, ``wrinkles``, ``regions``,
        ``before_after``).
    storage_key : str or None
        None once removed (photo deleted, consent withdrawn).
    size_bytes : int
    """

    __tablename__ = "photo_overlays"
    __table_args__ = (UniqueConstraint("analysis_id", "name"),)

    analysis_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("photo_analyses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    storage_key: Mapped[str | None] = mapped_column(String(512), default=None)
    size_bytes: Mapped[int] = mapped_column(default=0)

    analysis: Mapped[PhotoAnalysis] = relationship(back_populates="overlays")
