"""Clinical API schemas and the controlled vocabularies they use.

The vocabularies below are the contract for the API, the database CHECK constraints and
research exports alike; change them only together with a migration.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from imaging.catalogue import REGION_NAMES
from schemas.accounts import password_field
from schemas.common import CursorArgsSchema

# --- Controlled vocabularies -------------------------------------------------------------

SEXES = ("female", "male", "intersex", "unknown")
#: ``research_region_patches``: cheek/forehead crops (no eyes) may go into research exports;
#: it only counts together with ``research``.
CONSENT_SCOPES = ("clinical_photo", "research", "marketing", "research_region_patches")
CONSENT_ACTIONS = ("grant", "withdraw")
INDICATIONS = (
    "photoaging", "redness_rosacea", "pigmentation_melasma", "acne_scars", "hair_loss", "other",
)
EXOSOME_SOURCES = (
    "msc_umbilical_cord", "adipose", "bone_marrow", "platelet", "plant", "other",
)
CONCENTRATION_UNITS = (
    "particles_per_ml", "particles_per_vial", "ug_per_ml", "mg_per_ml", "mg_per_vial", "percent",
)
DELIVERY_METHODS = (
    "topical_after_microneedling", "rf_microneedling", "fractional_laser", "peel", "injection",
    "other",
)
#: Face regions (subject's left/right), as imaging measures them.
FACE_REGIONS = REGION_NAMES
FACE_SIDES = ("left", "right")
COURSE_STATUSES = ("planned", "active", "completed", "discontinued")
#: What completed a milestone: an assessment now, a usable photo once the pipeline exists.
COMPLETION_SOURCES = ("assessment", "photo", "visit")
RATER_ROLES = ("patient", "clinician")
#: Global Aesthetic Improvement Scale, stored as 1..5.
GAIS_LABELS = {
    1: "very much improved",
    2: "much improved",
    3: "improved",
    4: "no change",
    5: "worse",
}
ADVERSE_EVENT_TYPES = (
    "erythema", "swelling", "itching", "pain", "bruising", "infection", "hyperpigmentation",
    "hypopigmentation", "acneiform", "other",
)
SEVERITIES = ("mild", "moderate", "severe")
SCHEDULE_STATUSES = ("due", "overdue", "upcoming", "completed")

#: Milestone limits (days); the service enforces ordering and overlap rules.
MAX_DAY_OFFSET = 1100
MAX_WINDOW_DAYS = 60
MAX_MILESTONES = 24

#: Device settings: a flat object of at most this many numbers or short strings.
MAX_DEVICE_SETTINGS = 40
MAX_SETTING_TEXT = 200
MAX_LOT_LENGTH = 80

EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)


def _one_of(values: tuple[str, ...] | list[str]) -> validate.OneOf:
    return validate.OneOf(values)


def _text(max_length: int, **kwargs: Any) -> fields.String:
    """A free-text field that may be empty, at most ``max_length`` characters."""
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


def _birth_date_in_past(value: dt.date) -> None:
    # The server's UTC date: a birth date "tomorrow" is a typo whatever the time zone.
    if not EARLIEST_BIRTH_DATE <= value <= dt.datetime.now(dt.timezone.utc).date():
        raise ma.ValidationError(f"Must be between {EARLIEST_BIRTH_DATE} and today.")


def _device_settings(value: dict[str, Any]) -> None:
    if len(value) > MAX_DEVICE_SETTINGS:
        raise ma.ValidationError(f"At most {MAX_DEVICE_SETTINGS} settings.")
    for key, setting in value.items():
        if not 1 <= len(key) <= 60:
            raise ma.ValidationError("Setting names must be 1..60 characters.")
        # bool is an int in Python; true/false is not a device parameter value.
        if isinstance(setting, bool) or not isinstance(setting, (int, float, str)):
            raise ma.ValidationError(f"Setting {key!r} must be a number or a string.")
        if isinstance(setting, float) and not math.isfinite(setting):
            raise ma.ValidationError(f"Setting {key!r} must be finite.")
        if isinstance(setting, str) and len(setting) > MAX_SETTING_TEXT:
            raise ma.ValidationError(f"Setting {key!r} is longer than {MAX_SETTING_TEXT} characters.")


def _unique_items(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError("Items must be unique.")


# --- Patients ---------------------------------------------------------------------------

def _patient_fields(required: bool) -> dict[str, fields.Field]:
    """Writable patient fields; ``required`` for creation, all optional for updates."""
    return {
        "full_name": fields.String(
            required=required, validate=validate.Length(min=1, max=200),
            metadata={"description": "Name as used by the clinic (identified data)."},
        ),
        "date_of_birth": fields.Date(required=required, validate=_birth_date_in_past),
        "sex": fields.String(required=required, validate=_one_of(SEXES)),
        "fitzpatrick_type": fields.Integer(
            required=required, strict=True, validate=validate.Range(min=1, max=6),
            metadata={"description": "Fitzpatrick skin phototype I..VI as 1..6."},
        ),
        "email": fields.Email(allow_none=True, validate=validate.Length(max=320)),
        "phone": fields.String(
            allow_none=True,
            validate=validate.Regexp(r"^\+?[0-9 ()-]{5,40}$", error="Not a phone number."),
        ),
    }


PatientCreateSchema = ma.Schema.from_dict(_patient_fields(required=True), name="PatientCreateSchema")
PatientUpdateSchema = ma.Schema.from_dict(_patient_fields(required=False), name="PatientUpdateSchema")


class PatientSchema(ma.Schema):
    """A patient record as returned by the API."""

    id = fields.UUID(dump_only=True)
    study_id = fields.String(
        dump_only=True,
        metadata={"description": "Pseudonymous study id (ST- + 10 base32 characters); random, persistent."},
    )
    clinic_id = fields.UUID(dump_only=True)
    full_name = fields.String()
    date_of_birth = fields.Date()
    sex = fields.String(metadata={"enum": list(SEXES)})
    fitzpatrick_type = fields.Integer()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    enrolled = fields.Function(
        lambda patient: patient.user_id is not None,
        metadata={"description": "Whether the patient has created their login."},
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PatientListArgsSchema(CursorArgsSchema):
    """Query arguments of the patient list: pagination and an optional study id."""

    study_id = fields.String(
        validate=validate.Length(max=16), metadata={"description": "Exact study id to look up."}
    )


# --- Consents ---------------------------------------------------------------------------

class ConsentEventCreateSchema(ma.Schema):
    """Grant or withdraw one consent scope."""

    scope = fields.String(required=True, validate=_one_of(CONSENT_SCOPES))
    action = fields.String(required=True, validate=_one_of(CONSENT_ACTIONS))
    version = fields.String(
        required=True, validate=validate.Length(min=1, max=40),
        metadata={"description": "Version of the consent text shown, e.g. `2026-01`."},
    )


class ConsentEventSchema(ma.Schema):
    """One recorded consent event (history is never rewritten)."""

    id = fields.UUID()
    patient_id = fields.UUID()
    scope = fields.String(metadata={"enum": list(CONSENT_SCOPES)})
    action = fields.String(metadata={"enum": list(CONSENT_ACTIONS)})
    version = fields.String()
    seq = fields.Integer(metadata={"description": "1, 2, ... per patient and scope."})
    recorded_at = fields.DateTime(attribute="created_at")
    recorded_by_user_id = fields.UUID(allow_none=True)


class ConsentScopeStateSchema(ma.Schema):
    """Current state of one scope, derived from its latest event."""

    scope = fields.String(metadata={"enum": list(CONSENT_SCOPES)})
    granted = fields.Boolean()
    version = fields.String(allow_none=True, metadata={"description": "Of the latest event; null if none."})
    since = fields.DateTime(allow_none=True, metadata={"description": "Time of the latest event; null if none."})


class ConsentStateSchema(ma.Schema):
    """Every scope's current state (a scope never granted is not granted)."""

    patient_id = fields.UUID()
    scopes = fields.List(fields.Nested(ConsentScopeStateSchema))


