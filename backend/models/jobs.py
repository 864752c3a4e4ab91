"""Background jobs: the table is the truth about every job, whichever backend runs it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin, utcnow

#: Longest stored error summary; summaries name the failure, never the data.
LAST_ERROR_MAX_CHARS = 500


class JobStatus(enum.StrEnum):
    """Life cycle: queued -> running -> done | failed (running -> queued again on retry)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One unit of background work, e.g. analysing one photo.

    Attributes
    ----------
    kind : str
        Handler name registered with ``@job_handler(kind)``.
    payload : dict
        JSON arguments: object ids only, never health data.
    dedupe_key : str or None
        With ``kind``, unique: enqueueing the same work twice returns the
        first job (e.g. ``"<photo id>:<algorithm version>"``).
    status : str
        A :class:`JobStatus` value.
    attempts : int
        Times the job was claimed so far (>= 0).
    max_attempts : int
        After this many failed attempts the job is ``failed``.
    run_after : datetime
        Not claimed before this time (UTC); pushed back by retry backoff.
    locked_by : str or None
        Worker id holding the lease while running.
    locked_until : datetime or None
        Lease end; a running job whose lease ended (crashed worker) is claimable again.
    last_error : str or None
        Short reason of the last failure (exception type, or a handler's safe message).
    started_at, finished_at : datetime or None
        First claim; reaching ``done`` or ``failed``.
    result_ref : str or None
        What the handler produced (e.g. an analysis id), for the API.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("kind", "dedupe_key"),
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="status_valid"
        ),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="attempts_valid"),
        # The claim query: next claimable job by time.
        Index("ix_jobs_status_run_after", "status", "run_after"),
    )

    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    run_after: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_MAX_CHARS))
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    result_ref: Mapped[str | None] = mapped_column(String(200))

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.status} attempt {self.attempts}/{self.max_attempts}>"
