"""``flask check-integrity``: a clean system passes; each kind of damage is reported by id."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import delete

from backend.extensions import db
from backend.models.jobs import Job, JobStatus
from backend.models.photos import Photo, PhotoAnalysis
from backend.ops.integrity import check_integrity
from backend.storage import current_storage
from tests.backend.audit_helpers import restore_append_only_guard, without_append_only_guard
from tests.backend.photo_helpers import grant_photo_consent, phone_jpeg, upload
from tests.hardening.helpers import integrity, run_check_integrity_cli

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def photo_id(app, client, world, headers_of) -> uuid.UUID:
    """One photo uploaded through the API and analysed (inline job backend)."""
    grant_photo_consent(app, world.patient, world.clinician_a)
    response = upload(client, headers_of("patient_user"), world.patient.id, phone_jpeg(), course_id=world.course.id)
    assert response.status_code == 201, response.get_json()
    return uuid.UUID(response.get_json()["id"])


def kinds(report) -> set[str]:
    return {finding.kind for finding in report.findings}


def test_clean_system_passes_cli(app, photo_id):
    result = run_check_integrity_cli(app)
    assert result.exit_code == 0, result.output
    assert "integrity ok" in result.output
    report = json.loads(run_check_integrity_cli(app, "--json").output)
    assert report["ok"] is True
    assert report["counts"]["photos"] == 1 and report["counts"]["objects"] >= 2  # original + overlays
    assert report["counts"]["audit_events"] > 0


def test_orphan_file_is_reported_and_fails_cli(app, photo_id):
    with app.app_context():
        current_storage().put("photos/nobody/stray/original.jpg", b"\xff\xd8junk", "image/jpeg")
    report = integrity(app)
    assert [(f.kind, f.subject) for f in report.findings] == [("orphan_file", "photos/nobody/stray/original.jpg")]
    result = run_check_integrity_cli(app)
    assert result.exit_code == 1
    assert "orphan_file\tphotos/nobody/stray/original.jpg" in result.output


def test_remove_orphans_deletes_only_orphans_past_the_grace_period(app, photo_id):
    with app.app_context():
        current_storage().put("photos/nobody/stray/original.jpg", b"\xff\xd8junk", "image/jpeg")
        keys_before = set(current_storage().iter_keys(""))
    in_flight = app.test_cli_runner().invoke(args=["check-integrity", "--grace", "3600", "--remove-orphans"])
    assert in_flight.exit_code == 0 and "removed orphan" not in in_flight.output  # too young: in flight
    result = run_check_integrity_cli(app, "--remove-orphans")
    assert result.exit_code == 0, result.output
    assert "removed orphan\tphotos/nobody/stray/original.jpg" in result.output and "integrity ok" in result.output
    with app.app_context():
        assert set(current_storage().iter_keys("")) == keys_before - {"photos/nobody/stray/original.jpg"}
        assert db.session.get(Photo, photo_id) is not None


def test_recent_unreferenced_object_is_in_flight_not_orphan(app, photo_id):
    with app.app_context():
        current_storage().put("photos/nobody/inflight/original.jpg", b"x", "image/jpeg")
        assert check_integrity(grace_s=60).ok


def test_missing_bytes_are_reported(app, photo_id):
    with app.app_context():
        key = db.session.get(Photo, photo_id).storage_key
        current_storage().delete(key)
    report = integrity(app)
    assert [(f.kind, f.subject) for f in report.findings] == [("missing_bytes", f"photo:{photo_id}")]
    assert key in report.findings[0].detail


def test_job_running_past_its_lease_is_reported(app, photo_id, clock):
    with app.app_context():
        job = Job(id=uuid.uuid4(), kind="analyse_photo", payload={"photo_id": str(uuid.uuid4())},
                  status=JobStatus.RUNNING.value, attempts=1, locked_by="dead-worker",
                  locked_until=clock() - dt.timedelta(minutes=5))
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    report = integrity(app)
    assert [(f.kind, f.subject) for f in report.findings] == [("stuck_job", f"job:{job_id}")]
    clock.advance(minutes=-10)  # the same job, seen while its lease still runs, is fine
    assert integrity(app).ok


def test_photo_without_current_analysis_is_reported(app, photo_id):
    with app.app_context():
        db.session.execute(delete(PhotoAnalysis).where(PhotoAnalysis.photo_id == photo_id))
        db.session.commit()
    report = integrity(app)
    unanalysed = report.of_kind("unanalysed_photo")
    assert [f.subject for f in unanalysed] == [f"photo:{photo_id}"]
    assert "last job done" in unanalysed[0].detail
    # Its overlays lost their rows too: they are orphans now.
    assert {f.kind for f in report.findings} == {"unanalysed_photo", "orphan_file"}


def test_photo_with_queued_analysis_is_pending_not_unanalysed(app, photo_id):
    with app.app_context():
        db.session.execute(delete(PhotoAnalysis).where(PhotoAnalysis.photo_id == photo_id))
        job = db.session.get(Job, db.session.get(Photo, photo_id).analysis_job_id)
        job.status = JobStatus.QUEUED.value
        db.session.commit()
    assert integrity(app).ok  # the queued job will analyse it and overwrite its overlays


def test_deleted_photo_bytes_wait_for_purge_then_are_gone(app, client, photo_id, headers_of):
    response = client.delete(f"/api/v1/photos/{photo_id}", headers=headers_of("patient_user"))
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    report = integrity(app)
    assert report.ok, report.findings
    with app.app_context():
        assert list(current_storage().iter_keys("photos/")) == []


def test_broken_audit_chain_is_reported(app, photo_id, database_backend):
    with app.app_context():
        with db.engine.begin() as conn:
            without_append_only_guard(conn, database_backend)
            conn.exec_driver_sql("UPDATE audit_events SET object_id = 'other' WHERE seq = 1")  # the photo.create event
            restore_append_only_guard(conn, database_backend)
    report = integrity(app)
    assert [(f.kind, f.subject) for f in report.findings] == [("audit_chain", "audit_event:1")]
