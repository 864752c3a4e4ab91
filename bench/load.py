"""Load: simulated phones uploading 12 MP photos while clinicians read charts, over loopback HTTP.

Usage::

    .venv/bin/python bench/load.py [--mode embedded|scale|both] [--phones 8] [--uploads 4]
                                   [--clinicians 2] [--two-phase-every 4] [--deadline 900] [--json FILE]

Each mode starts real servers as subprocesses on 127.0.0.1 and talks to them over HTTP only:

``embedded``
    The ``make run`` deployment: ``gunicorn --workers 1 --threads 4 wsgi:app`` (the ``thread``
    job worker inside that one process), SQLite and local-disk storage in a temporary instance
    folder, migrated with ``flask init-db``.
``scale``
    The README "Production run": ``gunicorn -w 2 -k gthread --threads 4`` + one Celery worker
    (``-c 2``) on Redis (``TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/15``; only this
    run's queue and rate-limit keys are deleted afterwards), PostgreSQL (a private schema of
    ``TEST_DATABASE_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
    dropped afterwards) and S3 storage in localbucket - the processes and environment of
    ``tests/e2e/test_production_stack.py``.

Seeding uses the operator CLI (``flask create-admin``) and the API (the admin adds clinicians;
a clinician creates each phone's patient, course and photo consent and invites the patient,
who enrols and signs in). Each phone first uploads its baseline photo and the script waits for
those analyses (a follow-up arrives weeks after its baseline; this also warms every worker).
Then the measured load: ``--phones`` phones each upload ``--uploads`` distinct 12 MP follow-up
JPEGs back to back (direct upload; every ``--two-phase-every``-th one two-phase: create, PUT to
the signed URL, complete), while ``--clinicians`` clinicians repeatedly read the patient list,
a course's progress series, a chart PNG and the photo list (``--clinician-pause`` s between
rounds). Then it waits (bounded by ``--deadline``) for every analysis, and proves that no
accepted photo was lost: each upload answered 2xx has its row, its stored bytes (SHA-256 as
recorded) and exactly one analysis at the current algorithm version; ``flask check-integrity
--grace 0`` runs against the instance. The per-address rate limit is raised (all clients share
127.0.0.1). Nothing else on the machine is controlled: the 1-minute load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.upload import BASELINE_AT, analysis_jobs, percentile, phone_jpegs, private_schema  # noqa: E402
from imaging.catalogue import HEADLINE_MEASURES  # noqa: E402
from tests.e2e.phone_path import (  # noqa: E402
    ONE_MONTH_AT,
    PATIENT,
    TWO_WEEKS_AT,
    Reply,
    enrol_patient,
    expect,
    http_transport,
    login,
)
from tests.e2e.test_production_stack import (  # noqa: E402
    BIN,
    Process,
    celery_worker_command,
    delete_redis_keys,
    gunicorn_command,
    production_env,
    run_cli,
)
from tests.s3server import free_port, running_s3_server, wait_for_port  # noqa: E402

#: The quality-gate answer (the direct upload's response) target at 8 concurrent uploads.
TARGET_GATE_MEDIAN_MS = 1000.0
#: Follow-up capture times, cycled (a third follow-up is a retake of the 2-week milestone).
FOLLOW_UPS = (TWO_WEEKS_AT, ONE_MONTH_AT)
#: All clients share 127.0.0.1, so the per-address limit (300/min) is raised for the benchmark.
RATE_LIMIT = "1000000 per minute"
ADMIN = ("admin@load.example.org", "load-admin-password-1")
UPLOAD = "POST /patients/{id}/photos"
COMPLETE = "POST /uploads/{id}/complete"
CHART_MEASURES = HEADLINE_MEASURES


# ------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class Sample:
    """One timed request: endpoint label, start (monotonic s), duration (s), status (0: no answer)."""

    endpoint: str
    start: float
    seconds: float
    status: int
    outcome: str  # "ok", "refused" (intended 422 image refusal) or "error"
    busy_phones: int = 0


def outcome_of(endpoint: str, reply: Reply | None) -> str:
    """``ok`` for 2xx; ``refused`` for a 422 image refusal of an upload; else ``error``."""
    if reply is None:
        return "error"
    if 200 <= reply.status < 300:
        return "ok"
    if reply.status == 422 and endpoint in (UPLOAD, COMPLETE):
        with contextlib.suppress(ValueError):
            if str(reply.json().get("type", "")).startswith("urn:skintrack:problem:image-"):
                return "refused"
    return "error"


class Recorder:
    """Thread-safe list of samples, plus the number of phones with an upload in progress."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.busy_phones = 0
        self._lock = threading.Lock()

    def phone_busy(self, delta: int) -> int:
        with self._lock:
            self.busy_phones += delta
            return self.busy_phones

    def timed(self, send, endpoint: str, method: str, url: str, **kwargs: Any) -> Reply | None:
        """Send one request, record it, return the reply (None when no HTTP answer came)."""
        busy = self.busy_phones
        start = time.monotonic()
        try:
            reply = send(method, url, **kwargs)
        except (OSError, http.client.HTTPException):  # refused, reset, timed out
            reply = None
        seconds = time.monotonic() - start
        sample = Sample(endpoint, start, seconds, reply.status if reply else 0, outcome_of(endpoint, reply), busy)
        with self._lock:
            self.samples.append(sample)
        return reply


