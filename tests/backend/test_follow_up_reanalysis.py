"""Follow-ups re-analysed when the baseline they register to changes, through the API and the jobs.

Patients' apps upload queued photos in any order: a follow-up analysed before its baseline, or
registered to a baseline that a retake supersedes or that is deleted, gets a new analysis against
the baseline that counts now (``backend.services.photos.stale_analyses``), replacing the stale
one. Every upload runs the real gate and analysis (the inline job backend runs each job right
after its transaction commits).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, update

from backend.extensions import db
from backend.jobs import JobContext
from backend.models.clinical import TreatmentCourse
from backend.models.jobs import Job
from backend.models.photos import Photo, PhotoAnalysis
from backend.ops.integrity import check_integrity
from backend.services.analysis import analyse_photo
from backend.services.photos import ANALYSE_JOB, enqueue_stale_reanalysis, stale_analyses
from backend.services.repeatability import RECOMPUTE_JOB
from backend.storage import current_storage
from imaging.version import ALGORITHM_VERSION
from tests.backend.photo_helpers import TWO_WEEKS_CAPTURE, grant_photo_consent, phone_jpeg, upload

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

#: Devices the photos are taken with: the baseline's and the follow-up's differ, so a follow-up
#: compared with the baseline has a comparability reason (``other_camera``) it has on its own never.
BASELINE_DEVICE, FOLLOW_UP_DEVICE = "Phone A", "Phone B"


@pytest.fixture
def consented(app, world) -> Any:
    grant_photo_consent(app, world.patient, world.clinician_a)
    return world


def send_baseline(client, world, headers) -> str:
    return send(client, world, headers, device=BASELINE_DEVICE)


def send_follow_up(client, world, headers) -> str:
    return send(client, world, headers, captured_at=TWO_WEEKS_CAPTURE, device=FOLLOW_UP_DEVICE)


def registered_follow_up(app, client, world, headers) -> tuple[str, str, PhotoAnalysis]:
    """A baseline, then a follow-up analysed against it: (baseline id, follow-up id, its analysis)."""
    baseline = send_baseline(client, world, headers)
    follow_up = send_follow_up(client, world, headers)
    first = current_analysis(app, follow_up)
    assert_registered_to(first, baseline)
    return baseline, follow_up, first


def send(client, world, headers, **query) -> str:
    response = upload(client, headers, world.patient.id, phone_jpeg(), course_id=world.course.id, **query)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def analyses_of(app, photo_id: str) -> list[PhotoAnalysis]:
    """Every stored analysis of a photo (loaded with its summary, overlays and measurements)."""
    with app.app_context():
        rows = db.session.scalars(select(PhotoAnalysis).where(PhotoAnalysis.photo_id == uuid.UUID(photo_id))).all()
        for row in rows:
            _ = row.overlays, row.measurements, row.summary
        db.session.expunge_all()
        return list(rows)


def current_analysis(app, photo_id: str) -> PhotoAnalysis:
    """The photo's only analysis: re-analysis replaces, never adds."""
    (analysis,) = analyses_of(app, photo_id)
    assert analysis.algorithm_version == ALGORITHM_VERSION
    return analysis


