"""Upload-to-measurements latency and photos analysed per minute, for 12 MP phone JPEGs.

Usage::

    .venv/bin/python bench/upload.py [--photos 6] [--mode embedded|celery|both]

``embedded``: the default deployment - SQLite, local disk, the ``thread`` job backend (one
in-process worker), uploads through the real app in-process. ``celery``: the same app with
``JOB_BACKEND=celery``, PostgreSQL (a private schema of ``TEST_DATABASE_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), Redis (``TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) and one Celery worker process (``-c 2``) started with the
documented command. Everything stays on loopback.

Each run uploads a baseline photo and waits for its analysis (so follow-ups register to a
stored baseline reference), then uploads ``--photos`` follow-ups back to back (direct
upload: sanitise + quality gate in the request) and waits for all analyses. Latency is from
the start of a follow-up's upload request to its job's ``finished_at``; throughput is
follow-ups divided by the time from the first upload to the last finished job. Bounded:
each run gives up after ``--deadline`` seconds. The machine's other load is not controlled.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BASELINE_AT = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
FOLLOW_UP_AT = dt.datetime(2026, 3, 15, 9, 0, tzinfo=dt.timezone.utc)
POLL_S = 0.2


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile of ``values`` (fraction in 0..1)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def phone_jpegs(count: int) -> list[bytes]:
    """``count`` distinct 12 MP (3024x4032) phone JPEGs (EXIF orientation, GPS) of one face."""
    from imaging.testing import synthetic

    base = synthetic.phone_photo()
    return [synthetic.to_jpeg(synthetic.exposure(base, 1.0 + 0.01 * i).rgb, captured_at=None) for i in range(count)]


def setup_world(app) -> tuple[dict[str, str], str, str]:
    """A clinic, clinician, consenting patient and course; returns (headers, patient id, course id)."""
    from tests import factories
    from tests.backend.photo_helpers import grant_photo_consent

    clinic = factories.make_clinic(app, "Bench clinic")
    clinician = factories.make_user(app, "clinician", clinic)
    patient = factories.make_patient(app, clinic)
    course = factories.make_course(app, patient)
    grant_photo_consent(app, patient, clinician)
    return factories.auth_headers(app, clinician), str(patient.id), str(course.id)


def upload(client, headers, patient_id: str, course_id: str, data: bytes, captured_at: dt.datetime) -> str:
    response = client.post(f"/api/v1/patients/{patient_id}/photos", data=data,
                           query_string={"course_id": course_id, "captured_at": captured_at.isoformat()},
                           headers={**headers, "Content-Type": "image/jpeg"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def analysis_jobs(app, photo_ids: list[str]) -> list:
    """Rows (id, status, finished_at, last_error) of the photos' analysis jobs, from the jobs table."""
    from backend.extensions import db
    from backend.models.jobs import Job
    from backend.models.photos import Photo

    with app.app_context():
        rows = db.session.execute(
            db.select(Photo.id, Job.status, Job.finished_at, Job.last_error)
            .join(Job, Photo.analysis_job_id == Job.id)
            .where(Photo.id.in_([uuid.UUID(p) for p in photo_ids]))
        ).all()
        db.session.remove()
    return rows


def wait_done(app, photo_ids: list[str], deadline: float) -> dict[str, dt.datetime]:
    """Poll the jobs table until every photo's analysis job is done; return finish times."""
    while True:
        rows = analysis_jobs(app, photo_ids)
        failed = [r for r in rows if r.status == "failed"]
        if failed:
            raise RuntimeError(f"analysis failed: {failed[0].last_error}")
        if len(rows) == len(photo_ids) and all(r.status == "done" for r in rows):
            return {str(r.id): r.finished_at for r in rows}
        if time.monotonic() > deadline:
            raise TimeoutError("analyses did not finish before the deadline")
        time.sleep(POLL_S)


