"""The phone's path through the production stack, started as real processes on loopback.

gunicorn (``-w 2 -k gthread --threads 4``) serving ``wsgi:app``, a Celery worker
(``celery -A backend.jobs.celery_app worker``), PostgreSQL (a private schema of
TEST_DATABASE_URL, migrated with ``flask --app backend db-upgrade``), Redis (TEST_REDIS_URL)
and an S3-compatible server (localbucket). Skipped when TEST_DATABASE_URL or TEST_REDIS_URL
is unset.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image, ImageOps

from tests.backend.photo_helpers import exif_has_gps, phone_jpeg, phone_png
from tests.e2e.phone_path import (
    COURSE,
    PATIENT,
    expect,
    http_transport,
    login,
    upload_direct,
    wait_for_jobs,
    walk_phone_path,
)
from tests.environment import create_private_postgresql_schema, drop_postgresql_schema
from tests.s3server import free_port, running_s3_server, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
ADMIN = ("admin@stack.example.org", "stack-admin-password-1")
CLINICIAN = ("clinician@stack.example.org", "stack-clinician-password-1")
BUCKET = "skintrack-e2e"

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL),
    reason="needs TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL (Redis), "
           "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379/0",
)


class Process:
    """A service process with its output in a log file (shown when the test fails)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool children), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run ``flask --app backend <args>`` as the operator would; return its output."""
    completed = subprocess.run([str(BIN / "flask"), "--app", "backend", *args], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def gunicorn_command(port: int, workers: int = 2, threads: int = 4) -> list[str]:
    """The documented gunicorn command (gthread workers) on 127.0.0.1:``port``."""
    return [str(BIN / "gunicorn"), "-w", str(workers), "-k", "gthread", "--threads", str(threads),
            "-b", f"127.0.0.1:{port}", "--timeout", "120", "wsgi:app"]


def celery_worker_command(node: str, concurrency: int = 2, level: str = "info") -> list[str]:
    """The documented Celery worker command, named ``node@host``."""
    return [str(BIN / "celery"), "-A", "backend.jobs.celery_app", "worker", "-l", level, "-c", str(concurrency),
            "-n", f"{node}@%h", "--without-gossip", "--without-mingle"]


def production_env(database_url: str, schema: str, redis_url: str, s3_endpoint_url: str, queue: str) -> dict[str, str]:
    """Environment of the documented production processes (README "Production run") on loopback.

    PostgreSQL in ``schema`` of ``database_url``, Celery jobs and rate-limit counters on
    ``redis_url`` (jobs on ``queue``, counters under the prefix ``queue``: other runs sharing the
    Redis never exhaust this one's limits), photos in the S3-compatible server at ``s3_endpoint_url``.
    """
    separator = "&" if "?" in database_url else "?"
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": f"{database_url}{separator}options={quote(f'-csearch_path={schema}')}",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "STORAGE_URL": f"s3://{BUCKET}/photos",
        "S3_ENDPOINT_URL": s3_endpoint_url,
        "S3_REGION": "us-east-1",
        "S3_CREATE_BUCKET": "true",
        "AWS_ACCESS_KEY_ID": "skintrack-e2e",
        "AWS_SECRET_ACCESS_KEY": "skintrack-e2e-secret",
        "JOB_BACKEND": "celery",
        "REDIS_URL": redis_url,
        "JOB_CELERY_QUEUE": queue,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": queue,
    }


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, object]]:
    """The running stack: ``base_url``, ``env``, ``s3_root``, ``processes``."""
    schema = create_private_postgresql_schema()
    run = uuid.uuid4().hex[:10]
    processes: list[Process] = []
    try:
        with running_s3_server(tmp_path / "s3") as s3:
            env = {
                **production_env(TEST_DATABASE_URL, schema, TEST_REDIS_URL, s3.endpoint_url, f"skintrack-e2e-{run}"),
                # A killed worker's job is claimable again after its lease; the sweeper re-sends it.
                "JOB_LEASE_S": "5",
                "JOB_SWEEP_INTERVAL_S": "1",
                "JOB_SWEEP_GRACE_S": "5",
            }
            run_cli(env, "db-upgrade")
            run_cli(env, "create-admin", "--email", ADMIN[0], "--clinic-name", "Stack Clinic",
                    "--password", ADMIN[1])
            port = free_port()
            gunicorn = Process("gunicorn", gunicorn_command(port), env, tmp_path)
            processes.append(gunicorn)
            def start_worker(name: str) -> Process:
                worker = Process(name, celery_worker_command(f"{name}-{run}"), env, tmp_path)
                processes.append(worker)
                return worker

            first_worker = start_worker("celery")
            wait_for_port(port, gunicorn.process, timeout_s=60)
            yield {"base_url": f"http://127.0.0.1:{port}", "env": env, "s3_root": s3.data_root,
                   "processes": processes, "worker": first_worker, "start_worker": start_worker}
    finally:
        for process in processes:
            process.stop()
        drop_postgresql_schema(schema)
        delete_redis_keys(TEST_REDIS_URL, f"skintrack-e2e-{run}")


def delete_redis_keys(redis_url: str, run_name: str) -> None:
    """Delete this run's keys (its Celery queue and bindings, its rate-limit counters) only."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"*{run_name}*"):
            client.delete(key)
    finally:
        client.close()


def test_phone_path_through_production_stack(stack):
    send = http_transport(str(stack["base_url"]))
    admin = login(send, *ADMIN)
    expect(send("POST", "/api/v1/admin/users", headers=admin,
                json_body={"email": CLINICIAN[0], "role": "clinician", "password": CLINICIAN[1]}), 201)
    try:
        result = walk_phone_path(send, CLINICIAN, analysis_deadline_s=300)
        check_bytes_at_rest(Path(stack["s3_root"]))
    except AssertionError:
        # The worker's log says which job ran, was retried or replaced an analysis.
        for process in stack["processes"]:
            print(f"--- {process.name} log tail ---\n{process.tail(80)}")
        raise
    assert set(result.photos) == {"baseline", "2_weeks", "1_month"}


def check_bytes_at_rest(s3_root: Path) -> None:
    """The bytes in the S3 server: sanitised copies and the overlays, all without GPS."""
    originals = sorted(s3_root.rglob("original.*"))
    assert len(originals) == 3, originals
    for path in originals:
        data = path.read_bytes()
        assert not exif_has_gps(data)
        with Image.open(io.BytesIO(data)) as image:
            assert ImageOps.exif_transpose(image).size == (600, 800)
    overlays = sorted(s3_root.rglob("before_after.png"))
    assert len(overlays) == 2, overlays  # one per follow-up


def test_worker_killed_mid_analysis_leaves_the_job_to_be_redone(stack):
    send = http_transport(str(stack["base_url"]))
    admin = login(send, *ADMIN)
    expect(send("POST", "/api/v1/admin/users", headers=admin,
                json_body={"email": CLINICIAN[0], "role": "clinician", "password": CLINICIAN[1]}), 201)
    staff = login(send, *CLINICIAN)
    patient = expect(send("POST", "/api/v1/patients", headers=staff, json_body=PATIENT), 201)
    course = expect(send("POST", f"/api/v1/patients/{patient['id']}/courses", headers=staff, json_body=COURSE), 201)
    expect(send("POST", f"/api/v1/patients/{patient['id']}/consents", headers=staff,
                json_body={"scope": "clinical_photo", "action": "grant", "version": "v1"}), 201)
    photo_ids = [upload_direct(send, staff, patient["id"], data, "image/jpeg", course_id=course["id"], view=view)["id"]
                 for view, data in (("front", phone_jpeg()), ("left", phone_png()))]

    # Kill the worker (all its processes, no warm shutdown) while an analysis is running.
    deadline = time.monotonic() + 120
    while not any(job_status(send, staff, pid)["status"] == "running" for pid in photo_ids):
        assert time.monotonic() < deadline, "no analysis started"
        time.sleep(0.1)
    stack["worker"].kill()
    statuses = [job_status(send, staff, pid) for pid in photo_ids]
    assert any(job["status"] == "running" for job in statuses)
    assert not all(job["status"] == "done" for job in statuses)

    stack["start_worker"]("celery-after-crash")
    wait_for_jobs(send, staff, photo_ids, deadline_s=300)
    jobs = [job_status(send, staff, pid) for pid in photo_ids]
    assert max(job["attempts"] for job in jobs) >= 2  # the interrupted analysis was redone
    for pid in photo_ids:
        analyses = expect(send("GET", f"/api/v1/photos/{pid}/analyses", headers=staff), 200)
        assert len(analyses) == 1 and analyses[0]["face_found"] is True


def job_status(send, headers, photo_id: str) -> dict:
    return expect(send("GET", f"/api/v1/photos/{photo_id}/job", headers=headers), 200)
