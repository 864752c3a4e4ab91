"""The Celery app bound to a Flask app: settings, the run-job task, the sweep.

Celery only carries job ids. The task claims the job from the table with
the same compare-and-set as the thread backend, so a message delivered twice
(redelivery after a worker died, a sweep re-send) runs the job at most once
at a time, and a lost message is found again by the sweep.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import TYPE_CHECKING

from celery import Celery

from backend.jobs.runner import JobRunner, JobSettings, make_worker_id, runner_for_app

if TYPE_CHECKING:
    from flask import Flask
    from kombu import Connection

log = logging.getLogger(__name__)

RUN_JOB_TASK = "skintrack.run_job"
DEFAULT_QUEUE = "skintrack-jobs"


def make_celery(flask_app: Flask) -> Celery:
    """Create the Celery app for ``flask_app`` (broker ``REDIS_URL``) and register the task.

    Parameters
    ----------
    flask_app : flask.Flask
        Supplies the config and the app context tasks run in.

    Returns
    -------
    celery.Celery
        Configured for at-least-once delivery: late acks, reject on worker
        loss, one prefetched message per process.
    """
    config = flask_app.config
    settings = JobSettings.from_config(config)
    celery = Celery("skintrack", broker=config["REDIS_URL"], set_as_current=False)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=config.get("JOB_CELERY_QUEUE") or DEFAULT_QUEUE,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        # Unacked messages return to the queue after this long; the lease decides who runs the job.
        broker_transport_options={"visibility_timeout": max(3600, int(settings.lease_s * 4))},
        worker_hijack_root_logger=False,
    )
    worker_ids: dict[int, str] = {}

    def runner_for_this_process() -> JobRunner:
        # Prefork children each need their own worker id (the pid is part of it).
        pid = os.getpid()
        if pid not in worker_ids:
            worker_ids[pid] = make_worker_id("celery")
        return runner_for_app(flask_app, worker_ids[pid])

    @celery.task(name=RUN_JOB_TASK)
    def run_job(job_id: str) -> str:
        """Claim and execute one job by id; return how it ended (for worker logs)."""
        runner = runner_for_this_process()
        with flask_app.app_context():
            outcome = runner.run_one(uuid.UUID(job_id))
        if outcome is None:
            return "not claimable"
        if outcome.status == "queued" and outcome.retry_at is not None:
            delay_s = max(0.0, (outcome.retry_at - runner.clock()).total_seconds())
            run_job.apply_async(args=[job_id], countdown=delay_s)
        return outcome.status

    return celery


def send_job(celery: Celery, job_id: uuid.UUID, connection: Connection | None = None) -> None:
    """Queue the run-job task for ``job_id`` (on ``connection`` if given, else the app's pool)."""
    celery.send_task(RUN_JOB_TASK, args=[str(job_id)], connection=connection)


def broker_backlog(connection: Connection, queue: str) -> int:
    """Messages waiting in ``queue`` on the broker (not counting ones workers hold)."""
    try:
        return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except connection.channel_errors:
        return 0  # the queue does not exist yet: nothing is waiting


class Sweeper:
    """Re-sends overdue jobs to Celery: at start and every ``interval_s`` seconds.

    This is what makes a job survive a lost message or a worker killed
    mid-job: the table still says queued (or running with an expired lease).
    """

    def __init__(self, flask_app: Flask, celery: Celery, interval_s: float) -> None:
        self._app = flask_app
        self._celery = celery
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._runner = runner_for_app(flask_app, make_worker_id("sweep"))
        self._thread = threading.Thread(target=self._run, name="skintrack-job-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval_s + 5)

    def sweep_once(self) -> int:
        """Dispatch every overdue job once; return how many were sent.

        Jobs with an expired lease are always re-sent. Queued jobs are re-sent
        only while the broker queue is empty: waiting messages mean the
        workers are merely busy, and re-sending then would pile duplicates
        onto a backlog.
        """
        # A connection of this thread's own: the worker's pooled connections belong to its
        # event loop, and using them from another thread loses messages.
        with self._celery.connection_for_write() as connection:
            backlog = broker_backlog(connection, self._celery.conf.task_default_queue)
            with self._app.app_context():
                job_ids = self._runner.overdue_job_ids(include_queued=backlog == 0)
            for job_id in job_ids:
                send_job(self._celery, job_id, connection)
        if job_ids:
            log.info("sweep re-dispatched %d overdue job(s)", len(job_ids))
        return len(job_ids)

    def _run(self) -> None:
        while True:
            try:
                self.sweep_once()
            except Exception as exc:  # database or broker briefly unavailable
                log.warning("job sweep failed (%s); retrying", type(exc).__name__)
            if self._stop.wait(self._interval_s):
                return