def recompute_jobs(app) -> int:
    """Repeatability recomputations done."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Job)
                                 .where(Job.kind == RECOMPUTE_JOB, Job.status == "done"))


def analyse_jobs(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Job).where(Job.kind == ANALYSE_JOB))


def assert_registered_to(analysis: PhotoAnalysis, baseline_id: str) -> None:
    """Registered onto that baseline, compared with it, and shown beside it."""
    assert str(analysis.baseline_photo_id) == baseline_id
    assert analysis.summary["registration"] is not None and analysis.summary["registration"]["converged"]
    assert "other_camera" in analysis.summary["comparability"]["redness"]["reasons"]
    assert "before_after" in {o.name for o in analysis.overlays}


def assert_unregistered(analysis: PhotoAnalysis) -> None:
    assert analysis.baseline_photo_id is None and analysis.summary["registration"] is None
    assert "other_camera" not in analysis.summary["comparability"]["redness"]["reasons"]
    assert "before_after" not in {o.name for o in analysis.overlays}


def integrity_findings(app, *photo_ids: str) -> list:
    """``check-integrity`` findings, orphaned files only under these photos: the photo store is
    shared by the tests of a session (the database is emptied after each test)."""
    with app.app_context():
        return [f for f in check_integrity(grace_s=0).findings
                if f.kind != "orphan_file" or any(p in f.subject for p in photo_ids)]


def unregister(app, photo_id: str) -> None:
    """Make a follow-up's analysis stale as an earlier release left it: analysed before the
    baseline arrived, never redone."""
    with app.app_context():
        db.session.execute(update(PhotoAnalysis).where(PhotoAnalysis.photo_id == uuid.UUID(photo_id))
                           .values(baseline_photo_id=None))
        db.session.commit()


def stale_count(app, world) -> int:
    with app.app_context():
        return len(stale_analyses(db.session.get(TreatmentCourse, world.course.id), "front"))


def test_follow_up_analysed_before_its_baseline_is_reanalysed_against_it_once(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    follow_up = send_follow_up(client, consented, headers)
    alone = current_analysis(app, follow_up)
    assert_unregistered(alone)
    repeat = send(client, consented, headers, captured_at=TWO_WEEKS_CAPTURE + dt.timedelta(minutes=5),
                  device=FOLLOW_UP_DEVICE, repeat_of_id=follow_up)
    recomputed = recompute_jobs(app)

    baseline = send_baseline(client, consented, headers)
    again = current_analysis(app, follow_up)
    assert again.id != alone.id
    assert_registered_to(again, baseline)
    assert_registered_to(current_analysis(app, repeat), baseline)
    # The pair's repeatability was computed from the replaced analyses: computed again.
    assert recompute_jobs(app) > recomputed
    shown = client.get(f"/api/v1/photos/{follow_up}", headers=headers).get_json()
    assert shown["latest_analysis"]["id"] == str(again.id) and shown["job"]["status"] == "done"
    assert shown["latest_analysis"]["baseline_photo_id"] == baseline
    with app.app_context():
        job = db.session.get(Job, db.session.get(Photo, uuid.UUID(follow_up)).analysis_job_id)
        assert job.result_ref == str(again.id)  # the job that replaced it, not the upload's
        payload = job.payload
    assert integrity_findings(app, follow_up, baseline) == []

    # Idempotent: the job again, the trigger again and the maintenance command find nothing to do.
    jobs = analyse_jobs(app)
    with app.app_context():
        assert analyse_photo(JobContext(uuid.uuid4(), ANALYSE_JOB, payload)) == str(again.id)
        db.session.commit()
        assert enqueue_stale_reanalysis(db.session.get(TreatmentCourse, consented.course.id), "front") == []
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["reanalyse-follow-ups"])
    assert result.exit_code == 0, result.output
    assert "0 follow-up(s) queued" in result.output
    assert analyse_jobs(app) == jobs and current_analysis(app, follow_up).id == again.id


def test_retake_of_the_baseline_reanalyses_follow_ups_against_it(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    baseline, follow_up, first = registered_follow_up(app, client, consented, headers)

    retake = send_baseline(client, consented, headers)
    assert client.get(f"/api/v1/photos/{baseline}", headers=headers).get_json()["superseded_by_id"] == retake
    again = current_analysis(app, follow_up)
    assert again.id != first.id
    assert_registered_to(again, retake)
    assert stale_count(app, consented) == 0


def test_deleted_baseline_leaves_follow_ups_analysed_without_it(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    baseline, follow_up, first = registered_follow_up(app, client, consented, headers)
    before_after = next(o.storage_key for o in first.overlays if o.name == "before_after")

    assert client.delete(f"/api/v1/photos/{baseline}", headers=headers).status_code == 204
    again = current_analysis(app, follow_up)
    assert again.id != first.id
    assert_unregistered(again)  # no other photo counts for the baseline
    with app.app_context():
        # The before/after showed the deleted baseline's face: gone with the analysis it belonged to.
        assert not current_storage().exists(before_after)
    assert integrity_findings(app, follow_up, baseline) == []


def test_maintenance_command_reanalyses_follow_ups_left_stale(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    baseline = send_baseline(client, consented, headers)
    follow_up = send_follow_up(client, consented, headers)
    unregister(app, follow_up)
    stale = current_analysis(app, follow_up)
    assert stale_count(app, consented) == 1

    runner = app.test_cli_runner()
    result = runner.invoke(args=["reanalyse-follow-ups", "--run-here"])
    assert result.exit_code == 0, result.output
    assert "1 follow-up(s) queued" in result.output
    again = current_analysis(app, follow_up)
    assert again.id != stale.id
    assert_registered_to(again, baseline)

    jobs = analyse_jobs(app)
    result = runner.invoke(args=["reanalyse-follow-ups"])
    assert "0 follow-up(s) queued" in result.output
    assert analyse_jobs(app) == jobs


def test_a_new_schedule_that_makes_a_follow_up_the_baseline_reanalyses_it_first(app, client, consented, headers_of):
    headers = headers_of("patient_user")
    baseline = send_baseline(client, consented, headers)
    follow_up = send_follow_up(client, consented, headers)
    assert_registered_to(current_analysis(app, follow_up), baseline)
    # The clinic swaps the first two visits: the 2-week photo is now the reference visit.
    course = client.get(f"/api/v1/courses/{consented.course.id}", headers=headers_of("clinician_a")).get_json()
    specs = [{key: m[key] for key in ("name", "day_offset", "window_before_days", "window_after_days")}
             for m in course["milestones"]]
    first, second = specs[0], specs[1]
    specs[0], specs[1] = {**first, "name": second["name"]}, {**second, "name": first["name"]}
    response = client.put(f"/api/v1/courses/{consented.course.id}/milestones", json={"milestones": specs},
                          headers=headers_of("clinician_a"))
    assert response.status_code == 200, response.get_json()
    # The new baseline is re-analysed as a baseline (registered to nothing, its reference stored) ...
    new_baseline = current_analysis(app, follow_up)
    assert new_baseline.baseline_photo_id is None and new_baseline.baseline_reference_key is not None
    assert "before_after" not in {o.name for o in new_baseline.overlays}
    # ... and then the former baseline, now a follow-up, against it.
    former = current_analysis(app, baseline)
    assert str(former.baseline_photo_id) == follow_up
    assert former.summary["registration"] is not None and former.summary["registration"]["converged"]
    assert stale_count(app, consented) == 0


def test_a_reanalysis_that_found_nothing_to_do_runs_again_when_its_change_comes_back(app, client, consented,
                                                                                     headers_of):
    from backend.services.photos import enqueue_analysis

    headers = headers_of("patient_user")
    baseline = send_baseline(client, consented, headers)
    follow_up = send_follow_up(client, consented, headers)
    first = current_analysis(app, follow_up)
    with app.app_context():
        # A re-analysis towards "no baseline" queued while the baseline was briefly gone, which ran
        # after it had come back: it found the analysis up to date and is done.
        photo = db.session.get(Photo, uuid.UUID(follow_up))
        job = enqueue_analysis(photo, replacing=db.session.get(PhotoAnalysis, first.id), target=None)
        job_id = job.id
        db.session.commit()
        assert db.session.get(Job, job_id).status == "done"
    assert current_analysis(app, follow_up).id == first.id
    # Now the baseline really goes: the same change again must not be swallowed by that done job.
    assert client.delete(f"/api/v1/photos/{baseline}", headers=headers).status_code == 204
    again = current_analysis(app, follow_up)
    assert again.id != first.id
    assert_unregistered(again)
    assert stale_count(app, consented) == 0


def test_a_baseline_deleted_while_a_follow_up_is_stored_still_gets_it_reanalysed(app, client, consented, headers_of,
                                                                                database_backend, monkeypatch):
    """The race of two workers: a follow-up's analysis checks that its baseline still counts and
    stores; meanwhile the baseline is deleted, whose trigger looks for analyses to redo. Whatever
    the order, no analysis may stay registered to the deleted baseline (the course row lock)."""
    if database_backend != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: the two cannot interleave")
    import threading

    from sqlalchemy import text

    from backend.services import analysis as analysis_service
    from tests.waiting import wait_until

    wait_s = 60.0
    headers = headers_of("patient_user")
    baseline = send_baseline(client, consented, headers)
    follow_up = send_follow_up(client, consented, headers)
    unregister(app, follow_up)  # stale: its job will analyse it again
    with app.app_context():
        payload = db.session.get(Job, db.session.get(Photo, uuid.UUID(follow_up)).analysis_job_id).payload

    checked, go = threading.Event(), threading.Event()
    real_check = analysis_service.registration_baseline
    calls = []
    outcome: dict[str, Any] = {}

    def check_then_pause(photo):
        current = real_check(photo)
        calls.append(current)
        if len(calls) == 2:  # the check after computing, just before storing
            outcome["worker_pid"] = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
            checked.set()
            assert go.wait(wait_s)
        return current

    monkeypatch.setattr(analysis_service, "registration_baseline", check_then_pause)

    def worker() -> None:
        try:
            with app.app_context():
                outcome["analysis"] = analysis_service.analyse_photo(JobContext(uuid.uuid4(), ANALYSE_JOB, payload))
                db.session.commit()
        except BaseException as error:  # reported by the main thread
            outcome["worker_error"] = error

    def deletion() -> None:
        try:
            outcome["status"] = app.test_client().delete(f"/api/v1/photos/{baseline}", headers=headers).status_code
        except BaseException as error:
            outcome["deletion_error"] = error

    stores, deletes = threading.Thread(target=worker), threading.Thread(target=deletion)
    stores.start()
    try:
        assert checked.wait(wait_s), f"the follow-up's analysis never reached its store: {outcome}"
        assert str(calls[-1].id) == baseline  # it checked: the baseline still counts
        deletes.start()
        with app.app_context(), db.engine.connect() as observer:

            def deletion_waits_on_the_worker_or_is_done() -> bool:
                blocked = observer.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                    {"pid": outcome["worker_pid"]}).scalar()
                observer.rollback()
                return bool(blocked) or not deletes.is_alive()

            assert wait_until(deletion_waits_on_the_worker_or_is_done, timeout_s=wait_s)
    finally:
        go.set()  # the follow-up's analysis stores now, between the deletion's change and its trigger
        for thread in (stores, deletes):
            if thread.is_alive():
                thread.join(wait_s)
    assert not stores.is_alive() and not deletes.is_alive()
    assert "worker_error" not in outcome and "deletion_error" not in outcome, outcome
    assert outcome["status"] == 204 and outcome["analysis"]
    monkeypatch.undo()
    # The analysis stored against the deleted baseline was found stale and replaced.
    again = current_analysis(app, follow_up)
    assert str(again.id) != outcome["analysis"]
    assert_unregistered(again)
    assert stale_count(app, consented) == 0
