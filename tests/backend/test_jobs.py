"""Jobs: transactional enqueue, the thread worker, retries, leases, restarts, dedupe.

Runs on the real databases of the ``app`` fixture (SQLite, and PostgreSQL
when TEST_DATABASE_URL is set). Time-dependent behaviour uses an injected
clock; waiting uses events signalled by the worker, and states only a query can see are polled
with a pause (``tests.waiting.wait_until``).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from backend.extensions import db
from backend.jobs import (
    JobContext,
    JobError,
    JobRunner,
    JobSettings,
    PermanentJobError,
    enqueue,
    job_backend,
    job_executed,
    job_handler,
    job_status_dict,
    start_worker,
)
from backend.jobs.runner import lower_worker_priority, make_worker_id, retry_delay_s
from backend.models.jobs import Job, JobStatus
from tests.backend.app_helpers import close_app, sibling_app
from tests.waiting import wait_until

WAIT_S = 30.0

#: Handler effects, keyed by job id: how often each handler ran, and the idempotent result.
RUNS: Counter[str] = Counter()
EFFECTS: dict[str, str] = {}
#: How many times a "flaky" job fails before succeeding, by job id.
FAILURES_WANTED: dict[str, int] = {}
RELEASE: dict[str, threading.Event] = {}
STARTED: dict[str, threading.Event] = {}


@job_handler("test_record")
def record(ctx: JobContext) -> str:
    RUNS[str(ctx.job_id)] += 1
    EFFECTS.setdefault(str(ctx.job_id), ctx.payload["subject_id"])
    return f"result-{ctx.payload['subject_id']}"


@job_handler("test_flaky")
def flaky(ctx: JobContext) -> str:
    RUNS[str(ctx.job_id)] += 1
    if ctx.attempt <= FAILURES_WANTED.get(str(ctx.job_id), 0):
        raise JobError("scanner busy")
    return "ok"


@job_handler("test_leaky_failure")
def leaky_failure(ctx: JobContext) -> None:
    RUNS[str(ctx.job_id)] += 1
    raise ValueError("patient Jane Doe has severe rosacea")  # must never be stored


@job_handler("test_permanent")
def permanent(ctx: JobContext) -> None:
    RUNS[str(ctx.job_id)] += 1
    raise PermanentJobError("photo was deleted")


@job_handler("test_blocking")
def blocking(ctx: JobContext) -> str:
    RUNS[str(ctx.job_id)] += 1
    STARTED[ctx.payload["gate"]].set()
    assert RELEASE[ctx.payload["gate"]].wait(WAIT_S)
    return "released"


class ManualClock:
    """A clock that moves only when told; stands in for time in backoff and lease tests."""

    def __init__(self) -> None:
        self.moment = dt.datetime.now(dt.timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.moment

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.moment += dt.timedelta(seconds=seconds)


class OutcomeWaiter:
    """Collects worker outcomes (``job_executed`` signal) and waits for them with a deadline."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.outcomes: list[tuple[uuid.UUID, str]] = []
        job_executed.connect(self._received)

    def _received(self, sender: Any, job_id: uuid.UUID, outcome: Any) -> None:
        with self._condition:
            self.outcomes.append((job_id, outcome.status))
            self._condition.notify_all()

    def wait_for(self, count: int) -> list[tuple[uuid.UUID, str]]:
        with self._condition:
            assert self._condition.wait_for(lambda: len(self.outcomes) >= count, WAIT_S), self.outcomes
            return list(self.outcomes)

    def close(self) -> None:
        job_executed.disconnect(self._received)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app_config(app_config: dict[str, Any], clock: ManualClock) -> dict[str, Any]:
    return {
        **app_config,
        "CLOCK": clock,
        "JOB_RETRY_BASE_S": 10.0,
        "JOB_RETRY_MAX_S": 3600.0,
        "JOB_LEASE_S": 60.0,
        "JOB_POLL_INTERVAL_S": 30.0,
    }