# --- Milestones -------------------------------------------------------------------------

class MilestoneSpecSchema(ma.Schema):
    """One milestone of a schedule: target day after baseline and its window."""

    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=40),
            validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_ -]*$", error="Letters, digits, space, _ and - only."),
        ],
    )
    day_offset = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_DAY_OFFSET),
        metadata={"description": "Days after baseline of the target visit."},
    )
    window_before_days = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_WINDOW_DAYS)
    )
    window_after_days = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_WINDOW_DAYS)
    )


def _milestone_list(required: bool) -> fields.List:
    return fields.List(
        fields.Nested(MilestoneSpecSchema),
        required=required,
        validate=validate.Length(min=1, max=MAX_MILESTONES),
        metadata={"description": "Sorted by day_offset, unique names, non-overlapping windows, "
                                 "none opening before day 0."},
    )


class ScheduleReplaceSchema(ma.Schema):
    """A course's new schedule. Milestones keep their id (and completion) by name."""

    milestones = _milestone_list(required=True)


class MilestoneSchema(ma.Schema):
    """A stored milestone with its calendar dates."""

    id = fields.UUID()
    course_id = fields.UUID()
    name = fields.String()
    day_offset = fields.Integer()
    window_before_days = fields.Integer()
    window_after_days = fields.Integer()
    target_date = fields.Date(attribute="window.target", metadata={"description": "baseline_date + day_offset."})
    window_opens = fields.Date(attribute="window.opens")
    window_closes = fields.Date(attribute="window.closes")
    completed_at = fields.DateTime(allow_none=True)
    completed_via = fields.String(allow_none=True, metadata={"enum": list(COMPLETION_SOURCES)})


