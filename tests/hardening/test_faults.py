"""Faults: the database restarting mid-upload, storage failing mid-write (also until an analysis
fails for good), a worker dying mid-analysis, a restart with jobs queued, two retries of one
upload racing. Afterwards every accepted photo is stored once, analysed once at the current
algorithm version, and ``check-integrity`` finds nothing orphaned."""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from backend.extensions import db
from backend.jobs.runner import JobRunner, JobSettings, make_worker_id, runner_for_app
from backend.models.jobs import Job, JobStatus
from backend.models.photos import Photo, PhotoAnalysis
from backend.storage import StorageError, StoredObject, current_storage
from imaging.version import ALGORITHM_VERSION
from tests.backend.app_helpers import close_app, sibling_app
from tests.backend.photo_helpers import TWO_WEEKS_CAPTURE, grant_photo_consent, phone_jpeg, phone_png, upload
from tests.hardening.helpers import holdings, integrity

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

_STORAGE_EXTENSION = "skintrack.storage"


class FailingStorage:
    """Delegates to a real storage but raises on ``put`` of keys matching ``fails``.

    With ``after_bytes`` the real backend starts writing and the data stream breaks after that
    many bytes (a disk or network failing mid-write); otherwise the put fails before writing.
    """

    def __init__(self, inner: Any, fails: Callable[[str], bool], after_bytes: int | None = None) -> None:
        self.inner, self.fails, self.after_bytes = inner, fails, after_bytes
        self.failed: list[str] = []

    def put(self, key: str, data: bytes | IO[bytes], content_type: str, **options: Any) -> StoredObject:
        if not self.fails(key):
            return self.inner.put(key, data, content_type, **options)
        self.failed.append(key)
        if self.after_bytes is None:
            raise StorageError("storage unavailable")
        return self.inner.put(key, _BreakingStream(data, self.after_bytes), content_type, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _BreakingStream(io.RawIOBase):
    def __init__(self, data: bytes | IO[bytes], after_bytes: int) -> None:
        self.data = data if isinstance(data, (bytes, bytearray)) else data.read()
        self.after_bytes, self.position = after_bytes, 0

    def read(self, n: int = -1) -> bytes:
        if self.position >= self.after_bytes:
            raise OSError("connection reset while writing")
        end = min(self.after_bytes, len(self.data) if n < 0 else self.position + n)
        chunk = self.data[self.position:end]
        self.position = end
        return chunk


@pytest.fixture
def consented(app, world) -> Any:
    grant_photo_consent(app, world.patient, world.clinician_a)
    return world


@pytest.fixture
def swap_storage(app) -> Iterator[Callable[[Any], None]]:
    """``swap_storage(wrapper_factory)``: replace the app's storage for the test; restored after."""
    real = app.extensions[_STORAGE_EXTENSION]

    def swap(factory: Callable[[Any], Any]) -> Any:
        app.extensions[_STORAGE_EXTENSION] = factory(real)
        return app.extensions[_STORAGE_EXTENSION]

    yield swap
    app.extensions[_STORAGE_EXTENSION] = real


def hidden_files(app) -> list[str]:
    """Temporary files a broken write left in the local store (never listed as keys)."""
    with app.app_context():
        root = current_storage().root
    return [name for _, _, names in os.walk(root) for name in names if name.startswith(".")]


def photo_counts(app) -> tuple[int, int]:
    with app.app_context():
        photos = db.session.scalar(select(func.count()).select_from(Photo))
        analyses = db.session.scalar(select(func.count()).select_from(PhotoAnalysis).where(
            PhotoAnalysis.algorithm_version == ALGORITHM_VERSION))
        db.session.rollback()
        return photos, analyses


@pytest.mark.parametrize("after_bytes", [None, 4096], ids=["fails before writing", "breaks mid-write"])
def test_storage_failing_on_upload_loses_nothing_and_retry_succeeds(app, client, consented, headers_of,
                                                                    swap_storage, after_bytes):
    headers = {**headers_of("patient_user"), "Idempotency-Key": "phone-retry-1"}
    before = holdings(app)
    failing = swap_storage(lambda real: FailingStorage(real, lambda key: key.startswith("photos/"), after_bytes))
    response = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id)
    assert response.status_code >= 500 and response.mimetype == "application/problem+json"
    assert "Traceback" not in response.get_json()["detail"]
    assert failing.failed, "the fault was not exercised"
    assert holdings(app) == before and hidden_files(app) == []
    assert integrity(app).ok

    swap_storage(lambda real: real)  # storage is back; the phone retries with the same key
    retried = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id)
    assert retried.status_code == 201, retried.get_json()
    assert photo_counts(app) == (1, 1)
    assert integrity(app).ok


