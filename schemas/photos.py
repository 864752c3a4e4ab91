"""Photo pipeline API schemas (uploads, photos, analysis results, job status) and vocabularies.

The vocabularies here are shared with the database CHECK constraints
(``backend.models.photos``); change them only together with a migration.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from imaging.catalogue import REFERENCE_REGIONS
from schemas.common import CursorArgsSchema

#: Views of the face the app captures.
PHOTO_VIEWS = ("front", "left", "right")
#: Where a photo's capture time came from, most trusted first.
CAPTURE_TIME_SOURCES = ("app", "exif", "upload")
#: Why a photo's bytes were removed.
DELETION_REASONS = ("deleted", "consent_withdrawn")
#: Life cycle of a two-phase upload.
UPLOAD_STATUSES = ("pending", "completed")
#: Media types an upload may declare (the bytes are sniffed again regardless).
UPLOAD_MEDIA_TYPES = ("image/jpeg", "image/png", "image/heic", "image/heif", "image/webp")
#: Media types the direct upload accepts as its body.
DIRECT_UPLOAD_MEDIA_TYPES = UPLOAD_MEDIA_TYPES + ("application/octet-stream",)
#: Job states as the API shows them.
JOB_STATUSES = ("queued", "running", "done", "failed")
#: Longest device description the app may send.
MAX_DEVICE_LENGTH = 64
#: Camera settings the app may report with a photo (names of the W3C MediaTrackSettings the
#: browser reports, plus the capture size); anything else is refused, so no identifier
#: (``deviceId``, ``groupId``) can be stored.
CAPTURE_CONDITION_KEYS = (
    "width", "height", "aspectRatio", "frameRate", "facingMode", "resizeMode",
    "exposureMode", "exposureTime", "exposureCompensation", "iso", "brightness",
    "whiteBalanceMode", "colorTemperature", "focusMode", "focusDistance", "zoom", "torch",
    "exposureLocked", "whiteBalanceLocked",
)


class CaptureConditionsField(fields.Field):
    """Camera settings reported by the app: an object (JSON body) or its JSON text (query).

    Keys from :data:`CAPTURE_CONDITION_KEYS`; values are finite numbers, booleans or short
    strings.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        import json
        import math

        if isinstance(value, str):
            if len(value) > 2000:
                raise ma.ValidationError("Too long.")
            try:
                value = json.loads(value)
            except ValueError:
                raise ma.ValidationError("Not a JSON object.") from None
        if not isinstance(value, dict):
            raise ma.ValidationError("Not an object.")
        unknown = sorted(set(value) - set(CAPTURE_CONDITION_KEYS))
        if unknown:
            raise ma.ValidationError(f"Unknown setting(s): {', '.join(unknown)}.")
        for key, setting in value.items():
            if isinstance(setting, str):
                if len(setting) > 40:
                    raise ma.ValidationError(f"Setting {key!r} is too long.")
            elif isinstance(setting, (int, float)) and not isinstance(setting, bool):
                if not math.isfinite(setting):
                    raise ma.ValidationError(f"Setting {key!r} must be finite.")
            elif not isinstance(setting, bool):
                raise ma.ValidationError(f"Setting {key!r} must be a number, boolean or short text.")
        return dict(value)


def _iso_time() -> fields.String:
    # Job and signed-URL times arrive already formatted (``job_status_dict``, ``PresignedUpload.as_dict``).
    return fields.String(allow_none=True, metadata={"format": "date-time"})


class CaptureMetadataSchema(ma.Schema):
    """What the app knows about a photo besides its bytes."""

    course_id = fields.UUID(required=True, metadata={"description": "Treatment course the photo belongs to."})
    milestone_id = fields.UUID(
        load_default=None,
        metadata={"description": "Milestone the app took the photo for; omit to assign by capture date."},
    )
    captured_at = fields.AwareDateTime(
        load_default=None,
        metadata={"description": "Capture time with UTC offset (ISO 8601); omit to use EXIF, else upload time."},
    )
    view = fields.String(load_default="front", validate=validate.OneOf(PHOTO_VIEWS))
    make_up = fields.Boolean(load_default=None, metadata={"description": "Make-up worn (capture condition)."})
    device = fields.String(
        load_default=None, validate=validate.Length(min=1, max=MAX_DEVICE_LENGTH),
        metadata={"description": "Phone model (never a serial number)."},
    )
    repeat_of_id = fields.UUID(
        load_default=None,
        metadata={"description": "Send a repeat capture: the id of the photo this one repeats (same patient, "
                                 "course, milestone and view, taken at most 30 minutes later, after lowering the "
                                 "phone and framing again). Both are analysed to measure noise; the repeat never "
                                 "counts for the milestone and never supersedes."},
    )
    capture_conditions = CaptureConditionsField(
        load_default=None,
        metadata={"description": "Camera settings the app reported (JSON object; in the query as JSON text), e.g. "
                                 "`{\"exposureMode\": \"manual\", \"whiteBalanceMode\": \"manual\", "
                                 "\"colorTemperature\": 5000}`. Keys: " + ", ".join(CAPTURE_CONDITION_KEYS) + ".",
                  "type": "string"},
    )


class DirectUploadArgsSchema(CaptureMetadataSchema):
    """Query parameters of the direct upload (the body is the image)."""


class UploadCreateSchema(CaptureMetadataSchema):
    """Body of ``POST /patients/{id}/uploads``."""

    size_bytes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),  # 1.5 is not a size
                                metadata={"description": "Exact number of bytes the client will PUT."})
    content_type = fields.String(required=True, validate=validate.OneOf(UPLOAD_MEDIA_TYPES))


