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
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from tests.backend.photo_helpers import exif_has_gps
from tests.conftest import create_private_postgresql_schema, drop_postgresql_schema
from tests.e2e.phone_path import expect, http_transport, login, walk_phone_path
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

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run ``flask --app backend <args>`` as the operator would; return its output."""
    completed = subprocess.run([str(BIN / "flask"), "--app", "backend", *args], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, object]]:
    """The running stack: ``base_url``, ``env``, ``s3_root``, ``processes``."""
    schema = create_private_postgresql_schema()
    run = uuid.uuid4().hex[:10]
    processes: list[Process] = []
    try:
        with running_s3_server(tmp_path / "s3") as s3:
            separator = "&" if "?" in TEST_DATABASE_URL else "?"
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT),
                "DATABASE_URL": f"{TEST_DATABASE_URL}{separator}options={quote(f'-csearch_path={schema}')}",
                "SECRET_KEY": uuid.uuid4().hex * 2,
                "STORAGE_URL": f"s3://{BUCKET}/photos",
                "S3_ENDPOINT_URL": s3.endpoint_url,
                "S3_REGION": "us-east-1",
                "S3_CREATE_BUCKET": "true",
                "AWS_ACCESS_KEY_ID": "skintrack-e2e",
                "AWS_SECRET_ACCESS_KEY": "skintrack-e2e-secret",
                "JOB_BACKEND": "celery",
                "REDIS_URL": TEST_REDIS_URL,
                "JOB_CELERY_QUEUE": f"skintrack-e2e-{run}",
                "RATELIMIT_STORAGE_URI": TEST_REDIS_URL,
            }
            run_cli(env, "db-upgrade")
            run_cli(env, "create-admin", "--email", ADMIN[0], "--clinic-name", "Stack Clinic",
                    "--password", ADMIN[1])
            port = free_port()
            gunicorn = Process("gunicorn", [str(BIN / "gunicorn"), "-w", "2", "-k", "gthread", "--threads", "4",
                                            "-b", f"127.0.0.1:{port}", "--timeout", "120", "wsgi:app"],
                               env, tmp_path)
            processes.append(gunicorn)
            processes.append(Process("celery", [str(BIN / "celery"), "-A", "backend.jobs.celery_app", "worker",
                                                "-l", "info", "-c", "2", "-n", f"e2e-{run}@%h",
                                                "--without-gossip", "--without-mingle"], env, tmp_path))
            wait_for_port(port, gunicorn.process, timeout_s=60)
            yield {"base_url": f"http://127.0.0.1:{port}", "env": env, "s3_root": s3.data_root,
                   "processes": processes}
    finally:
        for process in processes:
            process.stop()
        drop_postgresql_schema(schema)


def test_phone_path_through_production_stack(stack):
    send = http_transport(str(stack["base_url"]))
    admin = login(send, *ADMIN)
    expect(send("POST", "/api/v1/admin/users", headers=admin,
                json_body={"email": CLINICIAN[0], "role": "clinician", "password": CLINICIAN[1]}), 201)
    try:
        result = walk_phone_path(send, CLINICIAN, analysis_deadline_s=300)
    except AssertionError:
        for process in stack["processes"]:
            print(f"--- {process.name} log tail ---\n{process.tail()}")
        raise
    # The bytes at rest in the S3 server: sanitised copies and the overlays, all without GPS.
    originals = sorted(Path(stack["s3_root"]).rglob("original.*"))
    assert len(originals) == 3, originals
    for path in originals:
        data = path.read_bytes()
        assert not exif_has_gps(data)
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (600, 800)
    overlays = list(Path(stack["s3_root"]).rglob("before_after.png"))
    assert len(overlays) == 2  # one per follow-up
    assert set(result.photos) == {"baseline", "2_weeks", "1_month"}