class ScheduleItemSchema(ma.Schema):
    """One milestone classified on the schedule's day."""

    course_id = fields.UUID()
    milestone_id = fields.UUID()
    name = fields.String()
    day_offset = fields.Integer()
    target_date = fields.Date()
    window_opens = fields.Date()
    window_closes = fields.Date()
    status = fields.String(metadata={"enum": list(SCHEDULE_STATUSES)})
    completed_at = fields.DateTime(allow_none=True)


class ScheduleSchema(ma.Schema):
    """What is due (window open), overdue (window passed, not completed), upcoming and done."""

    as_of = fields.Date(metadata={"description": "The day the milestones were classified on."})
    due = fields.List(fields.Nested(ScheduleItemSchema))
    overdue = fields.List(fields.Nested(ScheduleItemSchema))
    upcoming = fields.List(fields.Nested(ScheduleItemSchema))
    completed = fields.List(fields.Nested(ScheduleItemSchema))


class ScheduleArgsSchema(ma.Schema):
    """Query arguments of the schedule endpoints."""

    on = fields.Date(
        metadata={"description": "The patient's local date (ISO). Default: today in UTC."}
    )


# --- Treatment courses and sessions ------------------------------------------------------

def _course_fields(required: bool) -> dict[str, fields.Field]:
    """Writable course fields; ``required`` for creation, all optional for updates."""
    return {
        "indication": fields.String(required=required, validate=_one_of(INDICATIONS)),
        "product_name": fields.String(required=required, validate=validate.Length(min=1, max=200)),
        "exosome_source": fields.String(required=required, validate=_one_of(EXOSOME_SOURCES)),
        "concentration_value": fields.Float(
            allow_none=True, allow_nan=False, validate=validate.Range(min=0, min_inclusive=False),
            metadata={"description": "If known; give concentration_unit with it."},
        ),
        "concentration_unit": fields.String(allow_none=True, validate=_one_of(CONCENTRATION_UNITS)),
        "delivery": fields.String(required=required, validate=_one_of(DELIVERY_METHODS)),
        "treated_regions": fields.List(
            fields.String(validate=_one_of(FACE_REGIONS)),
            required=required,
            validate=[validate.Length(min=1), _unique_items],
        ),
        "split_face_treated_side": fields.String(
            allow_none=True, validate=_one_of(FACE_SIDES),
            metadata={"description": "Split-face design: the treated side; the other is control. "
                                     "Null for whole-face treatment."},
        ),
        "baseline_date": fields.Date(required=required, metadata={"description": "Day 0 of the schedule."}),
        "status": fields.String(validate=_one_of(COURSE_STATUSES)),
        "notes": _text(5000),
    }


