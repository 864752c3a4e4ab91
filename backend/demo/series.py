"""Demo photo series: the demo patient's baseline-to-6-month photos with known, gradual improvement.

Made from the astronaut portrait (``skimage.data.astronaut()``, public domain, via
``imaging.testing.synthetic``) with synthetic skin changes (``imaging.testing.skin_edits`` through
``imaging.testing.recapture_study.edited_photo``): haemoglobin, melanin spots and fine lines decrease
milestone by milestone (:data:`DEMO_CHANGES`). Every photo goes through the real pipeline:
``ingest_photo`` (sanitise, quality gate, milestone assignment, storage) and the
``analyse_photo`` job, run here at seed time so a newcomer sees charts at once.

The demo course's baseline date is moved back by :data:`DEMO_DAYS_AGO` days so that every
milestone up to 6 months lies in the past, and each photo is captured on its milestone's
target date.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import select

from backend.demo.seed import DEMO_DAYS_AGO
from backend.extensions import db

log = logging.getLogger(__name__)

#: Known synthetic state of the skin per milestone: (haemoglobin OD, melanin spots, fine lines).
#: The baseline stays below 0.12 OD with many spots and lines together: heavier edits make the
#: quality gate's face checks fail (measured: head_turned / uneven_lighting), and the demo needs
#: a usable baseline.
DEMO_CHANGES = {
    "baseline": (0.10, 45, 30),
    "2_weeks": (0.085, 38, 25),
    "1_month": (0.07, 30, 20),
    "3_months": (0.045, 18, 12),
    "6_months": (0.02, 6, 4),
}
#: JPEG quality of the demo photos (a phone's usual setting).
DEMO_JPEG_QUALITY = 90


def demo_photo(haemoglobin: float, spots: int, lines: int, captured_at: dt.datetime | None = None) -> bytes:
    """JPEG bytes of the demo face with these amounts of synthetic change.

    Parameters
    ----------
    haemoglobin : float
        Added haemoglobin density (log10 OD), >= 0.
    spots, lines : int
        Number of melanin spots and fine lines, >= 0.
    captured_at : datetime, optional
        Written as EXIF DateTimeOriginal.

    Returns
    -------
    bytes
        A 1512 x 2016 portrait JPEG (EXIF orientation 6, no private metadata).
    """
    from imaging.testing import synthetic
    from imaging.testing.recapture_study import SkinChange, edited_photo

    photo = edited_photo(SkinChange(haemoglobin=haemoglobin, spots=spots, lines=lines))
    return synthetic.to_jpeg(photo.rgb, quality=DEMO_JPEG_QUALITY, with_private_metadata=False,
                             captured_at=captured_at)


def add_demo_series(today: dt.date) -> list[uuid.UUID]:
    """Upload and analyse the demo patient's photo series (after ``backend.demo.seed.seed_demo``).

    Parameters
    ----------
    today : datetime.date
        The seed date; the course baseline becomes ``today - DEMO_DAYS_AGO``.

    Returns
    -------
    list of UUID
        The photo ids, baseline first. Commits.
    """
    from flask import current_app

    from backend.jobs.runner import make_worker_id, runner_for_app
    from backend.models.accounts import Clinic, User
    from backend.models.clinical import Patient, TreatmentCourse
    from backend.services.photos import CaptureMetadata, ingest_photo

    clinic = db.session.scalars(select(Clinic).where(Clinic.is_demo.is_(True))).one()
    patient = db.session.scalars(select(Patient).where(Patient.clinic_id == clinic.id, Patient.user_id.is_not(None))
                                 ).one()
    clinician = db.session.scalars(select(User).where(User.clinic_id == clinic.id, User.role == "clinician")).first()
    course = db.session.scalars(select(TreatmentCourse).where(TreatmentCourse.patient_id == patient.id)).one()
    course.baseline_date = today - dt.timedelta(days=DEMO_DAYS_AGO)
    db.session.flush()

    photo_ids, job_ids = [], []
    for milestone in sorted(course.milestones, key=lambda m: m.day_offset):
        if milestone.name not in DEMO_CHANGES:
            continue
        captured = dt.datetime.combine(milestone.window.target, dt.time(9, 30), tzinfo=dt.timezone.utc)
        metadata = CaptureMetadata(course_id=course.id, milestone_id=milestone.id, captured_at=captured,
                                   view="front", make_up=False, device="demo series (synthetic)")
        photo = ingest_photo(patient, metadata, demo_photo(*DEMO_CHANGES[milestone.name], captured), clinician)
        photo_ids.append(photo.id)
        job_ids.append(photo.analysis_job_id)
    db.session.commit()

    app = current_app._get_current_object()
    runner = runner_for_app(app, make_worker_id("demo-seed"))
    with app.app_context():  # a fresh session, like the inline job backend
        for job_id in job_ids:  # baseline first: follow-ups register to its stored reference
            runner.run_one(job_id)
    log.info("demo series: %d photos uploaded and analysed", len(photo_ids))
    return photo_ids


#: How the demo's repeat captures differ from the first photo: the patient lowered the phone and
#: framed again a few minutes later (a little brighter, a little farther away, some sensor noise; a
#: rolled repeat fails the gate's pose check against the baseline).
DEMO_REPEAT_DELAY = dt.timedelta(minutes=3)


def add_demo_repeat_pairs(photo_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """A repeat capture of each demo photo, through the real pipeline, then the repeatability job.

    Parameters
    ----------
    photo_ids : list of UUID
        The demo series (:func:`add_demo_series`), analysed.

    Returns
    -------
    list of UUID
        The repeat photos' ids. Commits. With 5 pairs the demo clinic's page and Bland-Altman plots
        show real numbers, and its results still say ``recapture_study`` (fewer than 20 pairs).
    """
    from flask import current_app

    from backend.jobs.runner import make_worker_id, runner_for_app
    from backend.models.accounts import User
    from backend.models.clinical import Patient
    from backend.models.photos import Photo
    from backend.services import repeatability
    from backend.services.photos import CaptureMetadata, ingest_photo
    from imaging.testing.recapture_study import Capture, SkinChange, edited_photo, recapture

    condition = Capture("demo_repeat", exposure=1.08, scale=0.95, noise_sigma=1.0, jpeg_quality=DEMO_JPEG_QUALITY)
    repeat_ids, job_ids = [], []
    for photo_id in photo_ids:
        first = db.session.get(Photo, photo_id)
        if first is None or first.milestone is None or first.milestone.name not in DEMO_CHANGES:
            continue
        patient = db.session.get(Patient, first.patient_id)
        clinician = db.session.scalars(select(User).where(User.clinic_id == patient.clinic_id,
                                                          User.role == "clinician")).first()
        data = recapture(edited_photo(SkinChange(*DEMO_CHANGES[first.milestone.name])), condition,
                         seed=len(repeat_ids))
        metadata = CaptureMetadata(course_id=first.course_id, milestone_id=first.milestone_id,
                                   captured_at=first.captured_at + DEMO_REPEAT_DELAY, view=first.view,
                                   make_up=False, device="demo series (synthetic)", repeat_of_id=first.id)
        repeat = ingest_photo(patient, metadata, data, clinician)
        repeat_ids.append(repeat.id)
        job_ids.append(repeat.analysis_job_id)
    db.session.commit()

    app = current_app._get_current_object()
    runner = runner_for_app(app, make_worker_id("demo-seed"))
    with app.app_context():
        for job_id in job_ids:
            runner.run_one(job_id)
        repeatability.recompute()  # whichever job backend runs the enqueued recomputation too
        db.session.commit()
    log.info("demo series: %d repeat captures uploaded and analysed", len(repeat_ids))
    return repeat_ids
