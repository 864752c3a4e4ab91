"""Repeat-capture pairs inserted through the models (values known exactly), for the repeatability tests."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from backend.extensions import db
from backend.models.clinical import TreatmentCourse
from backend.models.photos import Photo, PhotoAnalysis, PhotoMeasurement
from imaging.version import ALGORITHM_VERSION
from tests.backend.progress_helpers import milestone_id


def _photo(course: TreatmentCourse, at: dt.datetime, value: float, repeat_of: uuid.UUID | None = None) -> Photo:
    photo_id = uuid.uuid4()
    photo = Photo(
        id=photo_id, patient_id=course.patient_id, course_id=course.id,
        milestone_id=milestone_id(course, "baseline"), view="front", captured_at=at, capture_date=at.date(),
        capture_time_source="app", content_type="image/jpeg", image_format="jpeg", width=10, height=10,
        size_bytes=1, sha256=hashlib.sha256(photo_id.bytes).hexdigest(), quality={"ok": True, "problems": []},
        usable=True, repeat_of_id=repeat_of,
    )
    analysis = PhotoAnalysis(photo_id=photo_id, algorithm_version=ALGORITHM_VERSION, face_found=True)
    analysis.measurements = [PhotoMeasurement(region="all_skin", measure="redness", value=value)]
    db.session.add(photo)
    db.session.flush()
    db.session.add(analysis)
    return photo


def add_pairs(app, course: TreatmentCourse, pairs: list[tuple[float, float]]) -> None:
    """Photos and their repeat captures (redness over all skin) in ``course``."""
    with app.app_context():
        at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
        for first, repeat in pairs:
            original = _photo(course, at, first)
            _photo(course, at + dt.timedelta(minutes=2), repeat, repeat_of=original.id)
        db.session.commit()


def tight(n: int, start: float = 20.0) -> list[tuple[float, float]]:
    """``n`` pairs spread over subjects (1 unit apart) that agree within +/- 0.1."""
    return [(start + i, start + i + (0.1 if i % 2 else -0.1)) for i in range(n)]


def noisy(n: int) -> list[tuple[float, float]]:
    """``n`` pairs whose repeat is unrelated to the first value (ICC far below 0.5)."""
    return [(20.0 + i % 3, 20.0 + (i * 7) % 5) for i in range(n)]