def test_storage_failing_during_analysis_is_retried_to_one_analysis(app, client, consented, headers_of,
                                                                    swap_storage, clock):
    writes = {"count": 0}

    def second_overlay(key: str) -> bool:  # the first overlay lands, the second fails
        if "/analysis/" not in key:
            return False
        writes["count"] += 1
        return writes["count"] == 2

    swap_storage(lambda real: FailingStorage(real, second_overlay))
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_jpeg(),
                      course_id=consented.course.id)
    assert response.status_code == 201, response.get_json()
    photo_id = uuid.UUID(response.get_json()["id"])
    with app.app_context():
        job = db.session.get(Job, db.session.get(Photo, photo_id).analysis_job_id)
        assert (job.status, job.attempts) == (JobStatus.QUEUED.value, 1)
        job_id, retry_at = job.id, job.run_after
    assert integrity(app).ok  # the half-written overlays belong to a job that will redo them

    swap_storage(lambda real: real)
    clock.current = retry_at
    with app.app_context():
        assert runner_for_app(app, make_worker_id("retry")).run_one(job_id).status == "done"
    assert photo_counts(app) == (1, 1)
    assert integrity(app).ok


@pytest.fixture
def queued_app(app) -> Iterator[Flask]:
    """The same service with a thread job backend whose worker is never started: jobs stay queued."""
    application = same_service(app)
    yield application
    close_app(application)


def same_service(app: Flask) -> Flask:
    """Another process of the service: same database, same photo store, thread job backend (not started)."""
    application = sibling_app(app)
    application.extensions[_STORAGE_EXTENSION] = app.extensions[_STORAGE_EXTENSION]
    return application


def _upload_queued(queued_app: Flask, world, headers: dict[str, str], data: bytes, **query: Any) -> uuid.UUID:
    response = upload(queued_app.test_client(), headers, world.patient.id, data, course_id=world.course.id, **query)
    assert response.status_code == 201, response.get_json()
    return uuid.UUID(response.get_json()["id"])


def test_worker_killed_mid_analysis_is_redone_once(app, queued_app, consented, headers_of, clock):
    photo_id = _upload_queued(queued_app, consented, headers_of("patient_user"), phone_jpeg())
    settings = JobSettings.from_config(app.config)
    with app.app_context():
        job_id = db.session.get(Photo, photo_id).analysis_job_id
        killed = JobRunner(settings, make_worker_id("killed"), clock=clock).claim(job_id)
        assert killed is not None  # ...and the worker process is killed here
    assert integrity(app).ok  # within its lease: still legitimately running
    clock.advance(seconds=settings.lease_s + 1)
    assert [f.kind for f in integrity(app).findings] == ["stuck_job"]

    with app.app_context():
        survivor = JobRunner(settings, make_worker_id("survivor"), clock=clock)
        assert survivor.run_one(job_id).status == "done"
        assert db.session.get(Job, job_id).attempts == 2
        assert survivor.execute(killed).status == "lost"  # the dead worker cannot write a second result
    assert photo_counts(app) == (1, 1)
    assert integrity(app).ok


def test_restart_with_jobs_queued_analyses_each_photo_once(app, queued_app, consented, headers_of, clock):
    headers = headers_of("patient_user")
    ids = [_upload_queued(queued_app, consented, headers, phone_jpeg()),
           _upload_queued(queued_app, consented, headers, phone_png(), content_type="image/png",
                          captured_at=TWO_WEEKS_CAPTURE)]
    close_app(queued_app)  # the service stops with both analyses queued
    assert [f.kind for f in integrity(app).findings] == []  # queued work is pending, not lost

    restarted = same_service(app)
    try:
        with restarted.app_context():
            runner = runner_for_app(restarted, make_worker_id("restarted"))
            assert set(runner.overdue_job_ids()) <= {
                db.session.get(Photo, photo_id).analysis_job_id for photo_id in ids}
            outcomes = []
            while (outcome := runner.run_one()) is not None:
                outcomes.append(outcome.status)
            assert outcomes == ["done", "done"]
    finally:
        close_app(restarted)
    assert photo_counts(app) == (2, 2)
    assert integrity(app).ok


def test_racing_retries_of_one_upload_store_one_photo(app, consented, headers_of):
    headers = {**headers_of("patient_user"), "Idempotency-Key": "race-" + uuid.uuid4().hex}
    start = threading.Barrier(2)
    statuses: list[int] = []

    def retry() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(upload(client, headers, consented.patient.id, phone_jpeg(),
                               course_id=consented.course.id).status_code)

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 201 in statuses and set(statuses) <= {201, 409}, statuses
    assert photo_counts(app) == (1, 1)
    originals = [key for key in holdings(app).keys if "/original." in key]
    assert len(originals) == 1
    assert integrity(app).ok


