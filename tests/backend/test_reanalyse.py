"""``flask reanalyse``: photos whose results are from an older algorithm version are recomputed."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from backend.extensions import db
from backend.models.jobs import Job
from backend.models.photos import PhotoAnalysis, PhotoMeasurement
from imaging.version import ALGORITHM_VERSION
from tests.backend.photo_helpers import grant_photo_consent, phone_jpeg, upload

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

OLD_VERSION = "2026.10.1"


def test_reanalyse_recomputes_old_results_and_keeps_them(app, client, world, headers_of):
    grant_photo_consent(app, world.patient, world.clinician_a)
    photo = upload(client, headers_of("patient_user"), world.patient.id, phone_jpeg(),
                   course_id=world.course.id).get_json()
    photo_id = uuid.UUID(photo["id"])
    with app.app_context():
        # As if the stored analysis had been made by the previous release.
        db.session.execute(update(PhotoAnalysis).where(PhotoAnalysis.photo_id == photo_id)
                           .values(algorithm_version=OLD_VERSION))
        db.session.execute(update(Job).where(Job.dedupe_key == f"{photo_id}:{ALGORITHM_VERSION}")
                           .values(dedupe_key=f"{photo_id}:{OLD_VERSION}",
                                   payload={"photo_id": str(photo_id), "algorithm_version": OLD_VERSION}))
        db.session.commit()
        old_count = db.session.query(PhotoMeasurement).count()

    runner = app.test_cli_runner()
    result = runner.invoke(args=["reanalyse", "--run-here"])
    assert result.exit_code == 0, result.output
    assert "1 photo(s) queued" in result.output and "1 done" in result.output

    with app.app_context():
        versions = db.session.scalars(select(PhotoAnalysis.algorithm_version)
                                      .where(PhotoAnalysis.photo_id == photo_id)
                                      .order_by(PhotoAnalysis.created_at)).all()
        assert versions == [OLD_VERSION, ALGORITHM_VERSION]
        assert db.session.query(PhotoMeasurement).count() == 2 * old_count

    again = runner.invoke(args=["reanalyse", "--run-here"])
    assert "0 photo(s) queued" in again.output
    detail = client.get(f"/api/v1/photos/{photo_id}", headers=headers_of("patient_user")).get_json()
    assert detail["latest_analysis"]["algorithm_version"] == ALGORITHM_VERSION
    all_versions = client.get(f"/api/v1/photos/{photo_id}/analyses", headers=headers_of("patient_user")).get_json()
    assert [a["algorithm_version"] for a in all_versions] == [OLD_VERSION, ALGORITHM_VERSION]
