"""Demo seed: labelled clinic, working demo sign-ins, only into an empty database."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from sqlalchemy import select

from backend.demo import seed
from backend.extensions import db
from backend.models.accounts import Clinic, User
from backend.models.clinical import Patient, TreatmentCourse

TODAY = dt.date(2026, 3, 1)


@pytest.fixture
def instance_dir(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    return tmp_path


def test_seed_creates_labelled_demo_clinic_with_patient_and_course(app):
    with app.app_context():
        accounts = seed.seed_demo(TODAY)
    assert [a.role for a in accounts] == ["admin", "clinician", "patient", "researcher"]
    assert len({a.password for a in accounts}) == 4
    with app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        assert clinic.name == "Demo clinic (not real patients)" and clinic.is_demo
        roles = sorted(db.session.scalars(select(User.role).where(User.clinic_id == clinic.id)))
        assert roles == ["admin", "clinician", "patient", "researcher"]
        patient = db.session.scalars(select(Patient).where(Patient.user_id.is_not(None))).one()
        patient_user = db.session.scalars(select(User).where(User.role == "patient")).one()
        assert patient.clinic_id == clinic.id and patient.user_id == patient_user.id
        course = db.session.scalars(select(TreatmentCourse).where(TreatmentCourse.patient_id == patient.id)).one()
        assert course.baseline_date == TODAY - dt.timedelta(days=seed.DEMO_DAYS_AGO)
        assert len(course.milestones) >= 5  # default schedule: baseline .. 6 months


def test_demo_sign_ins_work(app, client):
    with app.app_context():
        accounts = seed.seed_demo(TODAY)
    for account in accounts:
        response = client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
        assert response.status_code == 200, account.role
        me = client.get("/api/v1/auth/me",
                        headers={"Authorization": f"Bearer {response.get_json()['access_token']}"})
        assert me.get_json()["role"] == account.role


def test_seed_refuses_a_database_with_data(app, make_clinic):
    make_clinic("A real clinic")
    with app.app_context():
        with pytest.raises(RuntimeError, match="not empty"):
            seed.seed_demo(TODAY)
        assert db.session.scalars(select(Clinic.name)).all() == ["A real clinic"]


def test_cli_seed_demo_prints_sign_ins_once(app, instance_dir):
    runner = app.test_cli_runner()
    # The photo series (issue 5) has its own tests; here the account seeding and console output.
    first = runner.invoke(args=["seed-demo", "--no-photo-series"])
    assert first.exit_code == 0, first.output
    assert "Demo clinic (not real patients)" in first.output
    assert "clinician@demo.skintrack.example" in first.output and "password: demo-" in first.output
    saved = instance_dir / seed.CREDENTIALS_FILE_NAME
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert "patient@demo.skintrack.example" in saved.read_text()
    second = runner.invoke(args=["seed-demo", "--no-photo-series"])
    assert second.exit_code == 0
    assert "not seeding" in second.output and "password:" not in second.output
    with app.app_context():
        assert len(db.session.scalars(select(Clinic)).all()) == 1


def test_init_db_seeds_only_when_seed_demo_is_set(app, instance_dir):
    runner = app.test_cli_runner()
    app.config["SEED_DEMO"] = False
    assert runner.invoke(args=["init-db", "--no-photo-series"]).exit_code == 0
    with app.app_context():
        assert seed.database_is_empty()
    app.config["SEED_DEMO"] = True
    result = runner.invoke(args=["init-db", "--no-photo-series"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert not seed.database_is_empty()


def test_serving_requests_never_seeds(app, client):
    client.get("/api/v1/openapi.json")
    client.post("/api/v1/auth/login", json={"email": "admin@demo.skintrack.example", "password": "x"})
    with app.app_context():
        assert seed.database_is_empty()


def test_create_admin_command(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "--email", "Boss@Clinic.example", "--clinic-name", "Clinic A",
                                 "--password", "a long admin password"])
    assert result.exit_code == 0, result.output
    login = client.post("/api/v1/auth/login", json={"email": "boss@clinic.example", "password": "a long admin password"})
    assert login.status_code == 200
    again = runner.invoke(args=["create-admin", "--email", "boss@clinic.example", "--clinic-name", "B",
                                "--password", "a long admin password"])
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(args=["create-admin", "--email", "x@clinic.example", "--clinic-name", "B",
                                "--password", "short"])
    assert short.exit_code != 0


def test_demo_fills_every_workspace_page(app):
    from backend.demo.workspace import DEMO_LOT
    from backend.models.clinical import AdverseEvent, Assessment, TreatmentSession
    from backend.models.studies import StudyGrant
    from backend.services.courses import lot_recipients

    with app.app_context():
        accounts = {a.role: a for a in seed.seed_demo(TODAY)}
        sessions = db.session.scalars(select(TreatmentSession)).all()
        assert len(sessions) == 4 and all(s.product_lot == DEMO_LOT for s in sessions)
        ratings = db.session.scalars(select(Assessment)).all()
        assert {a.rater_role for a in ratings} == {"clinician", "patient"}
        assert all(a.satisfaction is not None for a in ratings if a.rater_role == "patient")
        assert db.session.scalar(select(AdverseEvent.event_type)) == "erythema"
        split = db.session.scalars(select(TreatmentCourse).where(TreatmentCourse.split_face_treated_side.is_not(None))).one()
        assert split.split_face_control_side == "right"
        assert len({r.patient.id for r in lot_recipients(Patient.id.is_not(None), DEMO_LOT)}) == 2
        researcher = db.session.scalars(select(User).where(User.email == accounts["researcher"].email)).one()
        assert db.session.scalars(select(StudyGrant.researcher_user_id)).one() == researcher.id