def run(app, label: str, photos: list[bytes], deadline_s: float) -> None:
    """Upload a baseline, then the follow-ups, and print latency and throughput."""
    client = app.test_client()
    headers, patient_id, course_id = setup_world(app)
    deadline = time.monotonic() + deadline_s
    baseline_id = upload(client, headers, patient_id, course_id, photos[0], BASELINE_AT)
    wait_done(app, [baseline_id], deadline)

    started: dict[str, dt.datetime] = {}
    request_s: list[float] = []
    for data in photos[1:]:
        begin_wall, begin = dt.datetime.now(dt.timezone.utc), time.perf_counter()
        photo_id = upload(client, headers, patient_id, course_id, data, FOLLOW_UP_AT)
        request_s.append(time.perf_counter() - begin)
        started[photo_id] = begin_wall
    finished = wait_done(app, list(started), deadline)
    latencies = [(finished[p] - started[p]).total_seconds() for p in started]
    span_s = (max(finished.values()) - min(started.values())).total_seconds()
    print(f"{label}: {len(started)} follow-up 12 MP JPEGs")
    print(f"  upload request (sanitise + gate): median {statistics.median(request_s):.2f} s")
    print(f"  upload-to-measurements latency: median {statistics.median(latencies):.1f} s, "
          f"p90 {percentile(latencies, 0.9):.1f} s")
    print(f"  throughput: {60.0 * len(started) / span_s:.1f} photos analysed per minute")


def embedded(root: Path, photos: list[bytes], deadline_s: float) -> None:
    from backend import create_app
    from backend.jobs import start_worker, stop_worker
    from backend.migrations import upgrade

    root.mkdir(parents=True)
    url = f"sqlite:///{root / 'bench.sqlite3'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "thread",
                      "JOB_WORKER_AUTOSTART": False, "JOB_POLL_INTERVAL_S": 0.5, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "bench-only-secret-key-0123456789abcdef"})
    start_worker(app)
    try:
        run(app, "embedded (thread worker, SQLite, local disk)", photos, deadline_s)
    finally:
        stop_worker(app, timeout_s=120)


@contextlib.contextmanager
def private_schema(database_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    schema = f"skintrack_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def with_celery(root: Path, photos: list[bytes], deadline_s: float) -> None:
    from backend import create_app, engine_options
    from backend.jobs import job_backend
    from backend.migrations import upgrade

    root.mkdir(parents=True)
    database_url = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"skintrack-bench-{uuid.uuid4().hex[:8]}"
    secret = "bench-only-secret-key-0123456789abcdef"
    storage = f"file://{root / 'storage'}"
    with private_schema(database_url) as schema:
        options = {**engine_options(database_url), "connect_args": {"options": f"-csearch_path={schema}"}}
        upgrade(database_url, options)
        separator = "&" if "?" in database_url else "?"
        env = {**os.environ, "PYTHONPATH": str(REPO), "SECRET_KEY": secret, "STORAGE_URL": storage,
               "DATABASE_URL": f"{database_url}{separator}options={quote(f'-csearch_path={schema}')}",
               "JOB_BACKEND": "celery", "REDIS_URL": redis_url, "JOB_CELERY_QUEUE": queue, "LOG_LEVEL": "WARNING"}
        log = (root / "celery.log").open("wb")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "backend.jobs.celery_app", "worker", "-l", "warning",
             "-c", "2", "-n", f"{queue}@%h", "--without-gossip", "--without-mingle"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        app = create_app({"DATABASE_URL": database_url, "SQLALCHEMY_ENGINE_OPTIONS": options, "STORAGE_URL": storage,
                          "JOB_BACKEND": "celery", "REDIS_URL": redis_url, "JOB_CELERY_QUEUE": queue,
                          "SECRET_KEY": secret, "LOG_LEVEL": "WARNING"})
        try:
            run(app, "celery (1 worker -c 2, PostgreSQL, Redis, local disk)", photos, deadline_s)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            log.close()
            job_backend(app).celery.close()
            with app.app_context():
                from backend.extensions import db
                db.engine.dispose()
            from tests.e2e.test_production_stack import delete_redis_keys

            delete_redis_keys(redis_url, queue)  # this run's queue and bindings only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=6, help="follow-up photos per run (1..50)")
    parser.add_argument("--mode", choices=("embedded", "celery", "both"), default="both")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds per run before giving up")
    args = parser.parse_args()
    if not 1 <= args.photos <= 50:
        parser.error("--photos must be 1..50")
    photos = phone_jpegs(args.photos + 1)
    print(f"{len(photos)} photos of {len(photos[0]) / 1e6:.1f} MB (3024x4032) on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="skintrack-bench-") as tmp:
        if args.mode in ("embedded", "both"):
            embedded(Path(tmp) / "embedded", photos, args.deadline)
        if args.mode in ("celery", "both"):
            with_celery(Path(tmp) / "celery", photos, args.deadline)


if __name__ == "__main__":
    main()