@pytest.fixture
def thread_app(app: Flask) -> Iterator[Flask]:
    """A second app on the same database whose jobs go to a thread worker (started by the test)."""
    application = sibling_app(app)
    yield application
    close_app(application)


@pytest.fixture
def outcomes() -> Iterator[OutcomeWaiter]:
    waiter = OutcomeWaiter()
    yield waiter
    waiter.close()


def add_job(kind: str, payload: dict[str, Any] | None = None, **options: Any) -> uuid.UUID:
    job = enqueue(kind, payload or {"subject_id": uuid.uuid4().hex}, **options)
    job_id = job.id
    db.session.commit()
    return job_id


def load(job_id: uuid.UUID) -> Job:
    """Read the job's current row and end the transaction (SQLite: release the lock for the worker)."""
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job is not None
    db.session.expunge(job)
    db.session.commit()
    return job


def test_rolled_back_enqueue_leaves_no_job(app):
    with app.app_context():
        job = enqueue("test_record", {"subject_id": "s1"})
        job_id = job.id
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Job)) == 0
        assert RUNS[str(job_id)] == 0
        # The next commit must not dispatch the forgotten job either.
        db.session.commit()
        assert RUNS[str(job_id)] == 0


def test_jobs_wait_for_the_outer_commit_across_savepoints(app):
    with app.app_context():
        first = enqueue("test_record", {"subject_id": "sp1"})
        second = enqueue("test_record", {"subject_id": "sp2"})  # its savepoint release is not a commit
        with db.session.begin_nested():
            third = enqueue("test_record", {"subject_id": "sp3"})
        assert RUNS[str(first.id)] == RUNS[str(second.id)] == RUNS[str(third.id)] == 0
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Job)) == 0
        assert RUNS[str(first.id)] == RUNS[str(second.id)] == RUNS[str(third.id)] == 0


def test_savepoint_rollback_keeps_the_outer_transactions_jobs(app):
    with app.app_context():
        kept = enqueue("test_record", {"subject_id": "sp4"})
        savepoint = db.session.begin_nested()
        dropped = enqueue("test_record", {"subject_id": "sp5"})
        savepoint.rollback()
        kept_id, dropped_id = kept.id, dropped.id
        db.session.commit()
        assert RUNS[str(kept_id)] == 1  # still dispatched after the savepoint rollback
        assert RUNS[str(dropped_id)] == 0
        assert db.session.scalar(select(func.count()).select_from(Job)) == 1


def test_inline_backend_runs_after_commit(app):
    with app.app_context():
        job = enqueue("test_record", {"subject_id": "s2"})
        job_id = job.id
        assert RUNS[str(job_id)] == 0  # nothing runs before the commit
        db.session.commit()
        assert RUNS[str(job_id)] == 1
        stored = load(job_id)
        assert stored.status == JobStatus.DONE
        assert stored.result_ref == "result-s2"
        assert stored.attempts == 1 and stored.locked_by is None


def test_dedupe_key_returns_the_existing_job(app):
    with app.app_context():
        first = add_job("test_record", {"subject_id": "s3"}, dedupe_key="photo-1:v1")
        again = enqueue("test_record", {"subject_id": "s3"}, dedupe_key="photo-1:v1")
        assert again.id == first
        other_version = add_job("test_record", {"subject_id": "s3"}, dedupe_key="photo-1:v2")
        assert other_version != first
        assert db.session.scalar(select(func.count()).select_from(Job)) == 2
        assert RUNS[str(first)] == 1