CourseCreateSchema = ma.Schema.from_dict(
    {**_course_fields(required=True), "milestones": _milestone_list(required=False)},
    name="CourseCreateSchema",
)
CourseUpdateSchema = ma.Schema.from_dict(_course_fields(required=False), name="CourseUpdateSchema")


class CourseSchema(ma.Schema):
    """A treatment course with its milestone schedule."""

    id = fields.UUID()
    patient_id = fields.UUID()
    indication = fields.String(metadata={"enum": list(INDICATIONS)})
    product_name = fields.String()
    exosome_source = fields.String(metadata={"enum": list(EXOSOME_SOURCES)})
    concentration_value = fields.Float(allow_none=True)
    concentration_unit = fields.String(allow_none=True, metadata={"enum": list(CONCENTRATION_UNITS)})
    delivery = fields.String(metadata={"enum": list(DELIVERY_METHODS)})
    treated_regions = fields.List(fields.String(metadata={"enum": list(FACE_REGIONS)}))
    split_face_treated_side = fields.String(allow_none=True)
    split_face_control_side = fields.String(allow_none=True)
    baseline_date = fields.Date()
    status = fields.String(metadata={"enum": list(COURSE_STATUSES)})
    notes = fields.String()
    milestones = fields.List(fields.Nested(MilestoneSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SessionCreateSchema(ma.Schema):
    """A treatment session to record."""

    performed_on = fields.Date(required=True)
    device_settings = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        validate=_device_settings,
        metadata={"description": "Flat object of numbers or strings, e.g. "
                                 "`{\"needle_depth_mm\": 1.5, \"passes\": 3, \"device\": \"Dermapen 4\"}`."},
    )
    notes = _text(5000, load_default="")
    product_manufacturer = fields.String(allow_none=True, validate=validate.Length(min=1, max=200),
                                         metadata={"description": "Manufacturer of the product applied."})
    product_lot = fields.String(allow_none=True, validate=validate.Length(min=1, max=MAX_LOT_LENGTH),
                                metadata={"description": "Lot (batch) number printed on the vial."})
    product_expiry = fields.Date(allow_none=True, metadata={"description": "Expiry date printed on the vial."})
    product_volume_ml = fields.Float(allow_none=True, validate=validate.Range(min=0, max=100, min_inclusive=False),
                                     metadata={"description": "Volume applied, millilitres."})
    product_particles_per_vial = fields.Float(
        allow_none=True, validate=validate.Range(min=0, max=1e16, min_inclusive=False),
        metadata={"description": "Particle count per vial as stated by the manufacturer."})

    @ma.validates_schema
    def _expiry_not_before_use(self, data: dict[str, Any], **kwargs: Any) -> None:
        expiry, used = data.get("product_expiry"), data.get("performed_on")
        if expiry is not None and used is not None and expiry < used:
            raise ma.ValidationError("The product had expired on the session date.", "product_expiry")


class SessionSchema(ma.Schema):
    """A recorded treatment session."""

    id = fields.UUID()
    course_id = fields.UUID()
    performed_on = fields.Date()
    device_settings = fields.Dict(keys=fields.String())
    notes = fields.String()
    product_manufacturer = fields.String(allow_none=True)
    product_lot = fields.String(allow_none=True)
    product_expiry = fields.Date(allow_none=True)
    product_volume_ml = fields.Float(allow_none=True)
    product_particles_per_vial = fields.Float(allow_none=True)
    created_at = fields.DateTime()



# --- Assessments and adverse events ------------------------------------------------------

_GAIS_DESCRIPTION = "GAIS: " + ", ".join(f"{score} = {label}" for score, label in GAIS_LABELS.items()) + "."


class AssessmentCreateSchema(ma.Schema):
    """A rating at a milestone. The rater role is the caller's: patient or clinician."""

    milestone_id = fields.UUID(required=True)
    gais = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=5),
        metadata={"description": _GAIS_DESCRIPTION},
    )
    satisfaction = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=0, max=10),
        metadata={"description": "Patient satisfaction 0..10 (patients only)."},
    )
    notes = _text(5000, load_default="")


