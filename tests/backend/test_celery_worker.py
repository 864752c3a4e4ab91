"""Celery backend against real processes: a Celery worker subprocess, Redis and PostgreSQL.

Needs TEST_REDIS_URL and TEST_DATABASE_URL (CI sets both); skipped otherwise.
The worker is started with the documented command
``celery -A backend.jobs.celery_app worker -l info -c 2`` and imports this
module (JOB_HANDLER_MODULES) for the test handler below.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from backend.jobs import JobContext, enqueue, job_backend, job_handler

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60

pytestmark = pytest.mark.skipif(
    not (TEST_REDIS_URL and TEST_DATABASE_URL),
    reason="needs TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) and TEST_DATABASE_URL (PostgreSQL)",
)


def redis_client():
    import redis

    # redis-py 8 defaults to a 5 s socket timeout, shorter than the blocking pops here.
    return redis.Redis.from_url(os.environ["TEST_REDIS_URL"], decode_responses=True, socket_timeout=WAIT_S + 10)


@job_handler("test_celery_effect")
def celery_effect(ctx: JobContext) -> str:
    """Record each start; block the first attempt if asked; apply the effect idempotently."""
    r = redis_client()
    run = ctx.payload["run"]
    r.set(f"{run}:niceness", os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    r.rpush(f"{run}:started", ctx.attempt)
    if ctx.payload.get("block_first") and ctx.attempt == 1:
        # The test kills the worker while it waits here.
        r.blpop([f"{run}:release"], timeout=WAIT_S)
    # The effect is keyed by job id: applying it again changes nothing.
    if r.hsetnx(f"{run}:effects", str(ctx.job_id), ctx.attempt):
        r.incr(f"{run}:effects_applied")
    return f"attempt-{ctx.attempt}"


@pytest.fixture(params=["postgresql"])
def database_backend(request: pytest.FixtureRequest) -> str:
    """The worker is another process: it needs a server database (PostgreSQL)."""
    return request.param


@pytest.fixture
def run_id() -> Iterator[str]:
    run = f"skintrack-test-{uuid.uuid4().hex[:12]}"
    yield run
    r = redis_client()
    r.delete(*(r.keys(f"{run}*") or [run]))


@pytest.fixture
def celery_env(app, run_id: str, tmp_path: Path) -> dict[str, str]:
    """Environment of worker processes: the test's database schema, Redis and a private queue."""
    search_path = app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"]
    separator = "&" if "?" in TEST_DATABASE_URL else "?"
    return {
        **os.environ,
        "DATABASE_URL": f"{TEST_DATABASE_URL}{separator}options={quote(search_path)}",
        "REDIS_URL": TEST_REDIS_URL,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "STORAGE_URL": f"file://{tmp_path / 'storage'}",
        "JOB_BACKEND": "celery",
        "JOB_CELERY_QUEUE": run_id,
        "JOB_HANDLER_MODULES": __name__,
        "JOB_LEASE_S": "2",
        "JOB_SWEEP_INTERVAL_S": "0.5",
        "JOB_SWEEP_GRACE_S": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }


@pytest.fixture
def producer(app, celery_env: dict[str, str]) -> Iterator[Any]:
    """The web side: an app whose enqueued jobs go to the private Celery queue."""
    from backend import create_app
    from backend.extensions import db

    application = create_app({
        "TESTING": True,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SQLALCHEMY_ENGINE_OPTIONS": app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "STORAGE_URL": celery_env["STORAGE_URL"],
        "REDIS_URL": TEST_REDIS_URL,
        "JOB_BACKEND": "celery",
        "JOB_CELERY_QUEUE": celery_env["JOB_CELERY_QUEUE"],
        # The web side and the workers share one configuration, as in a deployment: a job the
        # web side claims (a crashed runner in a test) is then leased as briefly as the workers'.
        **{key: celery_env[key] for key in ("JOB_LEASE_S", "JOB_SWEEP_INTERVAL_S", "JOB_SWEEP_GRACE_S")},
    })
    yield application
    job_backend(application).celery.close()
    with application.app_context():
        db.engine.dispose()