def test_racing_enqueues_with_one_dedupe_key_make_one_job(app, database_backend):
    if database_backend != "postgresql":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): two enqueues cannot race")
    from sqlalchemy import text

    results: dict[str, uuid.UUID] = {}
    first_inserted = threading.Event()

    def second_request() -> None:
        with app.app_context():
            assert first_inserted.wait(WAIT_S)
            # Sees no committed duplicate, inserts, and waits on the first one's uncommitted row.
            results["second"] = enqueue("test_record", {"subject_id": "race"}, dedupe_key="race:v1").id
            db.session.commit()

    with app.app_context():
        results["first"] = enqueue("test_record", {"subject_id": "race"}, dedupe_key="race:v1").id
        second = threading.Thread(target=second_request)
        second.start()
        first_inserted.set()
        with db.engine.connect() as observer:

            def second_waits_on_the_first_row() -> bool:
                blocked = observer.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO jobs%'")).scalar()
                observer.rollback()
                return bool(blocked)

            assert wait_until(second_waits_on_the_first_row, timeout_s=WAIT_S), \
                "the second enqueue never waited on the first one's row"
        db.session.commit()
    second.join(WAIT_S)
    assert results["second"] == results["first"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Job)) == 1


def test_payload_must_be_ids_and_flags(app):
    with app.app_context():
        with pytest.raises(TypeError):
            enqueue("test_record", {"subject": {"name": "Jane"}})
        with pytest.raises(ValueError):
            enqueue("no_such_kind", {"subject_id": "x"})


def test_thread_worker_processes_enqueued_job(thread_app, outcomes):
    start_worker(thread_app)
    with thread_app.app_context():
        job_id = add_job("test_record", {"subject_id": "s4"})
        assert outcomes.wait_for(1) == [(job_id, "done")]
        job = load(job_id)
        assert job.status == JobStatus.DONE and job.finished_at is not None
        assert EFFECTS[str(job_id)] == "s4"


def test_thread_worker_retries_with_backoff_then_succeeds(thread_app, outcomes, clock):
    start_worker(thread_app)
    with thread_app.app_context():
        job = enqueue("test_flaky", {"subject_id": "s5"}, max_attempts=5)
        FAILURES_WANTED[str(job.id)] = 2
        job_id = job.id
        db.session.commit()

        outcomes.wait_for(1)
        first = load(job_id)
        assert (first.status, first.attempts) == (JobStatus.QUEUED, 1)
        assert first.run_after == clock() + dt.timedelta(seconds=10)
        assert first.last_error == "JobError: scanner busy"

        clock.advance(10)
        job_backend(thread_app).dispatch([])  # wake the worker now instead of at its poll interval
        outcomes.wait_for(2)
        second = load(job_id)
        assert (second.status, second.attempts) == (JobStatus.QUEUED, 2)
        assert second.run_after == clock() + dt.timedelta(seconds=20)  # doubled

        clock.advance(20)
        job_backend(thread_app).dispatch([])
        assert outcomes.wait_for(3)[-1] == (job_id, "done")
        done = load(job_id)
        assert (done.status, done.attempts, done.last_error) == (JobStatus.DONE, 3, None)
        assert RUNS[str(job_id)] == 3


def test_not_due_retry_is_not_run_early(app, clock):
    with app.app_context():
        job = enqueue("test_flaky", {"subject_id": "s6"})
        FAILURES_WANTED[str(job.id)] = 1
        job_id = job.id
        db.session.commit()  # inline: attempt 1 fails, retry scheduled in 10 s
        runner = JobRunner(JobSettings.from_config(app.config), make_worker_id("test"), clock=clock)
        clock.advance(9.9)
        assert runner.run_one() is None
        clock.advance(0.1)
        assert runner.run_one().status == "done"
        assert load(job_id).attempts == 2


def test_failed_after_max_attempts_without_leaking_the_message(thread_app, outcomes, clock):
    start_worker(thread_app)
    with thread_app.app_context():
        job_id = add_job("test_leaky_failure", {"subject_id": "s7"}, max_attempts=3)
        for attempt in (1, 2):
            outcomes.wait_for(attempt)
            clock.advance(retry_delay_s(attempt, 10.0, 3600.0))
            job_backend(thread_app).dispatch([])
        assert outcomes.wait_for(3)[-1] == (job_id, "failed")
        job = load(job_id)
        assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
        assert job.last_error == "ValueError"
        assert job.finished_at == clock()
        assert RUNS[str(job_id)] == 3
        assert job_status_dict(job)["last_error"] == "ValueError"


