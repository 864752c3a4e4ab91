"""Background jobs: enqueue in the caller's transaction, run after commit.

Usage::

    from backend.jobs import enqueue, job_handler, JobContext

    @job_handler("analyse_photo")
    def analyse_photo(ctx: JobContext) -> str | None:
        ...  # idempotent; returns e.g. the analysis id

    photo = Photo(...); db.session.add(photo)
    enqueue("analyse_photo", {"photo_id": str(photo.id)}, dedupe_key=f"{photo.id}:{ALGORITHM_VERSION}")
    db.session.commit()  # job row and photo commit together; then the backend gets the job

The backend (``JOB_BACKEND``) is chosen by :func:`init_jobs`: ``thread``
(embedded default), ``celery`` or ``inline`` (tests).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.extensions import db, now
from backend.jobs.backends import CeleryBackend, InlineBackend, JobBackend, ThreadBackend
from backend.jobs.registry import JobContext, JobError, PermanentJobError, handler_for, job_handler
from backend.jobs.runner import JobRunner, JobSettings, Outcome, job_executed
from backend.models.jobs import Job, JobStatus

if TYPE_CHECKING:
    from flask import Flask

_EXTENSION_KEY = "skintrack.jobs"
_PENDING_KEY = "skintrack.pending_jobs"
_PAYLOAD_SCALARS = (str, int, float, bool, type(None))


def _check_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Payloads carry ids and flags only: flat JSON of scalars or lists of scalars."""
    if not isinstance(payload, Mapping):
        raise TypeError("job payload must be a mapping")
    for name, value in payload.items():
        values = value if isinstance(value, list) else [value]
        if not isinstance(name, str) or not all(isinstance(v, _PAYLOAD_SCALARS) for v in values):
            raise TypeError("job payload must map str to scalars (ids, flags) or lists of them")
    return dict(payload)


def enqueue(
    kind: str,
    payload: Mapping[str, Any],
    dedupe_key: str | None = None,
    *,
    max_attempts: int | None = None,
) -> Job:
    """Add a job to the current transaction of ``db.session``.

    The job reaches the backend only after that transaction commits; if it
    rolls back, the job never existed.

    Parameters
    ----------
    kind : str
        A kind registered with :func:`job_handler`.
    payload : mapping
        Object ids and flags (str, int, float, bool, None or lists of them);
        never health data.
    dedupe_key : str, optional
        With ``kind``, identifies the work (e.g. ``"<photo id>:<algorithm
        version>"``); if such a job exists, it is returned instead of adding one.
    max_attempts : int, optional
        Attempts before the job is failed; default ``JOB_MAX_ATTEMPTS``.

    Returns
    -------
    Job
        The new (flushed, so it has its id) or the existing job.
    """
    if handler_for(kind) is None:
        raise ValueError(f"no handler registered for job kind {kind!r}")
    data = _check_payload(payload)
    session = db.session
    if dedupe_key is not None:
        existing = _find_duplicate(kind, dedupe_key)
        if existing is not None:
            return existing
    from flask import current_app

    settings = JobSettings.from_config(current_app.config)
    job = Job(
        run_after=now(),
        kind=kind,
        payload=data,
        dedupe_key=dedupe_key,
        max_attempts=max_attempts or settings.max_attempts,
        status=JobStatus.QUEUED.value,
    )
    try:
        # A savepoint: losing a race on the dedupe key must not undo the caller's transaction.
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        existing = _find_duplicate(kind, dedupe_key) if dedupe_key is not None else None
        if existing is None:
            raise
        return existing
    session.info.setdefault(_PENDING_KEY, []).append(job.id)
    return job


def requeue_failed(job: Job) -> bool:
    """Give a permanently failed job a fresh set of attempts, in the current transaction.

    For an operator's retry after the cause was fixed (e.g. ``flask reanalyse`` once storage
    is back). The job reaches the backend after the transaction commits, like a new one.

    Returns
    -------
    bool
        True when ``job`` was failed and is queued again; False (unchanged) otherwise.
    """
    return _requeue(job, JobStatus.FAILED)


def requeue_done(job: Job) -> bool:
    """Queue a finished job again, in the current transaction: for a deduplicated job whose work is
    needed once more (a re-analysis that found its analysis up to date because the change it was
    made for had been undone, then the same change came back).

    Returns
    -------
    bool
        True when ``job`` was done and is queued again; False (unchanged) otherwise.
    """
    return _requeue(job, JobStatus.DONE)


