"""Backup and restore: a restore into an empty instance serves the same data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backend import create_app
from backend.extensions import db
from tests import factories
from tests.backend.photo_helpers import TWO_WEEKS_CAPTURE, grant_photo_consent, phone_jpeg, phone_png, upload
from tests.environment import BASE_TEST_CONFIG
from tests.hardening.helpers import integrity

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def populated(app, client, world, headers_of) -> dict[str, Any]:
    """Patients, courses, consent, two analysed photos and their audit trail."""
    grant_photo_consent(app, world.patient, world.clinician_a)
    headers = headers_of("patient_user")
    photos = [upload(client, headers, world.patient.id, phone_jpeg(), course_id=world.course.id).get_json(),
              upload(client, headers, world.patient.id, phone_png(), content_type="image/png",
                     course_id=world.course.id, captured_at=TWO_WEEKS_CAPTURE).get_json()]
    return {"photo_ids": [photo["id"] for photo in photos]}


def _views(world, photo_ids: list[str]) -> list[tuple[str, str]]:
    """(user, path) pairs whose answers must be identical after the restore."""
    patient = world.patient.id
    return [("clinician_a", f"/api/v1/patients/{patient}"), ("clinician_a", "/api/v1/patients"),
            ("clinician_a", f"/api/v1/patients/{patient}/courses"),
            ("patient_user", f"/api/v1/patients/{patient}/photos"),
            *(("clinician_a", f"/api/v1/photos/{photo_id}") for photo_id in photo_ids),
            *(("clinician_a", f"/api/v1/photos/{photo_id}/image") for photo_id in photo_ids),
            *(("clinician_a", f"/api/v1/photos/{photo_id}/analyses") for photo_id in photo_ids),
            ("admin_a", "/api/v1/audit/verify")]


def _answers(application, world, photo_ids) -> list[tuple[int, Any]]:
    client = application.test_client()
    answers = []
    for user, path in _views(world, photo_ids):
        response = client.get(path, headers=factories.auth_headers(application, getattr(world, user)))
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            body.pop("checked", None)  # audit/verify counts rows incl. the reads of this comparison
        answers.append((response.status_code, body if body is not None else response.get_data()))
    return answers


def test_restore_into_empty_instance_serves_the_same_data(app, world, populated, tmp_path: Path):
    backup_dir = tmp_path / "backup"
    result = app.test_cli_runner().invoke(args=["backup", "--to", str(backup_dir)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["rows"]["photos"] == 2 and len(manifest["objects"]) >= 4
    before = _answers(app, world, populated["photo_ids"])

    fresh_root = tmp_path / "fresh-instance"
    fresh = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": f"sqlite:///{fresh_root / 'db.sqlite3'}",
                        "STORAGE_URL": f"file://{fresh_root / 'photos'}", "SECRET_KEY": app.config["SECRET_KEY"],
                        "CLOCK": app.config.get("CLOCK")})
    try:
        fresh_root.mkdir(exist_ok=True)
        restored = fresh.test_cli_runner().invoke(args=["restore", "--from", str(backup_dir)])
        assert restored.exit_code == 0, restored.output
        assert f"{len(manifest['objects'])} objects" in restored.output
        after = _answers(fresh, world, populated["photo_ids"])
        assert [status for status, _ in after] == [200] * len(after)
        assert after == before
        assert integrity(fresh).ok
        # Restoring twice would merge: refused.
        again = fresh.test_cli_runner().invoke(args=["restore", "--from", str(backup_dir)])
        assert again.exit_code != 0 and "not empty" in again.output
    finally:
        with fresh.app_context():
            db.engine.dispose()


def test_backup_refuses_a_non_empty_target_and_restore_a_damaged_object(app, populated, tmp_path: Path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    refused = app.test_cli_runner().invoke(args=["backup", "--to", str(tmp_path / "used")])
    assert refused.exit_code != 0 and "not empty" in refused.output

    backup_dir = tmp_path / "backup"
    assert app.test_cli_runner().invoke(args=["backup", "--to", str(backup_dir)]).exit_code == 0
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    damaged = backup_dir / "objects" / manifest["objects"][0]["key"]
    damaged.write_bytes(damaged.read_bytes()[:-10])
    fresh_root = tmp_path / "fresh"
    fresh = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": f"sqlite:///{fresh_root / 'db.sqlite3'}",
                        "STORAGE_URL": f"file://{fresh_root / 'photos'}"})
    try:
        fresh_root.mkdir(exist_ok=True)
        result = fresh.test_cli_runner().invoke(args=["restore", "--from", str(backup_dir)])
        assert result.exit_code != 0 and "checksum" in result.output
    finally:
        with fresh.app_context():
            db.engine.dispose()
