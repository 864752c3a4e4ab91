"""Analysis results: per region and measure with their version, baseline registration, overlays."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from backend.extensions import db
from backend.jobs import JobContext, PermanentJobError
from backend.models.photos import Photo, PhotoAnalysis
from backend.services.analysis import analyse_photo, flatten_measures
from imaging.version import ALGORITHM_VERSION
from tests.backend.clinical_helpers import assert_problem
from tests.backend.photo_helpers import TWO_WEEKS_CAPTURE, grant_photo_consent, phone_jpeg, upload

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def baseline_and_follow_up(app, client, world, headers_of):
    """A baseline photo and a 2-week follow-up of ``world.patient``, both analysed inline."""
    grant_photo_consent(app, world.patient, world.clinician_a)
    headers = headers_of("patient_user")
    baseline = upload(client, headers, world.patient.id, phone_jpeg(), course_id=world.course.id).get_json()
    follow_up = upload(client, headers, world.patient.id, phone_jpeg(), course_id=world.course.id,
                       captured_at=TWO_WEEKS_CAPTURE).get_json()
    return baseline, follow_up


def test_analysed_pair_results(app, client, world, headers_of, baseline_and_follow_up):
    """The read-only checks of one analysed pair (analysing a pair takes seconds: once, not per check)."""
    check_follow_up_is_registered_to_the_baseline(client, headers_of, baseline_and_follow_up)
    check_overlays_download_as_png(client, headers_of, baseline_and_follow_up)
    check_analysis_job_is_idempotent_per_version(app, baseline_and_follow_up)
    check_job_status_endpoint(client, headers_of, baseline_and_follow_up)


def check_follow_up_is_registered_to_the_baseline(client, headers_of, baseline_and_follow_up):
    baseline, follow_up = baseline_and_follow_up
    headers = headers_of("clinician_a")
    base = client.get(f"/api/v1/photos/{baseline['id']}", headers=headers).get_json()
    follow = client.get(f"/api/v1/photos/{follow_up['id']}", headers=headers).get_json()
    assert base["milestone_name"] == "baseline" and follow["milestone_name"] == "2_weeks"
    assert base["latest_analysis"]["baseline_photo_id"] is None
    assert follow["latest_analysis"]["baseline_photo_id"] == baseline["id"]
    assert follow["latest_analysis"]["registration"] is not None
    assert "before_after" in follow["latest_analysis"]["overlays"]
    for photo in (base, follow):
        analysis = photo["latest_analysis"]
        assert analysis["algorithm_version"] == ALGORITHM_VERSION
        values = {(m["region"], m["measure"]): m["value"] for m in analysis["measurements"]}
        assert values[("all_skin", "a_star")] is not None
        assert ("forehead", "redness") in values
        assert analysis["redness_reference"] == "forehead"  # the forehead is seen: the usual reference
    # Same face photographed twice: the registered follow-up measures nearly the same redness.
    a_base = {m["measure"]: m["value"] for m in base["latest_analysis"]["measurements"] if m["region"] == "all_skin"}
    a_follow = {m["measure"]: m["value"] for m in follow["latest_analysis"]["measurements"] if m["region"] == "all_skin"}
    assert a_follow["a_star"] == pytest.approx(a_base["a_star"], abs=1.0)


def check_overlays_download_as_png(client, headers_of, baseline_and_follow_up):
    _, follow_up = baseline_and_follow_up
    response = client.get(f"/api/v1/photos/{follow_up['id']}/overlays/before_after", headers=headers_of("patient_user"))
    assert response.status_code == 200 and response.mimetype == "image/png"
    with Image.open(io.BytesIO(response.data)) as image:
        assert image.format == "PNG" and min(image.size) > 100
    missing = client.get(f"/api/v1/photos/{follow_up['id']}/overlays/nonsense", headers=headers_of("patient_user"))
    assert_problem(missing, 404)


def check_analysis_job_is_idempotent_per_version(app, baseline_and_follow_up):
    baseline, _ = baseline_and_follow_up
    with app.app_context():
        first = db.session.scalar(db.select(PhotoAnalysis.id).where(PhotoAnalysis.photo_id == uuid.UUID(baseline["id"])))
        again = analyse_photo(JobContext(uuid.uuid4(), "analyse_photo",
                                         {"photo_id": baseline["id"], "algorithm_version": ALGORITHM_VERSION}))
        assert again == str(first)
        assert db.session.query(PhotoAnalysis).count() == 2  # baseline + follow-up, no duplicate
        with pytest.raises(PermanentJobError):
            analyse_photo(JobContext(uuid.uuid4(), "analyse_photo",
                                     {"photo_id": baseline["id"], "algorithm_version": "1999.1.1"}))


def test_job_of_a_deleted_photo_fails_with_reason(app, client, headers_of, baseline_and_follow_up):
    _, follow_up = baseline_and_follow_up
    assert client.delete(f"/api/v1/photos/{follow_up['id']}", headers=headers_of("patient_user")).status_code == 204
    with app.app_context():
        with pytest.raises(PermanentJobError, match="deleted"):
            analyse_photo(JobContext(uuid.uuid4(), "analyse_photo", {"photo_id": follow_up["id"]}))
        assert db.session.get(Photo, uuid.UUID(follow_up["id"])).storage_key is None


def check_job_status_endpoint(client, headers_of, baseline_and_follow_up):
    baseline, _ = baseline_and_follow_up
    job = client.get(f"/api/v1/photos/{baseline['id']}/job", headers=headers_of("patient_user")).get_json()
    assert job["status"] == "done" and job["attempts"] == 1 and job["last_error"] is None


def test_flatten_measures_keeps_numbers_and_missing_values():
    flat = flatten_measures({"a_star": 12.5, "glcm": {"contrast": 3, "ok": True}, "spot_count": 4,
                             "label": "x", "wrinkles": None})
    assert flat == {"a_star": 12.5, "glcm.contrast": 3.0, "spot_count": 4.0, "wrinkles": None}