def _requeue(job: Job, status: JobStatus) -> bool:
    if job.status != status.value:
        return False
    job.status = JobStatus.QUEUED.value
    job.attempts = 0
    job.run_after = now()
    job.locked_by = job.locked_until = job.started_at = job.finished_at = None
    job.last_error = None
    db.session.flush()
    db.session.info.setdefault(_PENDING_KEY, []).append(job.id)
    return True


def _find_duplicate(kind: str, dedupe_key: str) -> Job | None:
    return db.session.scalar(select(Job).where(Job.kind == kind, Job.dedupe_key == dedupe_key))


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # SQLAlchemy fires this for savepoints too (e.g. a second enqueue): nothing is committed yet
    job_ids = session.info.pop(_PENDING_KEY, None)
    if not job_ids:
        return
    from flask import current_app, has_app_context

    if has_app_context() and _EXTENSION_KEY in current_app.extensions:
        current_app.extensions[_EXTENSION_KEY].dispatch(job_ids)
    # Without a backend (e.g. a CLI script) the committed rows wait for a worker's poll or sweep.


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint rolled back; the outer transaction (and its jobs) may still commit. A job
        # enqueued inside that savepoint stays listed: dispatching a missing id is a no-op.
        return
    session.info.pop(_PENDING_KEY, None)


def init_jobs(app: Flask) -> JobBackend:
    """Create the job backend ``JOB_BACKEND`` names and attach it to ``app``.

    Imports ``JOB_HANDLER_MODULES`` (comma-separated module names) so their
    handlers are registered. The thread backend's worker is started by
    :func:`start_worker` (``wsgi.py``) or by the first request, unless
    ``JOB_WORKER_AUTOSTART`` is false (tests start it themselves).

    Parameters
    ----------
    app : flask.Flask
        The application being created.

    Returns
    -------
    JobBackend
        The backend, also in ``app.extensions["skintrack.jobs"]``.
    """
    for module in filter(None, (m.strip() for m in str(app.config.get("JOB_HANDLER_MODULES") or "").split(","))):
        importlib.import_module(module)
    name = app.config.get("JOB_BACKEND", "thread")
    backends = {"thread": ThreadBackend, "celery": CeleryBackend, "inline": InlineBackend}
    if name not in backends:
        raise ValueError(f"JOB_BACKEND must be one of {sorted(backends)}, not {name!r}")
    backend: JobBackend = backends[name](app)
    app.extensions[_EXTENSION_KEY] = backend
    if name == "thread" and app.config.get("JOB_WORKER_AUTOSTART", True):
        # Not at import: `flask db-upgrade` and other CLI commands must not start a worker.
        app.before_request(lambda: start_worker(app))
    return backend


def job_backend(app: Flask | None = None) -> JobBackend:
    """Return the job backend of ``app`` (default: the current app)."""
    from flask import current_app

    return (app or current_app).extensions[_EXTENSION_KEY]


def start_worker(app: Flask) -> None:
    """Start the app's in-process job worker, if its backend has one (idempotent)."""
    job_backend(app).start()


def stop_worker(app: Flask, timeout_s: float | None = 30.0) -> None:
    """Stop the in-process job worker after its current job."""
    job_backend(app).stop(timeout_s)


def get_job(job_id: uuid.UUID) -> Job | None:
    """Return the job with ``job_id``, or ``None``."""
    return db.session.get(Job, job_id)


def job_status_dict(job: Job) -> dict[str, Any]:
    """The API view of a job: state and timing, no payload.

    Returns
    -------
    dict
        ``id`` (str), ``kind``, ``status`` (queued|running|done|failed),
        ``attempts``, ``max_attempts``, ``last_error`` (str or None),
        ``created_at``, ``started_at``, ``finished_at``, ``next_attempt_at``
        (ISO 8601 UTC or None), ``result_ref``.
    """

    def iso(moment: Any) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "next_attempt_at": iso(job.run_after) if job.status == JobStatus.QUEUED.value else None,
        "result_ref": job.result_ref,
    }


__all__ = [
    "Job",
    "JobContext",
    "JobError",
    "JobRunner",
    "JobSettings",
    "JobStatus",
    "Outcome",
    "job_executed",
    "PermanentJobError",
    "enqueue",
    "get_job",
    "init_jobs",
    "job_backend",
    "job_handler",
    "job_status_dict",
    "start_worker",
    "stop_worker",
]