def endpoint_rows(samples: list[Sample], span_s: float) -> list[dict[str, Any]]:
    """Per endpoint: requests, rps over ``span_s``, median/p90/p99 latency (ms), errors, refusals."""
    rows = []
    for endpoint in sorted({s.endpoint for s in samples}):
        mine = [s for s in samples if s.endpoint == endpoint]
        ms = [1000.0 * s.seconds for s in mine]
        rows.append({
            "endpoint": endpoint, "requests": len(mine), "rps": len(mine) / span_s if span_s > 0 else 0.0,
            "median_ms": percentile(ms, 0.5), "p90_ms": percentile(ms, 0.9), "p99_ms": percentile(ms, 0.99),
            "errors": sum(s.outcome == "error" for s in mine), "refused": sum(s.outcome == "refused" for s in mine),
        })
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table of :func:`endpoint_rows`."""
    header = f"{'endpoint':<40} {'requests':>8} {'rps':>6} {'median ms':>9} {'p90 ms':>8} {'p99 ms':>8} {'errors':>6}"
    lines = [header, "-" * len(header)]
    for r in rows:
        errors = str(r["errors"]) + (f" (+{r['refused']} refused)" if r["refused"] else "")
        lines.append(f"{r['endpoint']:<40} {r['requests']:>8} {r['rps']:>6.2f} {r['median_ms']:>9.0f} "
                     f"{r['p90_ms']:>8.0f} {r['p99_ms']:>8.0f} {errors:>6}")
    return "\n".join(lines)


# ------------------------------------------------------------------ the simulated clients


@dataclass
class Phone:
    """A patient's phone: its sign-in, patient, course and the photos it will send."""

    index: int
    headers: dict[str, str]
    patient_id: str
    course_id: str
    accepted: list[tuple[str, dt.datetime]] = field(default_factory=list)  # (photo id, request start)


def capture_query(phone: Phone, captured_at: dt.datetime) -> dict[str, Any]:
    return {"course_id": phone.course_id, "captured_at": captured_at.isoformat(), "view": "front",
            "device": f"load-phone-{phone.index}"}


def upload_direct(rec: Recorder, send, phone: Phone, data: bytes, captured_at: dt.datetime) -> Reply | None:
    """``POST /patients/{id}/photos`` with the JPEG as the body (a fresh Idempotency-Key)."""
    query = urllib.parse.urlencode({**capture_query(phone, captured_at), "make_up": "false"})
    return rec.timed(send, UPLOAD, "POST", f"/api/v1/patients/{phone.patient_id}/photos?{query}", data=data,
                     headers={**phone.headers, "Content-Type": "image/jpeg", "Idempotency-Key": uuid.uuid4().hex})


def upload_two_phase(rec: Recorder, send, phone: Phone, data: bytes, captured_at: dt.datetime) -> Reply | None:
    """Create the upload, PUT the bytes to the signed URL, complete: each step timed on its own."""
    body = {**capture_query(phone, captured_at), "make_up": False, "size_bytes": len(data), "content_type": "image/jpeg"}
    created = rec.timed(send, "POST /patients/{id}/uploads", "POST", f"/api/v1/patients/{phone.patient_id}/uploads",
                        headers={**phone.headers, "Idempotency-Key": uuid.uuid4().hex}, json_body=body)
    if created is None or created.status != 201:
        return created
    put = created.json()["put"]
    stored = rec.timed(send, f"{put['method']} signed upload URL", put["method"], put["url"], headers=put["headers"],
                       data=data)
    if stored is None or stored.status not in (200, 204):
        return stored
    return rec.timed(send, COMPLETE, "POST", f"/api/v1/uploads/{created.json()['id']}/complete", headers=phone.headers)