def test_permanent_error_fails_at_once(app):
    with app.app_context():
        job_id = add_job("test_permanent", {"subject_id": "s8"}, max_attempts=5)
        job = load(job_id)
        assert (job.status, job.attempts, job.last_error) == (
            JobStatus.FAILED, 1, "PermanentJobError: photo was deleted")
        assert RUNS[str(job_id)] == 1


def test_expired_lease_of_crashed_worker_is_reclaimed(app, clock):
    settings = JobSettings.from_config(app.config)
    with app.app_context():
        job = enqueue("test_record", {"subject_id": "s9"})
        job_id = job.id
        db.session.info.pop("skintrack.pending_jobs")  # keep it queued: nobody is dispatched
        db.session.commit()

        crashed = JobRunner(settings, make_worker_id("crashed"), clock=clock)
        claimed = crashed.claim()
        assert claimed is not None and claimed.id == job_id  # ...and then the process dies

        survivor = JobRunner(settings, make_worker_id("survivor"), clock=clock)
        assert survivor.run_one() is None  # lease still valid
        clock.advance(settings.lease_s + 1)
        assert survivor.run_one().status == "done"
        job = load(job_id)
        assert (job.status, job.attempts) == (JobStatus.DONE, 2)

        # The crashed worker coming back late cannot overwrite the outcome.
        assert crashed.execute(claimed).status == "lost"
        assert load(job_id).status == JobStatus.DONE


def test_restart_resumes_queued_and_abandoned_jobs(app, clock, outcomes):
    # The first process dies: one job queued but never dispatched, one claimed mid-run.
    first_process = sibling_app(app)
    with first_process.app_context():
        queued = enqueue("test_record", {"subject_id": "s11"})
        abandoned = enqueue("test_record", {"subject_id": "s12"})
        queued_id, abandoned_id = queued.id, abandoned.id
        db.session.commit()  # the worker thread was never started
        JobRunner(JobSettings.from_config(app.config), make_worker_id("old"), clock=clock).claim(abandoned_id)
    close_app(first_process)

    clock.advance(61)  # the dead process's lease runs out
    second_process = sibling_app(app)
    try:
        start_worker(second_process)
        finished = dict(outcomes.wait_for(2))
        assert finished == {queued_id: "done", abandoned_id: "done"}
        with second_process.app_context():
            assert load(queued_id).attempts == 1
            assert load(abandoned_id).attempts == 2
    finally:
        close_app(second_process)


def test_unknown_kind_in_table_fails_permanently(app, clock):
    with app.app_context():
        job = Job(kind="retired_kind", payload={}, run_after=clock(), max_attempts=3)
        db.session.add(job)
        db.session.commit()
        runner = JobRunner(JobSettings.from_config(app.config), make_worker_id("test"), clock=clock)
        assert runner.run_one().status == "failed"
        assert load(job.id).last_error == "no handler registered for job kind 'retired_kind'"


def test_concurrent_workers_claim_each_job_once(thread_app, clock):
    with thread_app.app_context():
        job_ids = set()
        for index in range(12):
            job = enqueue("test_blocking" if index == 0 else "test_record", {"subject_id": f"c{index}", "gate": "g"})
            job_ids.add(job.id)
        db.session.info.pop("skintrack.pending_jobs")
        db.session.commit()
    STARTED["g"], RELEASE["g"] = threading.Event(), threading.Event()
    RELEASE["g"].set()
    claims: list[uuid.UUID] = []
    claims_lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        runner = JobRunner(JobSettings.from_config(thread_app.config), make_worker_id("race"), clock=clock)
        try:
            with thread_app.app_context():
                while (job := runner.claim()) is not None:
                    with claims_lock:
                        claims.append(job.id)
                    runner.execute(job)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert not errors
    assert sorted(claims) == sorted(job_ids)  # every job claimed, none twice
    with thread_app.app_context():
        assert db.session.scalar(select(func.count()).where(Job.status == JobStatus.DONE)) == 12