class AssessmentSchema(ma.Schema):
    """A stored rating."""

    id = fields.UUID()
    course_id = fields.UUID()
    milestone_id = fields.UUID()
    rater_role = fields.String(metadata={"enum": list(RATER_ROLES)})
    gais = fields.Integer(metadata={"description": _GAIS_DESCRIPTION})
    gais_label = fields.Function(lambda assessment: GAIS_LABELS[assessment.gais])
    satisfaction = fields.Integer(allow_none=True)
    notes = fields.String()
    created_at = fields.DateTime()


class AdverseEventCreateSchema(ma.Schema):
    """An adverse event to report."""

    event_type = fields.String(required=True, validate=_one_of(ADVERSE_EVENT_TYPES))
    severity = fields.String(required=True, validate=_one_of(SEVERITIES))
    onset_date = fields.Date(required=True)
    resolution_date = fields.Date(allow_none=True, metadata={"description": "Null or absent: ongoing."})
    milestone_id = fields.UUID(allow_none=True, metadata={"description": "Milestone it was reported at."})
    notes = _text(5000, load_default="")

    @ma.validates_schema
    def _resolution_after_onset(self, data: dict[str, Any], **_: Any) -> None:
        onset, resolution = data.get("onset_date"), data.get("resolution_date")
        if resolution is not None and resolution < onset:
            raise ma.ValidationError("Must not be before onset_date.", "resolution_date")


class AdverseEventUpdateSchema(ma.Schema):
    """Change severity, record resolution (or reopen with null), amend notes."""

    severity = fields.String(validate=_one_of(SEVERITIES))
    resolution_date = fields.Date(allow_none=True)
    notes = _text(5000)


class AdverseEventSchema(ma.Schema):
    """A stored adverse event."""

    id = fields.UUID()
    course_id = fields.UUID()
    milestone_id = fields.UUID(allow_none=True)
    event_type = fields.String(metadata={"enum": list(ADVERSE_EVENT_TYPES)})
    severity = fields.String(metadata={"enum": list(SEVERITIES)})
    onset_date = fields.Date()
    resolution_date = fields.Date(allow_none=True)
    ongoing = fields.Function(lambda event: event.resolution_date is None)
    reporter_role = fields.String(metadata={"enum": list(RATER_ROLES)})
    notes = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


# --- Enrolment --------------------------------------------------------------------------

class InvitationCreateSchema(ma.Schema):
    """Options of a new invitation (the body may be `{}`)."""

    expires_in_days = fields.Integer(
        load_default=7, strict=True, validate=validate.Range(min=1, max=30)
    )


class InvitationSchema(ma.Schema):
    """A new invitation. `code`, `link_token` (and so `link`, `qr_svg`) are shown once and only
    stored hashed."""

    id = fields.UUID()
    patient_id = fields.UUID()
    code = fields.String(metadata={"description": "Human-typable one-time code, e.g. `K7QM-2XHD-9RPA`."})
    link_token = fields.String(metadata={"description": "Opaque token for an enrolment link."})
    link = fields.String(metadata={"description": "The patient app's address with the link token (in the "
                                                  "fragment, never sent to a server): open it on the phone."})
    qr_svg = fields.String(metadata={"description": "SVG document: a QR code of `link`, to scan with the phone."})
    expires_at = fields.DateTime()


class EnrolSchema(ma.Schema):
    """Redeem an invitation: exactly one of `code` or `token`, plus the new login."""

    code = fields.String(validate=validate.Length(min=1, max=40))
    token = fields.String(validate=validate.Length(min=1, max=200))
    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = password_field()

    @ma.validates_schema
    def _exactly_one_secret(self, data: dict[str, Any], **_: Any) -> None:
        if ("code" in data) == ("token" in data):
            raise ma.ValidationError("Give exactly one of code or token.", "code")
