"""Helpers of the photo pipeline tests: test photos, consent, uploads through the API.

Photos are synthetic phone photos of ``skimage.data.astronaut()`` (no download), small
(600x800) so the inline analysis stays around two seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from backend.extensions import db
from backend.models.accounts import User
from backend.models.clinical import Patient
from backend.services import patients as patient_service
from imaging.testing import synthetic

#: Size (width, height) of the test photos, px.
TEST_PHOTO_SIZE = (600, 800)
#: EXIF capture time of the default test photo: the baseline window of factory courses.
BASELINE_CAPTURE = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
#: A capture time in the 2_weeks window (day 14 +- 3) of factory courses.
TWO_WEEKS_CAPTURE = dt.datetime(2026, 3, 15, 10, 0, tzinfo=dt.timezone.utc)
#: GPS latitude written by imaging.testing.synthetic into phone JPEGs (degrees, minutes, seconds).
GPS_IFD = 0x8825


@functools.cache
def face_photo() -> synthetic.SyntheticPhoto:
    """The upright test face photo (with a phone camera's edge sharpness: the gate judges blur
    relative to the face, and the plain upscaled astronaut is blurred)."""
    return synthetic.sharp_phone_photo(TEST_PHOTO_SIZE)


@functools.cache
def phone_jpeg(captured_at: dt.datetime | None = BASELINE_CAPTURE, orientation: int | None = 6) -> bytes:
    """A phone JPEG: stored sideways with EXIF orientation, GPS, serial, comments."""
    return synthetic.to_jpeg(face_photo().rgb, orientation=orientation, captured_at=captured_at)


@functools.cache
def phone_png() -> bytes:
    """The face as a PNG (no EXIF: capture time comes from the app or the upload time)."""
    return synthetic.to_png(face_photo().rgb)


@functools.cache
def phone_heic() -> bytes:
    """The face as a HEIC with orientation and private metadata (as iPhones write it)."""
    return synthetic.to_heic(face_photo().rgb)


@functools.cache
def blurred_jpeg() -> bytes:
    """The face blurred beyond the quality gate's sharpness limit."""
    return synthetic.to_jpeg(synthetic.blur(face_photo(), 0.08).rgb, captured_at=BASELINE_CAPTURE)


@functools.cache
def greyscale_jpeg() -> bytes:
    """A greyscale JPEG (refused: skin colour cannot be measured)."""
    buffer = io.BytesIO()
    Image.fromarray(face_photo().rgb).convert("L").save(buffer, format="JPEG")
    return buffer.getvalue()


def grant_photo_consent(app: Flask, patient: Patient, recorder: User) -> None:
    """Record the patient's clinical-photo consent (through clinical's service)."""
    with app.app_context():
        patient_service.record_consent(
            db.session.get(Patient, patient.id), scope="clinical_photo", action="grant", version="v1",
            recorded_by=db.session.get(User, recorder.id),
        )
        db.session.commit()


def upload(client: FlaskClient, headers: dict[str, str], patient_id: Any, data: bytes, *,
           content_type: str = "image/jpeg", **query: Any) -> TestResponse:
    """``POST /patients/{id}/photos`` with the raw bytes as body and metadata as query."""
    params = {name: (str(value).lower() if isinstance(value, bool) else
                     value.isoformat() if isinstance(value, dt.datetime) else str(value))
              for name, value in query.items() if value is not None}
    return client.post(f"/api/v1/patients/{patient_id}/photos", data=data, query_string=params,
                       headers={**headers, "Content-Type": content_type})


def exif_has_gps(data: bytes) -> bool:
    """True when the image's EXIF holds a GPS IFD with any tag."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        return bool(exif.get_ifd(GPS_IFD)) or GPS_IFD in exif
