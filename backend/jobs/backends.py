"""Job backends: who runs a job once its row is committed.

* :class:`InlineBackend` (tests): runs it right after the commit, in-process.
* :class:`ThreadBackend` (embedded default): a worker thread in the service
  process polls the table, and wakes at once when a job is enqueued.
* :class:`CeleryBackend`: sends the job id to a Celery worker over Redis
  (see :mod:`backend.jobs.celery_app`).

All three execute jobs through :class:`backend.jobs.runner.JobRunner`, so
the jobs table stays the single truth.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import SQLAlchemyError

from backend.jobs.runner import lower_worker_priority, make_worker_id, runner_for_app

if TYPE_CHECKING:
    from celery import Celery
    from flask import Flask

log = logging.getLogger(__name__)

#: Longest a process exit waits for the thread worker's current job.
SHUTDOWN_WAIT_S = 30.0


class JobBackend(Protocol):
    """Hands committed jobs to whatever runs them."""

    def dispatch(self, job_ids: Iterable[uuid.UUID]) -> None:
        """Called after the transaction that enqueued ``job_ids`` committed."""
        ...

    def start(self) -> None:
        """Start background workers, if the backend has any (idempotent)."""
        ...

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop background workers after their current job."""
        ...


class InlineBackend:
    """Runs each job to completion right after the enqueuing transaction commits (tests only).

    Retries are not waited for: a job whose retry is scheduled stays queued.
    """

    def __init__(self, app: Flask) -> None:
        self._app = app
        self.worker_id = make_worker_id("inline")

    def dispatch(self, job_ids: Iterable[uuid.UUID]) -> None:
        runner = runner_for_app(self._app, self.worker_id)
        # A fresh app context gives a fresh session: the committing one cannot run SQL now.
        with self._app.app_context():
            for job_id in job_ids:
                runner.run_one(job_id)

    def start(self) -> None:
        """Nothing to start."""

    def stop(self, timeout_s: float | None = None) -> None:
        """Nothing to stop."""


class ThreadBackend:
    """One worker thread inside the service process.

    It claims due jobs until none is left, then waits until the earliest
    scheduled retry or lease expiry, at most ``poll_interval_s``, or until
    :meth:`dispatch` wakes it. Unfinished jobs of a previous process are
    picked up on start (queued) or once their lease expires (running).
    """

    def __init__(self, app: Flask) -> None:
        self._app = app
        self.worker_id = make_worker_id("thread")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._atexit_registered = False

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def dispatch(self, job_ids: Iterable[uuid.UUID]) -> None:
        self._wake.set()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="skintrack-job-worker", daemon=True)
            self._thread.start()
            if not self._atexit_registered:
                # Let the current job finish when the process exits normally; a kill is covered by the lease.
                atexit.register(self.stop, SHUTDOWN_WAIT_S)
                self._atexit_registered = True
            log.info("job worker thread started (%s)", self.worker_id)

    def stop(self, timeout_s: float | None = None) -> None:
        with self._lock:
            thread = self._thread
            self._stopping.set()
            self._wake.set()
        if thread is not None:
            thread.join(timeout_s)

    def _loop(self) -> None:
        lower_worker_priority(self._app.config["JOB_WORKER_NICE"])
        while not self._stopping.is_set():
            # Clear before looking, so a dispatch during the look is not lost.
            self._wake.clear()
            runner = runner_for_app(self._app, self.worker_id)
            wait_s = runner.settings.poll_interval_s
            try:
                with self._app.app_context():
                    while not self._stopping.is_set() and runner.run_one() is not None:
                        pass
                    next_due = runner.next_due_in_s()
                if next_due is not None:
                    wait_s = min(wait_s, next_due)
            except SQLAlchemyError as exc:
                # Database unreachable or not migrated yet: keep polling, do not crash the service.
                log.warning("job worker: database error (%s); retrying in %.0f s", type(exc).__name__, wait_s)
            except Exception:
                log.exception("job worker: unexpected error; continuing")
            self._wake.wait(wait_s)
        log.info("job worker thread stopped (%s)", self.worker_id)


class CeleryBackend:
    """Sends job ids to Celery workers (``celery -A backend.jobs.celery_app worker``).

    A failed send is only logged: the job row is committed and the workers'
    sweep dispatches it again (see :mod:`backend.jobs.celery_app`).
    """

    def __init__(self, app: Flask) -> None:
        from backend.jobs.celery_backend import make_celery

        self.celery: Celery = make_celery(app)

    def dispatch(self, job_ids: Iterable[uuid.UUID]) -> None:
        from backend.jobs.celery_backend import send_job

        for job_id in job_ids:
            try:
                send_job(self.celery, job_id)
            except Exception as exc:  # broker down: the sweep re-sends later
                log.warning("job %s: dispatch to celery failed (%s); the sweep will retry", job_id, type(exc).__name__)

    def start(self) -> None:
        """Workers are separate processes."""

    def stop(self, timeout_s: float | None = None) -> None:
        """Workers are separate processes."""
