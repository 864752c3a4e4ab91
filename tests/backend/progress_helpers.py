"""Result rows inserted directly through the models, so progress tests know every number exactly."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from flask import Flask

from backend.extensions import db
from backend.models.clinical import TreatmentCourse
from backend.models.photos import Photo, PhotoAnalysis, PhotoMeasurement
from imaging.version import ALGORITHM_VERSION


def milestone_id(course: TreatmentCourse, name: str) -> uuid.UUID:
    """Id of the course's milestone called ``name``."""
    return next(m.id for m in course.milestones if m.name == name)


def add_result(app: Flask, course: TreatmentCourse, milestone: str | None, captured_on: dt.date,
               values: dict[tuple[str, str], float | None], *, usable: bool = True, view: str = "front",
               version: str | None = ALGORITHM_VERSION, face_found: bool = True, out_of_window: bool = False,
               created_at: dt.datetime | None = None, not_comparable: dict[str, list[str]] | None = None,
               redness_reference: str | None = None) -> uuid.UUID:
    """Insert one photo with (optionally) one analysis and its measurements; returns the photo id.

    ``values`` maps (region, measure) to the stored value; ``version=None`` stores no analysis.
    ``not_comparable`` maps a measure to the imaging's reasons why it may not be compared with
    the baseline (stored as the analysis summary's ``comparability``); ``redness_reference`` is
    stored as the summary's region redness is a contrast against.
    """
    with app.app_context():
        photo_id = uuid.uuid4()
        at = dt.datetime.combine(captured_on, dt.time(10, 0), tzinfo=dt.timezone.utc)
        photo = Photo(
            id=photo_id, patient_id=course.patient_id, course_id=course.id,
            milestone_id=milestone_id(course, milestone) if milestone else None, out_of_window=out_of_window,
            view=view, captured_at=at, capture_date=captured_on, capture_time_source="app",
            content_type="image/jpeg", image_format="jpeg", width=1512, height=2016, size_bytes=1000,
            sha256=hashlib.sha256(photo_id.bytes).hexdigest(), storage_key=None,
            quality={"ok": usable, "problems": []}, usable=usable,
        )
        if created_at is not None:
            photo.created_at = created_at
        db.session.add(photo)
        db.session.flush()
        if version is not None:
            comparability = {m: {"comparable": False, "reasons": r, "mdc95": None} for m, r in (not_comparable or {}).items()}
            analysis = PhotoAnalysis(photo_id=photo_id, algorithm_version=version, face_found=face_found,
                                     summary={"comparability": comparability, "redness_reference": redness_reference})
            analysis.measurements = [PhotoMeasurement(region=r, measure=m, value=v) for (r, m), v in values.items()]
            db.session.add(analysis)
        db.session.commit()
        return photo_id


def supersede(app: Flask, older: uuid.UUID, newer: uuid.UUID) -> None:
    """Mark ``older`` as replaced by the retake ``newer``."""
    with app.app_context():
        db.session.get(Photo, older).superseded_by_id = newer
        db.session.commit()


def add_overlay(app: Flask, photo_id: uuid.UUID, name: str, png: bytes) -> str:
    """Store an overlay PNG for the photo's analysis (like the analysis job does); returns its key."""
    from sqlalchemy import select

    from backend.models.photos import PhotoOverlay
    from backend.storage import current_storage

    with app.app_context():
        photo = db.session.get(Photo, photo_id)
        analysis = db.session.scalars(select(PhotoAnalysis).where(PhotoAnalysis.photo_id == photo_id)).first()
        stored = current_storage().put(f"{photo.prefix}analysis/test/{name}.png", png, "image/png")
        db.session.add(PhotoOverlay(analysis_id=analysis.id, name=name, storage_key=stored.key, size_bytes=stored.size))
        db.session.commit()
        return stored.key


def write_mdc_table(path, mdc95: dict[tuple[str, str], float], *, version: str = ALGORITHM_VERSION) -> str:
    """Write a reliability table with the given MDC95 per (region, measure); return its path.

    Region ``all_skin`` goes under ``measures``, every other region under ``regions``, as
    ``bench/reliability.py --write`` lays the published table out (ICC 0.9, band "good").
    """
    import json

    table: dict[str, Any] = {"algorithm_version": version, "measures": {}, "regions": {}}
    for (region, measure), value in mdc95.items():
        section = table["measures"] if region == "all_skin" else table["regions"].setdefault(region, {})
        section[measure] = {"mdc95": value, "icc": 0.9, "band": "good"}
    path.write_text(json.dumps(table))
    return str(path)
