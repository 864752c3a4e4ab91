"""Claiming and executing jobs: the one code path every backend (thread, celery, inline) runs.

Claiming is a compare-and-set UPDATE on the jobs table, so any number of
threads, processes and machines can race for jobs and each job is held by
at most one worker at a time. A claim is a lease: a worker that dies stops
renewing it, and once it expires the job is claimable again.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from blinker import signal
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from backend.extensions import db, now
from backend.jobs.registry import JobContext, JobError, PermanentJobError, handler_for
from backend.models.base import utcnow
from backend.models.jobs import LAST_ERROR_MAX_CHARS, Job, JobStatus
from backend.unit_of_work import end_unit_of_work

log = logging.getLogger(__name__)

#: Sent after every execution with ``job_id`` and ``outcome`` (:class:`Outcome`); for metrics and tests.
job_executed = signal("skintrack.job-executed")

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class JobSettings:
    """Timing of claims and retries.

    Attributes
    ----------
    lease_s : float
        Seconds a claim lasts without renewal (> 0); the running worker renews
        it every ``lease_s / 3``.
    retry_base_s : float
        Delay before the first retry in seconds (>= 0); doubles per attempt.
    retry_max_s : float
        Cap of the retry delay in seconds (>= retry_base_s).
    max_attempts : int
        Default attempts per job (>= 1).
    poll_interval_s : float
        Longest a thread worker idles before looking at the table again (> 0).
    sweep_grace_s : float
        A queued job due this long without being claimed is dispatched again
        (celery: its message may have been lost).
    """

    lease_s: float
    retry_base_s: float
    retry_max_s: float
    max_attempts: int
    poll_interval_s: float
    sweep_grace_s: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> JobSettings:
        """Read ``JOB_LEASE_S``, ``JOB_RETRY_BASE_S``, ... from a Flask config.

        Their defaults are in :data:`backend.config.SETTINGS` (an app's config has every key).
        """
        return cls(
            lease_s=float(config["JOB_LEASE_S"]),
            retry_base_s=float(config["JOB_RETRY_BASE_S"]),
            retry_max_s=float(config["JOB_RETRY_MAX_S"]),
            max_attempts=int(config["JOB_MAX_ATTEMPTS"]),
            poll_interval_s=float(config["JOB_POLL_INTERVAL_S"]),
            sweep_grace_s=float(config["JOB_SWEEP_GRACE_S"]),
        )


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker holds the lease of.

    Attributes
    ----------
    id : uuid.UUID
    kind : str
    payload : dict
    attempt : int
        This attempt's number, 1-based (the job's ``attempts`` after the claim).
    max_attempts : int
    """

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


@dataclass(frozen=True)
class Outcome:
    """How one execution ended.

    Attributes
    ----------
    status : str
        ``done``, ``failed``, ``queued`` (retry scheduled) or ``lost`` (the
        lease was taken over; nothing was recorded).
    retry_at : datetime or None
        When a scheduled retry becomes due (UTC).
    """

    status: str
    retry_at: dt.datetime | None = None


def runner_for_app(app: Any, worker_id: str) -> JobRunner:
    """A runner with the app's current job settings and the app's clock (:func:`backend.extensions.now`)."""
    return JobRunner(JobSettings.from_config(app.config), worker_id, clock=functools.partial(now, app))


def lower_worker_priority(increment: int) -> int | None:
    """Make the calling thread (and the threads it starts later) nicer by ``increment``.

    Analyses are background work; the upload request that waits for the quality gate is not.
    On a machine shared by both (the embedded default, or web and Celery workers on one
    host), a nicer worker lets the interactive requests have the CPU first. Linux sets
    niceness per thread (a thread is a task), so this leaves the request threads of the same
    process alone; new threads inherit it.

    Parameters
    ----------
    increment : int, 0..19 (0: leave the priority as it is)

    Returns
    -------
    int or None
        The thread's niceness afterwards; None where the platform cannot set it.
    """
    if increment <= 0 or not hasattr(os, "setpriority"):
        return None
    task = threading.get_native_id()
    try:
        niceness = min(19, os.getpriority(os.PRIO_PROCESS, task) + increment)
        os.setpriority(os.PRIO_PROCESS, task, niceness)
        return os.getpriority(os.PRIO_PROCESS, task)
    except OSError as exc:  # not permitted in this sandbox/container: run at normal priority
        log.warning("could not lower the job worker's priority (%s)", type(exc).__name__)
        return None


def make_worker_id(label: str = "worker") -> str:
    """Return a unique worker id ``host:pid:label:random`` (<= 128 chars)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{label[:20]}:{uuid.uuid4().hex[:8]}"


def retry_delay_s(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff after a failed attempt.

    Parameters
    ----------
    attempt : int
        The attempt that failed, >= 1.
    base_s : float
        Delay after the first failure, seconds, >= 0.
    max_s : float
        Upper bound, seconds.

    Returns
    -------
    float
        ``min(max_s, base_s * 2 ** (attempt - 1))`` seconds.
    """
    # Cap the exponent so huge attempt counts cannot overflow the float.
    return min(max_s, base_s * 2.0 ** min(attempt - 1, 60))


def summarise_error(exc: BaseException) -> str:
    """Short failure reason to store: a :class:`JobError`'s message, else only the type name.

    Exception messages from libraries can quote data (file names, values), so
    only messages that handlers wrote for the purpose are kept.
    """
    text = f"{type(exc).__name__}: {exc}" if isinstance(exc, JobError) else type(exc).__name__
    return text[:LAST_ERROR_MAX_CHARS]


def claimable(now: dt.datetime) -> ColumnElement[bool]:
    """SQL condition: queued and due, or running with an expired lease."""
    return or_(
        and_(Job.status == JobStatus.QUEUED.value, Job.run_after <= now),
        and_(Job.status == JobStatus.RUNNING.value, Job.locked_until < now),
    )


def held_by(job_id: uuid.UUID, worker_id: str) -> ColumnElement[bool]:
    """SQL condition: this worker still holds the job's lease."""
    return and_(Job.id == job_id, Job.status == JobStatus.RUNNING.value, Job.locked_by == worker_id)


class JobRunner:
    """Claims and executes jobs for one worker. Call its methods inside an app context.

    Parameters
    ----------
    settings : JobSettings
        Lease and retry timing.
    worker_id : str
        Unique id of this worker (see :func:`make_worker_id`).
    clock : callable, optional
        Returns the current UTC time; tests inject one to step through backoff.
    """

    def __init__(self, settings: JobSettings, worker_id: str, clock: Clock | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.clock = clock or utcnow

    def claim(self, job_id: uuid.UUID | None = None) -> ClaimedJob | None:
        """Take the lease of one claimable job (the given one, or the next due).

        Returns
        -------
        ClaimedJob or None
            ``None`` when nothing (or not that job) is claimable now.
        """
        session = db.session
        now = self.clock()
        candidates = select(Job.id).where(claimable(now)).order_by(Job.run_after, Job.created_at).limit(10)
        if job_id is not None:
            candidates = candidates.where(Job.id == job_id)
        if session.get_bind().dialect.name == "postgresql":
            # Concurrent claimers skip each other's candidates instead of queueing on row locks.
            candidates = candidates.with_for_update(skip_locked=True)
        try:
            for candidate in session.scalars(candidates).all():
                # Compare-and-set: the WHERE re-checks claimability, so only one racer wins.
                row = session.execute(
                    update(Job)
                    .where(Job.id == candidate, claimable(now))
                    .values(
                        status=JobStatus.RUNNING.value,
                        locked_by=self.worker_id,
                        locked_until=now + dt.timedelta(seconds=self.settings.lease_s),
                        attempts=Job.attempts + 1,
                        started_at=func.coalesce(Job.started_at, now),
                    )
                    .returning(Job.kind, Job.payload, Job.attempts, Job.max_attempts)
                    .execution_options(synchronize_session=False)
                ).first()
                if row is not None:
                    session.commit()
                    return ClaimedJob(candidate, row.kind, dict(row.payload or {}), row.attempts, row.max_attempts)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return None

    def execute(self, job: ClaimedJob) -> Outcome:
        """Run the handler of a claimed job and record how it ended.

        The handler's pending writes are committed in the same transaction
        that marks the job done, and only if this worker still holds the
        lease; otherwise they are rolled back (another worker owns the job).
        """
        session = db.session
        if job.attempt > job.max_attempts:
            # The previous holder died during the last allowed attempt.
            return self._record_failure(job, "worker lost during the final attempt", permanent=True)
        handler = handler_for(job.kind)
        if handler is None:
            return self._record_failure(job, f"no handler registered for job kind {job.kind!r}", permanent=True)
        context = JobContext(job_id=job.id, kind=job.kind, payload=job.payload, attempt=job.attempt)
        try:
            with LeaseRenewer(self, job.id):
                result_ref = handler(context)
            if result_ref is not None and (not isinstance(result_ref, str) or len(result_ref) > 200):
                raise TypeError("job handler must return None or a str of at most 200 characters")
            now = self.clock()
            marked = session.execute(
                update(Job)
                .where(held_by(job.id, self.worker_id))
                .values(
                    status=JobStatus.DONE.value,
                    finished_at=now,
                    result_ref=result_ref,
                    last_error=None,
                    locked_by=None,
                    locked_until=None,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if marked != 1:
                end_unit_of_work(commit=False)
                log.warning("job %s (%s): lease lost before completion; result discarded", job.id, job.kind)
                return Outcome("lost")
            end_unit_of_work(commit=True)  # and what the handler left for after its commit
        except Exception as exc:
            end_unit_of_work(commit=False)
            reason = summarise_error(exc)
            log.warning("job %s (%s) attempt %d/%d failed: %s", job.id, job.kind, job.attempt, job.max_attempts, reason)
            log.debug("job %s traceback", job.id, exc_info=True)
            return self._record_failure(job, reason, permanent=isinstance(exc, PermanentJobError))
        log.info("job %s (%s) done on attempt %d", job.id, job.kind, job.attempt)
        return Outcome("done")

    def _record_failure(self, job: ClaimedJob, reason: str, *, permanent: bool) -> Outcome:
        """Schedule a retry with backoff, or mark the job failed after its last attempt."""
        session = db.session
        now = self.clock()
        values: dict[str, Any] = {"last_error": reason[:LAST_ERROR_MAX_CHARS], "locked_by": None, "locked_until": None}
        if permanent or job.attempt >= job.max_attempts:
            values.update(status=JobStatus.FAILED.value, finished_at=now)
            outcome = Outcome("failed")
        else:
            retry_at = now + dt.timedelta(
                seconds=retry_delay_s(job.attempt, self.settings.retry_base_s, self.settings.retry_max_s)
            )
            values.update(status=JobStatus.QUEUED.value, run_after=retry_at)
            outcome = Outcome("queued", retry_at)
        try:
            changed = session.execute(
                update(Job).where(held_by(job.id, self.worker_id)).values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()
        except BaseException:
            session.rollback()
            raise
        if changed != 1:
            return Outcome("lost")
        if outcome.status == "failed":
            log.warning("job %s (%s) failed permanently after %d attempt(s)", job.id, job.kind, job.attempt)
        return outcome

    def run_one(self, job_id: uuid.UUID | None = None) -> Outcome | None:
        """Claim and execute one job; ``None`` if nothing was claimable."""
        job = self.claim(job_id)
        if job is None:
            return None
        outcome = self.execute(job)
        job_executed.send(self, job_id=job.id, outcome=outcome)
        return outcome

    def renew_lease(self, job_id: uuid.UUID) -> bool:
        """Extend this worker's lease of a running job; return whether it still held it.

        Uses its own connection, because the handler may be in the middle of
        a transaction on the session.
        """
        until = self.clock() + dt.timedelta(seconds=self.settings.lease_s)
        with db.engine.begin() as connection:
            result = connection.execute(update(Job).where(held_by(job_id, self.worker_id)).values(locked_until=until))
        return result.rowcount == 1

    def next_due_in_s(self) -> float | None:
        """Seconds until the earliest queued job or lease expiry becomes claimable, or ``None``."""
        session = db.session
        try:
            next_queued = session.scalar(select(func.min(Job.run_after)).where(Job.status == JobStatus.QUEUED.value))
            next_expiry = session.scalar(
                select(func.min(Job.locked_until)).where(Job.status == JobStatus.RUNNING.value)
            )
            session.commit()
        except BaseException:
            session.rollback()
            raise
        # func.min keeps the column type, so these come back timezone-aware.
        moments = [moment for moment in (next_queued, next_expiry) if moment is not None]
        if not moments:
            return None
        return max(0.0, (min(moments) - self.clock()).total_seconds())

    def overdue_job_ids(self, include_queued: bool = True) -> list[uuid.UUID]:
        """Ids of jobs a sweep should dispatch again.

        Running jobs whose lease expired (their worker died) and, if
        ``include_queued``, queued jobs due for longer than ``sweep_grace_s``
        (their dispatch may have been lost).
        """
        session = db.session
        now = self.clock()
        stale = now - dt.timedelta(seconds=self.settings.sweep_grace_s)
        abandoned = and_(Job.status == JobStatus.RUNNING.value, Job.locked_until < now)
        waiting = and_(Job.status == JobStatus.QUEUED.value, Job.run_after <= stale)
        try:
            ids = session.scalars(
                select(Job.id).where(or_(abandoned, waiting) if include_queued else abandoned)
                .order_by(Job.run_after)
                .limit(1000)
            ).all()
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return list(ids)


class LeaseRenewer:
    """Renews a job's lease every ``lease_s / 3`` seconds while the handler runs.

    A context manager: the renewal thread starts on enter and stops on exit.
    """

    def __init__(self, runner: JobRunner, job_id: uuid.UUID) -> None:
        from flask import current_app

        self._app = current_app._get_current_object()  # type: ignore[attr-defined]
        self._runner = runner
        self._job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> LeaseRenewer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self._runner.settings.lease_s / 3
        with self._app.app_context():
            while not self._stop.wait(interval):
                try:
                    if not self._runner.renew_lease(self._job_id):
                        log.warning("job %s: lease no longer held by this worker", self._job_id)
                        return
                except SQLAlchemyError as exc:
                    # SQLite may be write-locked by the handler's own transaction; try again next tick.
                    log.info("job %s: lease renewal deferred (%s)", self._job_id, type(exc).__name__)