def run_phone(rec: Recorder, send, phone: Phone, photos: list[bytes], two_phase_every: int, stop_at: float,
              start: threading.Barrier) -> None:
    start.wait()
    for k, data in enumerate(photos):
        if time.monotonic() > stop_at:
            return
        captured_at = FOLLOW_UPS[k % len(FOLLOW_UPS)]
        two_phase = two_phase_every > 0 and (k + 1) % two_phase_every == 0
        rec.phone_busy(+1)
        began = dt.datetime.now(dt.timezone.utc)
        try:
            reply = (upload_two_phase if two_phase else upload_direct)(rec, send, phone, data, captured_at)
        finally:
            rec.phone_busy(-1)
        if reply is not None and 200 <= reply.status < 300:
            phone.accepted.append((reply.json()["id"], began))


def run_clinician(rec: Recorder, send, headers: dict[str, str], phones: list[Phone], seed: int, pause_s: float,
                  stop: threading.Event, start: threading.Barrier) -> None:
    """Read the patient list, a course's progress, a chart and the photo list, round after round."""
    rng = random.Random(seed)
    start.wait()
    while not stop.is_set():
        phone = rng.choice(phones)
        measure = rng.choice(CHART_MEASURES)
        rec.timed(send, "GET /patients", "GET", "/api/v1/patients?limit=20", headers=headers)
        rec.timed(send, "GET /courses/{id}/progress", "GET", f"/api/v1/courses/{phone.course_id}/progress",
                  headers=headers)
        rec.timed(send, "GET /courses/{id}/charts/{measure}.png", "GET",
                  f"/api/v1/courses/{phone.course_id}/charts/{measure}.png", headers=headers)
        rec.timed(send, "GET /patients/{id}/photos", "GET", f"/api/v1/patients/{phone.patient_id}/photos?limit=20",
                  headers=headers)
        stop.wait(pause_s)


# ------------------------------------------------------------------ a run against one stack


@dataclass(frozen=True)
class Stack:
    """A started deployment: its base URL, the environment its processes run with, a label."""

    label: str
    base_url: str
    env: dict[str, str]
    processes: list[Process]


def seed(send, n_phones: int, n_clinicians: int) -> tuple[list[Phone], list[dict[str, str]]]:
    """Clinicians (added by the admin) and one enrolled patient per phone, through the API."""
    admin = login(send, *ADMIN)
    clinicians = []
    for c in range(n_clinicians):
        credentials = (f"clinician{c}@load.example.org", f"load-clinician-password-{c}")
        expect(send("POST", "/api/v1/admin/users", headers=admin,
                    json_body={"email": credentials[0], "role": "clinician", "password": credentials[1]}), 201)
        clinicians.append(login(send, *credentials))
    phones = []
    for i in range(n_phones):
        patient, course, headers = enrol_patient(
            send, clinicians[0], {**PATIENT, "full_name": f"Load Phone {i}"},
            (f"phone{i}@load.example.org", f"load-phone-password-{i}"))
        phones.append(Phone(i, headers, patient["id"], course["id"]))
    return phones, clinicians


def verification_app(stack: Stack, instance: Path):
    """An app on the stack's database and storage, in this process, for the checks (never serves)."""
    from backend import create_app
    from backend.config import load_config

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # boto3 reads these from the environment
        if name in stack.env:
            os.environ[name] = stack.env[name]
    return create_app({**load_config(instance, stack.env), "JOB_BACKEND": "inline", "JOB_WORKER_AUTOSTART": False,
                       "LOG_LEVEL": "WARNING"})


def wait_for_analyses(app, photo_ids: list[str], deadline: float) -> list:
    """Poll the jobs table until no analysis job is queued or running, or the deadline passes."""
    while True:
        rows = analysis_jobs(app, photo_ids)
        if len(rows) == len(photo_ids) and all(r.status in ("done", "failed") for r in rows):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(1.0)


