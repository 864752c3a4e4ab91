"""Time to build the demo clinic's FHIR Bundle and its REDCap export files.

Usage::

    .venv/bin/python bench/interop.py [--rounds 20]

Builds a throw-away SQLite database (migrated like production), seeds the demo clinic of
``make run`` (one patient, one course), adds an analysed photo with every catalogue measure in
every region at each of the course's milestones, a GAIS rating and an adverse event, and a study
with the demo clinic (privacy floor lowered to k = 1: one participant). Then times, in-process:

- ``fhir.patient_bundle``: the patient's Bundle (as served);
- validating that Bundle with fhir.resources (what the tests do; the endpoint does not);
- the REDCap files (dictionary, longitudinal records, designation) from the de-identified tables;
- the whole study export package (tables, statistics, codebook, REDCap, manifest, zip).

Prints the median and the maximum of each in milliseconds and the Bundle's size. The machine's
other load is not controlled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(root: Path):
    """App, demo patient id and study id of a fresh benchmark database."""
    from sqlalchemy import select

    from backend import create_app
    from backend.demo.seed import seed_demo
    from backend.extensions import db
    from backend.migrations import upgrade
    from backend.models.accounts import User
    from backend.models.clinical import Assessment, Patient, TreatmentCourse
    from backend.models.studies import Study
    from backend.services import studies
    from imaging.catalogue import MEASURES, REGION_BY_KEY
    from tests import factories
    from tests.backend.progress_helpers import add_result

    url = f"sqlite:///{root / 'bench.sqlite3'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "inline",
                      "SECRET_KEY": "bench-only-secret-key-0123456789abcdef", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        seed_demo(dt.date(2026, 1, 5))
        patient = db.session.scalars(select(Patient)).one()
        course = db.session.scalars(select(TreatmentCourse)).one()
        clinician = db.session.scalars(select(User).where(User.role == "clinician")).one()
        admin = db.session.scalars(select(User).where(User.role == "admin")).one()
        milestones = [(m.name, m.day_offset, m.id) for m in course.milestones]
        db.session.expunge_all()
    for index, (name, offset, _) in enumerate(milestones):
        values = {(region, m.key): 30.0 - index + 0.1 * r for r, region in enumerate(REGION_BY_KEY)
                  for m in MEASURES if m.ucum is not None}
        add_result(app, course, name, course.baseline_date + dt.timedelta(days=offset), values)
    factories.make_adverse_event(app, course, clinician, onset_date=course.baseline_date + dt.timedelta(days=3))
    with app.app_context():
        db.session.add(Assessment(course_id=course.id, milestone_id=milestones[-1][2], rater_role="clinician",
                                  rater_user_id=clinician.id, gais=2))
        study = studies.create_study(db.session.get(User, admin.id), {"title": "Demo study"})
        studies.set_privacy_floor(study, 1, 0.1)
        db.session.commit()
        study_id = db.session.scalars(select(Study.id)).one()
    return app, patient.id, study_id


def timed(function, rounds: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="repetitions of each build (default 20)")
    args = parser.parse_args()
    from fhir.resources.R4B.bundle import Bundle

    from backend.extensions import db
    from backend.models.clinical import Patient
    from backend.models.studies import Study
    from backend.services import fhir
    from backend.services.export.inclusion import included_participants
    from backend.services.export.options import ExportOptions
    from backend.services.export.package import build_package, redcap_files
    from backend.services.export.tables import build_tables

    with tempfile.TemporaryDirectory() as tmp:
        app, patient_id, study_id = build(Path(tmp))
        options = ExportOptions(k=1)
        with app.app_context():
            patient = db.session.get(Patient, patient_id)
            study = db.session.get(Study, study_id)
            fhir_ms, bundle = timed(lambda: fhir.patient_bundle(patient), args.rounds)
            validate_ms, _ = timed(lambda: Bundle.model_validate(bundle), max(1, args.rounds // 4))
            redcap_ms, files = timed(lambda: redcap_files(build_tables(included_participants(study), options).rows),
                                     args.rounds)
            package_ms, _ = timed(lambda: build_package(study, options), args.rounds)
    size = len(json.dumps(bundle))
    resources = len(bundle["entry"])
    records = files["redcap/records.csv"].count(b"\n") - 1
    print(f"FHIR bundle ({resources} resources, {size} bytes): median {statistics.median(fhir_ms):.1f} ms, "
          f"max {max(fhir_ms):.1f} ms")
    print(f"validating it with fhir.resources (tests only): median {statistics.median(validate_ms):.1f} ms")
    print(f"REDCap files ({records} record rows, tables included): median {statistics.median(redcap_ms):.1f} ms, "
          f"max {max(redcap_ms):.1f} ms")
    print(f"whole export package: median {statistics.median(package_ms):.1f} ms, max {max(package_ms):.1f} ms")


if __name__ == "__main__":
    main()
