"""Celery worker entry point.

Start a worker (same environment as the web service: DATABASE_URL, REDIS_URL,
STORAGE_URL, JOB_HANDLER_MODULES...)::

    celery -A backend.jobs.celery_app worker -l info -c 2

Importing this module creates the Flask app from the environment; the web
service never imports it (it sends tasks through
:class:`backend.jobs.backends.CeleryBackend`).
"""

from __future__ import annotations

from celery import signals

from backend import create_app
from backend.extensions import db
from backend.jobs import job_backend
from backend.jobs.backends import CeleryBackend
from backend.jobs.celery_backend import Sweeper
from backend.jobs.runner import lower_worker_priority

# Jobs enqueued by handlers inside the worker also go through Celery.
flask_app = create_app({"JOB_BACKEND": "celery"})
_backend = job_backend(flask_app)
assert isinstance(_backend, CeleryBackend)
app = _backend.celery
_sweeper: Sweeper | None = None


@signals.worker_process_init.connect
def _fresh_connections_in_child(**_: object) -> None:
    """Drop database connections inherited across fork: a socket must not be shared by processes
    (the S3 storage makes its own client in each process: ``S3Storage.client``).

    Also lower the child's priority (``JOB_WORKER_NICE``): analyses yield the CPU to web
    requests sharing the host.
    """
    with flask_app.app_context():
        db.engine.dispose(close=False)
    lower_worker_priority(flask_app.config["JOB_WORKER_NICE"])


@signals.worker_ready.connect
def _start_sweeper(**_: object) -> None:
    """Re-dispatch jobs left behind by dead workers or lost messages, now and periodically."""
    global _sweeper
    _sweeper = Sweeper(flask_app, app, float(flask_app.config.get("JOB_SWEEP_INTERVAL_S", 30)))
    _sweeper.start()


@signals.worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    if _sweeper is not None:
        _sweeper.stop()