def lost_photos(app, photo_ids: list[str]) -> list[dict[str, str]]:
    """Accepted photos without their row, their stored bytes (as hashed) or exactly one current analysis."""
    from backend.extensions import db
    from backend.models.photos import Photo, PhotoAnalysis
    from backend.storage import ObjectNotFound, current_storage
    from imaging.version import ALGORITHM_VERSION

    lost = []
    with app.app_context():
        storage = current_storage()
        for photo_id in photo_ids:
            photo = db.session.get(Photo, uuid.UUID(photo_id))
            reason = None
            if photo is None:
                reason = "no photo row"
            elif photo.storage_key is None:
                reason = "no storage key"
            else:
                try:
                    with storage.open(photo.storage_key) as stream:
                        digest = hashlib.sha256(stream.read()).hexdigest()
                    if digest != photo.sha256:
                        reason = "stored bytes differ from the recorded SHA-256"
                except ObjectNotFound:
                    reason = "stored bytes missing"
            if reason is None:
                analyses = db.session.scalar(
                    db.select(db.func.count()).select_from(PhotoAnalysis)
                    .where(PhotoAnalysis.photo_id == photo.id, PhotoAnalysis.algorithm_version == ALGORITHM_VERSION))
                if analyses != 1:
                    reason = f"{analyses} analyses at {ALGORITHM_VERSION}"
            if reason is not None:
                lost.append({"photo_id": photo_id, "reason": reason})
        db.session.remove()
        db.engine.dispose()
    return lost


