"""The demo clinic that ``make run`` seeds into an empty embedded database.

Everything is clearly labelled as demo data: the clinic is named
"Demo clinic (not real patients)" and flagged ``is_demo``. Passwords are
random per seed, printed once and kept in ``<instance>/demo-credentials.txt``
(mode 0600) so a demo deployment reachable by others has no well-known
passwords. Production never seeds: only ``flask seed-demo`` and the
``make run`` path (``SEED_DEMO=true flask init-db``) call :func:`seed_demo`.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from backend import audit
from backend.auth.passwords import hash_password
from backend.extensions import db
from backend.models.accounts import Clinic, User

DEMO_CLINIC_NAME = "Demo clinic (not real patients)"
DEMO_EMAIL_DOMAIN = "demo.skintrack.example"
CREDENTIALS_FILE_NAME = "demo-credentials.txt"


@dataclass(frozen=True)
class DemoAccount:
    """A demo sign-in: role, email and (plain, demo-only) password."""

    role: str
    email: str
    password: str


def database_is_empty() -> bool:
    """True when no clinic exists yet (a fresh database)."""
    return db.session.scalar(select(func.count()).select_from(Clinic)) == 0


def _demo_password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


def _add_user(clinic: Clinic, role: str, name: str) -> tuple[User, DemoAccount]:
    account = DemoAccount(role, f"{role}@{DEMO_EMAIL_DOMAIN}", _demo_password())
    user = User(id=uuid.uuid4(), email=account.email, role=role, clinic_id=clinic.id,
                display_name=name, password_hash=hash_password(account.password))
    db.session.add(user)
    return user, account


#: How long ago the demo course started: every milestone up to 6 months (day 180) lies in the past,
#: so the demo has ratings and a full photo series (``backend.demo.series``).
DEMO_DAYS_AGO = 185


def seed_demo(today: dt.date) -> list[DemoAccount]:
    """Create the demo clinic: an admin, a clinician, a researcher, an enrolled patient with a course
    (baseline :data:`DEMO_DAYS_AGO` days ago) and the records of :mod:`backend.demo.workspace`.

    Parameters
    ----------
    today : datetime.date
        Baseline date of the demo course (its milestones are scheduled from it).

    Returns
    -------
    list of DemoAccount
        The sign-ins created (admin, clinician, patient, researcher). Commits.

    Raises
    ------
    RuntimeError
        If the database is not empty (seeding never touches real data).
    """
    # Imported here: the clinical services import much of the app.
    from backend.demo.workspace import add_demo_records
    from backend.services.courses import create_course
    from backend.services.patients import create_patient, record_consent
    from schemas.clinical import CourseCreateSchema, PatientCreateSchema

    if not database_is_empty():
        raise RuntimeError("database is not empty; the demo clinic is only seeded into a new database")
    clinic = Clinic(id=uuid.uuid4(), name=DEMO_CLINIC_NAME, is_demo=True)
    db.session.add(clinic)
    admin, admin_account = _add_user(clinic, "admin", "Demo Admin")
    clinician, clinician_account = _add_user(clinic, "clinician", "Dr Demo Clinician")
    patient_user, patient_account = _add_user(clinic, "patient", "Demo Patient")
    researcher, researcher_account = _add_user(clinic, "researcher", "Demo Researcher")
    db.session.flush()

    patient = create_patient(clinic.id, PatientCreateSchema().load({
        "full_name": "Demo Patient (fictional)",
        "date_of_birth": "1985-06-15",
        "sex": "female",
        "fitzpatrick_type": 3,
        "email": patient_account.email,
    }))
    patient.user_id = patient_user.id
    for scope in ("clinical_photo", "research"):
        record_consent(patient, scope=scope, action="grant", version="demo-1", recorded_by=clinician)
    course = create_course(patient, CourseCreateSchema().load({
        "indication": "photoaging",
        "product_name": "Demo exosome serum (fictional)",
        "exosome_source": "msc_umbilical_cord",
        "delivery": "topical_after_microneedling",
        "treated_regions": ["forehead", "left_cheek", "right_cheek"],
        "baseline_date": (today - dt.timedelta(days=DEMO_DAYS_AGO)).isoformat(),
    }))
    add_demo_records(clinic, course, clinician, patient_user, admin, researcher, today)
    audit.record("demo.seed", "clinic", clinic.id, actor=None, clinic_id=clinic.id)
    db.session.commit()
    return [admin_account, clinician_account, patient_account, researcher_account]


def write_credentials(instance_path: Path, accounts: list[DemoAccount]) -> Path:
    """Store the demo sign-ins in ``<instance>/demo-credentials.txt`` (mode 0600)."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / CREDENTIALS_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(format_credentials(accounts))
    return path


def format_credentials(accounts: list[DemoAccount]) -> str:
    """Human-readable sign-in instructions for the console."""
    lines = [f"{DEMO_CLINIC_NAME} - demo sign-ins (/dashboard/login, or POST /api/v1/auth/login):"]
    lines += [f"  {a.role:<10} {a.email:<36} password: {a.password}" for a in accounts]
    return "\n".join(lines) + "\n"