class DatabaseOutage:
    """A PostgreSQL restart as the service sees it: every connection of the app's engine is
    terminated by the server (``pg_terminate_backend``, what a restart does to them), and,
    while ``refusing``, new connections are refused as by a server still starting up.

    Only the connections this engine checked out since the outage object was made are
    terminated, so other users of the test database are left alone.
    """

    def __init__(self, app: Flask) -> None:
        from sqlalchemy import event

        with app.app_context():
            self.engine = db.engine
        self.admin_url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.backend_pids: set[int] = set()
        self.refusing = False
        self.terminated = 0
        event.listen(self.engine, "checkout", self._record_pid)
        event.listen(self.engine, "do_connect", self._maybe_refuse)

    def _record_pid(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        self.backend_pids.add(dbapi_connection.info.backend_pid)

    def _maybe_refuse(self, dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        if self.refusing:
            import psycopg

            raise psycopg.OperationalError("connection refused: the database system is starting up")

    def restart(self, *, stay_down: bool) -> None:
        import psycopg

        self.refusing = stay_down
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            for pid in self.backend_pids:
                self.terminated += bool(admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0])
        self.backend_pids.clear()

    def back_up(self) -> None:
        self.refusing = False

    def close(self) -> None:
        from sqlalchemy import event

        self.back_up()
        event.remove(self.engine, "checkout", self._record_pid)
        event.remove(self.engine, "do_connect", self._maybe_refuse)


class OutageAfterPut:
    """Storage that restarts the database right after a photo original is written: the
    request then finds its connection gone before its row is flushed or committed."""

    def __init__(self, inner: Any, outage: DatabaseOutage, stay_down: bool) -> None:
        self.inner, self.outage, self.stay_down = inner, outage, stay_down
        self.written: list[str] = []

    def put(self, key: str, data: bytes | IO[bytes], content_type: str, **options: Any) -> StoredObject:
        stored = self.inner.put(key, data, content_type, **options)
        if "/original." in key and not self.written:
            self.written.append(key)
            self.outage.restart(stay_down=self.stay_down)
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def database_outage(app, database_backend) -> Iterator[DatabaseOutage]:
    if database_backend != "postgresql":
        pytest.skip("the embedded SQLite database is a file in the service's own process: no server restarts")
    outage = DatabaseOutage(app)
    yield outage
    outage.close()


@pytest.mark.parametrize("stay_down", [False, True], ids=["back before the reply", "down until after the reply"])
def test_database_restart_during_upload_loses_nothing(app, client, consented, headers_of, swap_storage,
                                                      database_outage, stay_down):
    headers = {**headers_of("patient_user"), "Idempotency-Key": "phone-db-restart-1"}
    before = holdings(app)
    storage = swap_storage(lambda real: OutageAfterPut(real, database_outage, stay_down))

    response = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id)
    database_outage.back_up()
    assert database_outage.terminated >= 1, "the restart did not hit the request's connection"
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("database-unavailable") and response.headers["Retry-After"].isdigit()
    now = holdings(app)
    assert (now.photos, now.uploads, now.analyses, now.jobs) == (before.photos, before.uploads,
                                                                 before.analyses, before.jobs)
    if stay_down:
        # Whether the commit happened could not be known, so the bytes were kept: an orphan
        # the integrity check reports, never a lost photo.
        assert [(f.kind, f.subject) for f in integrity(app).findings] == [("orphan_file", storage.written[0])]
    else:
        # The database was back when the request settled: it saw no row and removed the file.
        assert now.keys == before.keys
        assert integrity(app).ok

    swap_storage(lambda real: real)  # the phone retries with the same key
    retried = upload(client, headers, consented.patient.id, phone_jpeg(), course_id=consented.course.id)
    assert retried.status_code == 201, retried.get_json()
    assert photo_counts(app) == (1, 1)
    cleanup = app.test_cli_runner().invoke(args=["check-integrity", "--grace", "0", "--remove-orphans"])
    assert cleanup.exit_code == 0, cleanup.output
    assert ("removed orphan\t" + storage.written[0] in cleanup.output) is stay_down
    assert integrity(app).ok
    originals = [key for key in holdings(app).keys if "/original." in key]
    assert len(originals) == 1 and originals[0] != storage.written[0]


def test_analysis_failed_for_good_is_redone_once_by_reanalyse(app, client, consented, headers_of, swap_storage):
    app.config["JOB_MAX_ATTEMPTS"] = 1  # the analysis gets one attempt, and storage fails it
    failing = swap_storage(lambda real: FailingStorage(real, lambda key: "/analysis/" in key))
    response = upload(client, headers_of("patient_user"), consented.patient.id, phone_jpeg(),
                      course_id=consented.course.id)
    assert response.status_code == 201, response.get_json()
    photo_id = uuid.UUID(response.get_json()["id"])
    assert failing.failed, "the fault was not exercised"
    with app.app_context():
        job = db.session.get(Job, db.session.get(Photo, photo_id).analysis_job_id)
        assert job.status == JobStatus.FAILED.value
        db.session.rollback()
    assert [(f.kind, f.subject) for f in integrity(app).findings] == [("unanalysed_photo", f"photo:{photo_id}")]

    swap_storage(lambda real: real)  # storage repaired; the operator runs reanalyse
    result = app.test_cli_runner().invoke(args=["reanalyse", "--run-here"])
    assert result.exit_code == 0, result.output
    assert "1 failed analysis job(s) given fresh attempts" in result.output and "1 done" in result.output
    assert photo_counts(app) == (1, 1)
    assert integrity(app).ok
    again = app.test_cli_runner().invoke(args=["reanalyse", "--run-here"])
    assert "0 photo(s) queued" in again.output and "fresh attempts" not in again.output