class Worker:
    """A Celery worker process group started with the documented command."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str) -> None:
        celery = Path(sys.executable).with_name("celery")
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(celery), "-A", "backend.jobs.celery_app", "worker", "-l", "info", "-c", "2",
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill -9 reaches the pool children too
        )

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT_S)

    def stop(self) -> None:
        """Warm shutdown: SIGTERM to the main process only, which stops its pool children."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def workers(celery_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[str], Worker]]:
    """``workers(name)`` starts a worker; all are stopped after the test."""
    started: list[Worker] = []

    def start(name: str) -> Worker:
        worker = Worker(celery_env, tmp_path / f"{name}.log", f"{name}-{uuid.uuid4().hex[:6]}")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for_job(app, job_id: uuid.UUID, status: str) -> Any:
    """Poll the jobs table until the job has ``status`` (deadline WAIT_S)."""
    from backend.extensions import db
    from backend.models.jobs import Job

    deadline = time.monotonic() + WAIT_S
    pause = threading.Event()
    with app.app_context():
        while time.monotonic() < deadline:
            job = db.session.get(Job, job_id)
            if job is not None and job.status == status:
                db.session.expunge(job)
                db.session.rollback()
                return job
            db.session.rollback()
            db.session.expire_all()
            pause.wait(0.1)  # poll interval of the deadline loop
    raise AssertionError(f"job {job_id} did not reach {status!r} within {WAIT_S} s")


def add_job(app, payload: dict[str, Any]) -> uuid.UUID:
    from backend.extensions import db

    with app.app_context():
        job = enqueue("test_celery_effect", payload)
        job_id = job.id
        db.session.commit()  # after commit the job id is sent to Redis
    return job_id


def started_attempt(run: str) -> str:
    popped = redis_client().blpop([f"{run}:started"], timeout=WAIT_S)
    assert popped is not None, "the handler did not start in time"
    return popped[1]


def test_celery_worker_runs_enqueued_job(producer, workers, run_id):
    workers("w")
    job_id = add_job(producer, {"run": run_id})
    job = wait_for_job(producer, job_id, "done")
    assert (job.attempts, job.result_ref) == (1, "attempt-1")
    assert redis_client().hgetall(f"{run_id}:effects") == {str(job_id): "1"}
    # Pool processes run nicer (JOB_WORKER_NICE, default 10) than the web side that started them.
    assert int(redis_client().get(f"{run_id}:niceness")) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)


def test_job_survives_worker_killed_mid_job(producer, workers, run_id):
    first = workers("first")
    job_id = add_job(producer, {"run": run_id, "block_first": True})
    assert started_attempt(run_id) == "1"
    first.kill()  # kill -9 while the handler runs: nothing is acknowledged or recorded

    running = wait_for_job(producer, job_id, "running")
    assert running.attempts == 1

    workers("second")
    assert started_attempt(run_id) == "2"  # the new worker redoes it once the lease runs out
    job = wait_for_job(producer, job_id, "done")
    assert (job.attempts, job.result_ref, job.locked_by) == (2, "attempt-2", None)
    r = redis_client()
    assert r.hgetall(f"{run_id}:effects") == {str(job_id): "2"}
    assert r.get(f"{run_id}:effects_applied") == "1"  # the effect happened exactly once
    assert r.llen(f"{run_id}:started") == 0  # no third run


def test_sweep_resends_lost_messages_but_not_onto_a_backlog(producer, workers, run_id):
    import datetime as dt

    from backend.jobs.celery_backend import Sweeper, broker_backlog
    from backend.jobs.runner import make_worker_id, runner_for_app

    celery = job_backend(producer).celery
    sweeper = Sweeper(producer, celery, interval_s=1)  # driven by hand here, not as a thread
    waiting = add_job(producer, {"run": run_id})
    crashed = add_job(producer, {"run": run_id})
    with celery.connection_for_write() as connection:
        assert broker_backlog(connection, run_id) == 2
        connection.default_channel.queue_purge(run_id)  # both messages are lost
    with producer.app_context():
        assert runner_for_app(producer, make_worker_id("crashed")).claim(crashed) is not None  # ...and it dies
    # Later: both jobs are overdue (queued past the grace time; lease expired).
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)
    producer.config["CLOCK"] = lambda: later

    assert sweeper.sweep_once() == 2
    # Messages are waiting now: only the dead worker's job is re-sent again, the queued one is not.
    assert sweeper.sweep_once() == 1
    with celery.connection_for_write() as connection:
        assert broker_backlog(connection, run_id) == 3

    producer.config["CLOCK"] = None
    workers("w")
    for job_id, attempts in ((waiting, 1), (crashed, 2)):
        job = wait_for_job(producer, job_id, "done")
        assert job.attempts == attempts
    assert redis_client().hlen(f"{run_id}:effects") == 2