def check_integrity(env: dict[str, str]) -> dict[str, Any]:
    """``flask --app backend check-integrity --grace 0 --json`` (no upload is in flight by now)."""
    completed = subprocess.run([str(BIN / "flask"), "--app", "backend", "check-integrity", "--grace", "0", "--json"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        report = {"output": (completed.stdout + completed.stderr)[-2000:]}
    return {"exit_code": completed.returncode, "report": report}


def run_load(stack: Stack, instance: Path, photos: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    """Seed, upload baselines, run the measured load, wait for the analyses, check; return the figures."""
    send = http_transport(stack.base_url, timeout_s=args.request_timeout)
    phones, clinicians = seed(send, args.phones, args.clinicians)
    app = verification_app(stack, instance)
    deadline = time.monotonic() + args.deadline

    # Baselines (not measured): one per phone, analysed before the follow-ups arrive.
    warmup = Recorder()
    barrier = threading.Barrier(len(phones))

    def baseline(phone: Phone, data: bytes) -> None:
        barrier.wait()
        reply = upload_direct(warmup, send, phone, data, BASELINE_AT)
        if reply is not None and reply.status == 201:
            phone.accepted.append((reply.json()["id"], dt.datetime.now(dt.timezone.utc)))

    threads = [threading.Thread(target=baseline, args=(p, photos[i])) for i, p in enumerate(phones)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    baseline_ids = [pid for p in phones for pid, _ in p.accepted]
    wait_for_analyses(app, baseline_ids, deadline)

    # The measured load.
    rec = Recorder()
    stop = threading.Event()
    start = threading.Barrier(len(phones) + len(clinicians) + 1)
    per_phone = [photos[len(phones) + i * args.uploads: len(phones) + (i + 1) * args.uploads]
                 for i in range(len(phones))]
    phone_threads = [threading.Thread(target=run_phone, args=(rec, send, p, per_phone[i], args.two_phase_every,
                                                               deadline, start)) for i, p in enumerate(phones)]
    clinician_threads = [threading.Thread(target=run_clinician, args=(rec, send, headers, phones, c,
                                                                      args.clinician_pause, stop, start))
                         for c, headers in enumerate(clinicians)]
    for t in phone_threads + clinician_threads:
        t.start()
    load_before = os.getloadavg()[0]
    start.wait()
    began, began_wall = time.monotonic(), dt.datetime.now(dt.timezone.utc)
    for t in phone_threads:
        t.join()
    stop.set()
    for t in clinician_threads:
        t.join()
    span_s = time.monotonic() - began
    load_after = os.getloadavg()[0]

    follow_ups = [(pid, at) for p in phones for pid, at in p.accepted if pid not in baseline_ids]
    accepted = baseline_ids + [pid for pid, _ in follow_ups]
    rows = wait_for_analyses(app, accepted, deadline)
    drained_s = time.monotonic() - began
    load_drained = os.getloadavg()[0]
    done = {str(r.id): r.finished_at for r in rows if r.status == "done"}
    finished = [done[pid] for pid, _ in follow_ups if pid in done]
    analysed_span = (max(finished) - began_wall).total_seconds() if finished else 0.0
    lost = lost_photos(app, accepted)
    integrity = check_integrity(stack.env)

    gate_all = [1000.0 * s.seconds for s in rec.samples if s.endpoint == UPLOAD]
    gate_full = [1000.0 * s.seconds for s in rec.samples if s.endpoint == UPLOAD and s.busy_phones >= args.phones]
    gate = gate_full or gate_all
    return {
        "mode": stack.label, "phones": args.phones, "uploads_per_phone": args.uploads,
        "clinicians": args.clinicians, "photo_mb": round(len(photos[0]) / 1e6, 2), "load_phase_s": round(span_s, 1),
        "endpoints": endpoint_rows(rec.samples, span_s),
        "gate": {"requests": len(gate), "at_full_concurrency": bool(gate_full),
                 "median_ms": percentile(gate, 0.5) if gate else None, "p99_ms": percentile(gate, 0.99) if gate else None,
                 "all_uploads_median_ms": percentile(gate_all, 0.5) if gate_all else None,
                 "target_median_ms": TARGET_GATE_MEDIAN_MS,
                 "pass": bool(gate) and percentile(gate, 0.5) <= TARGET_GATE_MEDIAN_MS},
        "baseline_uploads": {"accepted": len(baseline_ids), "median_ms": percentile(
            [1000.0 * s.seconds for s in warmup.samples], 0.5) if warmup.samples else None},
        "analysis": {"follow_ups_accepted": len(follow_ups), "follow_ups_done": len(finished),
                     "failed": sum(r.status == "failed" for r in rows),
                     "unfinished": len(accepted) - sum(r.status in ("done", "failed") for r in rows),
                     "photos_per_minute": 60.0 * len(finished) / analysed_span if analysed_span > 0 else 0.0,
                     "last_done_after_s": round(analysed_span, 1), "load_plus_drain_s": round(drained_s, 1)},
        "accepted": len(accepted), "photos_lost": len(lost), "lost": lost,
        "check_integrity": integrity,
        "loadavg_1min": {"before": load_before, "end_of_load": load_after, "after_drain": load_drained},
        "cores": os.cpu_count(),
    }


def print_report(result: dict[str, Any]) -> None:
    gate, analysis, load = result["gate"], result["analysis"], result["loadavg_1min"]
    print(f"\n== {result['mode']} ==")
    print(f"{result['phones']} phones x {result['uploads_per_phone']} follow-up 12 MP JPEGs "
          f"(~{result['photo_mb']} MB each) + {result['clinicians']} clinicians reading; "
          f"load phase {result['load_phase_s']} s; 1-min load average {load['before']:.1f} -> "
          f"{load['end_of_load']:.1f} (end of load) -> {load['after_drain']:.1f} (after analyses), "
          f"{result['cores']} cores")
    print(format_table(result["endpoints"]))
    where = f"{result['phones']} phones uploading" if gate["at_full_concurrency"] else "all uploads"
    if gate["median_ms"] is not None:
        verdict = "PASS" if gate["pass"] else "FAIL"
        print(f"quality-gate answer (direct upload, {where}): n={gate['requests']} median {gate['median_ms']:.0f} ms, "
              f"p99 {gate['p99_ms']:.0f} ms; target median <= {gate['target_median_ms']:.0f} ms: {verdict}")
    print(f"analysis: {analysis['follow_ups_done']}/{analysis['follow_ups_accepted']} follow-ups analysed, "
          f"last {analysis['last_done_after_s']} s after the load began: {analysis['photos_per_minute']:.1f} photos "
          f"analysed per minute ({analysis['failed']} failed, {analysis['unfinished']} unfinished at the deadline)")
    print(f"photos lost: {result['photos_lost']} of {result['accepted']} accepted (baselines included)"
          + "".join(f"\n  {x['photo_id']}: {x['reason']}" for x in result["lost"]))
    integrity = result["check_integrity"]
    findings = integrity["report"].get("findings") if isinstance(integrity["report"], dict) else None
    status = "clean" if integrity["exit_code"] == 0 else f"exit {integrity['exit_code']}"
    print(f"check-integrity: {status}" + (f", {len(findings)} findings" if findings is not None else "")
          + "".join(f"\n  {f}" for f in (findings or [])[:10]))


# ------------------------------------------------------------------ the two deployments


def start_gunicorn(env: dict[str, str], root: Path, workers: int, threads: int) -> tuple[Process, str]:
    port = free_port()
    gunicorn = Process("gunicorn", gunicorn_command(port, workers, threads), env, root)
    wait_for_port(port, gunicorn.process, timeout_s=60)
    return gunicorn, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def embedded_stack(root: Path) -> Iterator[tuple[Stack, Path]]:
    """``make run`` in a temporary instance folder: init-db, then gunicorn -w 1 --threads 4."""
    instance = root / "instance"
    env = {key: value for key, value in os.environ.items() if key not in ("SEED_DEMO", "JOB_BACKEND", "REDIS_URL")}
    env.update({"PYTHONPATH": str(REPO), "DATABASE_URL": f"sqlite:///{instance / 'skintrack.sqlite3'}",
                "STORAGE_URL": f"file://{instance / 'storage'}", "SECRET_KEY": uuid.uuid4().hex * 2,
                "RATELIMIT_DEFAULT": RATE_LIMIT})
    instance.mkdir(parents=True)
    run_cli(env, "init-db")
    run_cli(env, "create-admin", "--email", ADMIN[0], "--clinic-name", "Load clinic", "--password", ADMIN[1])
    gunicorn, base_url = start_gunicorn(env, root, 1, 4)
    try:
        yield Stack("embedded: gunicorn -w 1 --threads 4 (thread job worker in-process), SQLite, local disk",
                    base_url, env, [gunicorn]), instance
    finally:
        gunicorn.stop()


@contextlib.contextmanager
def scale_stack(root: Path, web_workers: int) -> Iterator[tuple[Stack, Path]]:
    """The production stack of tests/e2e/test_production_stack.py, with a private schema and queue."""
    database_url = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    queue = f"skintrack-load-{uuid.uuid4().hex[:10]}"
    processes: list[Process] = []
    try:
        with private_schema(database_url) as schema, running_s3_server(root / "s3") as s3:
            env = {**production_env(database_url, schema, redis_url, s3.endpoint_url, queue),
                   "RATELIMIT_DEFAULT": RATE_LIMIT}
            run_cli(env, "db-upgrade")
            run_cli(env, "create-admin", "--email", ADMIN[0], "--clinic-name", "Load clinic", "--password", ADMIN[1])
            processes.append(Process("celery", celery_worker_command(queue, level="warning"), env, root))
            gunicorn, base_url = start_gunicorn(env, root, web_workers, 4)
            processes.append(gunicorn)
            label = (f"scale: gunicorn -w {web_workers} -k gthread --threads 4 + Celery worker -c 2 on Redis, "
                     "PostgreSQL, S3 (localbucket)")
            try:
                yield Stack(label, base_url, env, processes), root / "instance"
            finally:
                for process in processes:
                    process.stop()
    finally:
        delete_redis_keys(redis_url, queue)  # only this run's queue, bindings and rate-limit counters


def run_mode(name: str, root: Path, photos: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    make: Callable[[], contextlib.AbstractContextManager] = (
        (lambda: embedded_stack(root)) if name == "embedded" else (lambda: scale_stack(root, args.web_workers)))
    root.mkdir(parents=True)
    with make() as (stack, instance):
        try:
            result = run_load(stack, instance, photos, args)
        except BaseException:
            for process in stack.processes:
                print(f"--- {process.name} log tail ---\n{process.tail()}", file=sys.stderr)
            raise
    print_report(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "scale", "both"), default="both")
    parser.add_argument("--phones", type=int, default=8, help="concurrent phones (1..32)")
    parser.add_argument("--uploads", type=int, default=4, help="follow-up photos per phone (1..20)")
    parser.add_argument("--clinicians", type=int, default=2, help="clinicians reading charts (1..8)")
    parser.add_argument("--clinician-pause", type=float, default=0.5, help="seconds between a clinician's rounds")
    parser.add_argument("--two-phase-every", type=int, default=4, help="every n-th upload is two-phase (0: none)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers in scale mode")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds per mode for load and analyses")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds before a request counts as lost")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args()
    if not (1 <= args.phones <= 32 and 1 <= args.uploads <= 20 and 1 <= args.clinicians <= 8):
        parser.error("--phones 1..32, --uploads 1..20, --clinicians 1..8")
    started = time.monotonic()
    photos = phone_jpegs(args.phones * (1 + args.uploads))
    print(f"{len(photos)} distinct 12 MP JPEGs (3024x4032, EXIF orientation 6) generated in "
          f"{time.monotonic() - started:.0f} s; 1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = []
    with tempfile.TemporaryDirectory(prefix="skintrack-load-") as tmp:
        for name in (("embedded", "scale") if args.mode == "both" else (args.mode,)):
            results.append(run_mode(name, Path(tmp) / name, photos, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if any(r["photos_lost"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