class SignedPutSchema(ma.Schema):
    """How to send the bytes: method, URL and the exact headers to use."""

    url = fields.String(required=True)
    method = fields.String(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    expires_at = _iso_time()


class UploadSchema(ma.Schema):
    """A two-phase upload."""

    id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    course_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": list(UPLOAD_STATUSES)})
    declared_size = fields.Integer(required=True)
    declared_content_type = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    photo_id = fields.UUID(allow_none=True)
    put = fields.Nested(SignedPutSchema, allow_none=True,
                        metadata={"description": "Present on creation only: where to PUT the bytes."})


class QualityProblemSchema(ma.Schema):
    """One reason the photo cannot be used (or, as a warning, a measure it cannot give)."""

    code = fields.String(required=True)
    message = fields.String(required=True)
    value = fields.Raw(allow_none=True)
    threshold = fields.Raw(allow_none=True)


class QualitySchema(ma.Schema):
    """Quality-gate outcome."""

    ok = fields.Boolean(required=True)
    problems = fields.List(fields.Nested(QualityProblemSchema), required=True)
    warnings = fields.List(fields.Nested(QualityProblemSchema), dump_default=list, metadata={
        "description": "Failed checks that leave the photo usable, e.g. `smoothing_filter` (a beauty filter "
                       "erased the skin's fine texture: texture is not measured)."})
    texture_comparable = fields.Boolean(dump_default=True, metadata={
        "description": "False when a smoothing filter erased the texture the baseline shows."})


class JobStatusSchema(ma.Schema):
    """State of a background job."""

    id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": list(JOB_STATUSES)})
    attempts = fields.Integer(required=True)
    max_attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True, metadata={"description": "Reason of the last failure."})
    created_at = _iso_time()
    started_at = _iso_time()
    finished_at = _iso_time()
    next_attempt_at = _iso_time()


class MeasurementSchema(ma.Schema):
    """One measure in one region."""

    region = fields.String(required=True, metadata={"description": "`all_skin` or a face region."})
    measure = fields.String(required=True)
    value = fields.Float(allow_none=True)


class AnalysisSchema(ma.Schema):
    """One analysis of a photo by one algorithm version."""

    id = fields.UUID(required=True)
    algorithm_version = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    baseline_photo_id = fields.UUID(allow_none=True)
    face_found = fields.Boolean(required=True)
    quality = fields.Nested(QualitySchema, required=True)
    color_reference = fields.String(attribute="summary.color_reference", allow_none=True)
    redness_reference = fields.String(
        attribute="summary.redness_reference", allow_none=True,
        metadata={"enum": list(REFERENCE_REGIONS),
                  "description": "Region the redness measures are contrasts against (the forehead, or the chin when "
                                 "the baseline's forehead was hidden); null without one (analyses before 2026.12.6)."})
    registration = fields.Dict(attribute="summary.registration", allow_none=True)
    measurements = fields.List(fields.Nested(MeasurementSchema), required=True)
    overlays = fields.List(fields.String(), required=True, metadata={"description": "Overlay names."})


class PhotoSchema(ma.Schema):
    """A photo: where it belongs, its quality, its analysis state and latest results."""

    id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    course_id = fields.UUID(required=True)
    milestone_id = fields.UUID(allow_none=True)
    milestone_name = fields.String(allow_none=True)
    out_of_window = fields.Boolean(required=True)
    view = fields.String(required=True, metadata={"enum": list(PHOTO_VIEWS)})
    captured_at = fields.DateTime(required=True)
    capture_date = fields.Date(required=True)
    capture_time_source = fields.String(required=True, metadata={"enum": list(CAPTURE_TIME_SOURCES)})
    make_up = fields.Boolean(allow_none=True)
    device = fields.String(allow_none=True)
    capture_conditions = fields.Dict(allow_none=True, metadata={"description": "Camera settings the app reported."})
    content_type = fields.String(required=True, metadata={"description": "Sniffed from the bytes."})
    width = fields.Integer(required=True, metadata={"description": "Width of the photo shown upright (EXIF orientation applied), px."})
    height = fields.Integer(required=True, metadata={"description": "Height of the photo shown upright, px."})
    size_bytes = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    quality = fields.Nested(QualitySchema, required=True)
    usable = fields.Boolean(required=True)
    superseded_by_id = fields.UUID(allow_none=True)
    repeat_of_id = fields.UUID(allow_none=True, metadata={"description": "The photo this repeat capture repeats."})
    counts = fields.Boolean(required=True, metadata={
        "description": "This photo gives its milestone's value: the newest usable, in-window photo of its course, "
                       "milestone and view that is not a repeat capture."})
    deleted_at = fields.DateTime(allow_none=True)
    deletion_reason = fields.String(allow_none=True, metadata={"enum": list(DELETION_REASONS)})
    job = fields.Nested(JobStatusSchema, allow_none=True)
    latest_analysis = fields.Nested(AnalysisSchema, allow_none=True)


class PhotoListArgsSchema(CursorArgsSchema):
    """Query arguments of a patient's photo list."""

    course_id = fields.UUID(load_default=None)
    milestone_id = fields.UUID(load_default=None)
    include_deleted = fields.Boolean(load_default=True)


class OverlayNameSchema(ma.Schema):
    """Path argument of an overlay download (documentation)."""

    name = fields.String(validate=validate.Regexp(r"^[a-z_]{1,40}$"))