def test_lease_is_renewed_while_the_handler_runs(app, outcomes):
    # Real clock and a short lease: the renewer must keep the lease alive for longer than one lease.
    application = sibling_app(app, CLOCK=None, JOB_LEASE_S=0.3)
    STARTED["lease"], RELEASE["lease"] = threading.Event(), threading.Event()
    start_worker(application)
    try:
        with application.app_context():
            job_id = add_job("test_blocking", {"gate": "lease"})
            assert STARTED["lease"].wait(WAIT_S)
            first_lease = load(job_id).locked_until
            # Another worker polling the table must never find the job claimable while it runs.
            rival = JobRunner(JobSettings.from_config(application.config), make_worker_id("rival"))

            def lease_renewed_while_held() -> bool:
                assert rival.claim(job_id) is None
                return load(job_id).locked_until > first_lease

            def past_the_first_lease_while_held() -> bool:
                assert rival.claim(job_id) is None
                return dt.datetime.now(dt.timezone.utc) >= first_lease + dt.timedelta(seconds=0.3)

            assert wait_until(lease_renewed_while_held, timeout_s=WAIT_S)
            # Well past the first lease's end, the job is still held by the first worker.
            assert wait_until(past_the_first_lease_while_held, timeout_s=WAIT_S)
            RELEASE["lease"].set()
            assert outcomes.wait_for(1) == [(job_id, "done")]
            assert load(job_id).attempts == 1
    finally:
        RELEASE["lease"].set()
        close_app(application)


def test_job_status_dict(app):
    with app.app_context():
        job_id = add_job("test_record", {"subject_id": "s13"})
        status = job_status_dict(load(job_id))
        assert status["id"] == str(job_id)
        assert status["status"] == "done" and status["next_attempt_at"] is None
        assert status["result_ref"] == "result-s13"
        assert "payload" not in status
        dt.datetime.fromisoformat(status["finished_at"])


def test_retry_delay_is_exponential_and_capped():
    assert [retry_delay_s(n, 10, 100) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]
    assert retry_delay_s(10_000, 10, 100) == 100
    assert retry_delay_s(3, 0, 100) == 0


def test_thread_worker_starts_with_the_first_request(app):
    application = sibling_app(app, JOB_WORKER_AUTOSTART=True)
    try:
        assert not job_backend(application).running  # not at create_app: CLI commands must not start it
        application.test_client().get("/api/v1/openapi.json")
        assert job_backend(application).running
    finally:
        close_app(application)
    assert not job_backend(application).running


NICENESS: dict[str, int] = {}


@job_handler("test_niceness")
def record_niceness(ctx: JobContext) -> str:
    NICENESS[str(ctx.job_id)] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    return "recorded"


def test_thread_worker_runs_jobs_nicer_than_requests(app, outcomes):
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if base + 5 > 19:
        pytest.skip("this process already runs at the lowest priority")
    application = sibling_app(app, JOB_WORKER_NICE=5)
    try:
        start_worker(application)
        with application.app_context():
            job_id = add_job("test_niceness")
            assert outcomes.wait_for(1) == [(job_id, "done")]
        assert NICENESS[str(job_id)] == base + 5
        # Only the worker thread was lowered: this (request-serving) thread keeps its priority.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
    finally:
        close_app(application)


def test_lower_worker_priority_is_per_thread_and_capped():
    seen = {}

    def worker() -> None:
        seen["after"] = lower_worker_priority(25)
        seen["now"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["after"] == seen["now"] == 19
    assert lower_worker_priority(0) is None
