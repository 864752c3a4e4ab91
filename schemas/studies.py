"""Studies API schemas: study definitions, researcher grants, export requests, cohort statistics."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from schemas.clinical import INDICATIONS
from schemas.photos import PHOTO_VIEWS
from schemas.progress import ALGORITHM_VERSION_PATTERN

EXPORT_STATUSES = ("queued", "running", "ready", "failed")
MAX_K = 100
#: A study's privacy floor until its admin sets one: the smallest k and the largest suppressed share
#: a research request may ask for (requests may ask for more protection, never less).
DEFAULT_MIN_K = 5
DEFAULT_MAX_SUPPRESSION = 0.1


class StudyCreateSchema(ma.Schema):
    """A new study: which courses it covers (indication, baseline dates)."""

    title = fields.String(required=True, validate=validate.Length(1, 200))
    description = fields.String(load_default="", validate=validate.Length(max=4000))
    indication = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(INDICATIONS),
                               metadata={"description": "Only courses of this indication; null: all."})
    starts_on = fields.Date(load_default=None, allow_none=True,
                            metadata={"description": "Earliest course baseline date covered (inclusive)."})
    ends_on = fields.Date(load_default=None, allow_none=True,
                          metadata={"description": "Latest course baseline date covered (inclusive)."})

    @validates_schema
    def dates_ordered(self, data: dict, **kwargs: object) -> None:
        if data.get("starts_on") and data.get("ends_on") and data["ends_on"] < data["starts_on"]:
            raise ma.ValidationError("must not be before starts_on", "ends_on")


class PrivacyFloorSchema(ma.Schema):
    """The study's privacy floor, set by an admin of its owning clinic."""

    min_k = fields.Integer(required=True, validate=validate.Range(1, MAX_K),
                           metadata={"description": "Smallest k-anonymity k a research request may ask for; "
                                     "statistics cells of fewer participants are suppressed."})
    max_suppression = fields.Float(required=True, validate=validate.Range(0.0, 1.0),
                                   metadata={"description": "Largest share of participants a research request "
                                             "may let k-anonymity suppress."})


class StudySchema(ma.Schema):
    """A study definition (no patient data)."""

    id = fields.UUID(dump_only=True)
    title = fields.String()
    description = fields.String()
    indication = fields.String(allow_none=True)
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    owner_clinic_id = fields.UUID()
    clinic_ids = fields.List(fields.UUID(), metadata={"description": "Participating clinics."})
    privacy_floor = fields.Nested(PrivacyFloorSchema, metadata={"description": "Least protection a research "
                                  "request may ask for (default k >= 5, suppression <= 0.1)."})
    created_at = fields.DateTime()


class GrantCreateSchema(ma.Schema):
    """Give a researcher access to a study's exports and statistics."""

    researcher_id = fields.UUID(required=True)


class GrantSchema(ma.Schema):
    researcher_id = fields.UUID(attribute="researcher_user_id")
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class GrantListSchema(ma.Schema):
    items = fields.List(fields.Nested(GrantSchema))


class DeidentificationArgsSchema(ma.Schema):
    """Small-cohort protection and which results to use."""

    k = fields.Integer(load_default=None, validate=validate.Range(1, MAX_K),
                       metadata={"description": "Minimum equivalence-class size over the quasi-identifiers "
                                 "(default and least: the study's min_k; below it: 422 below-privacy-floor)."})
    max_suppression = fields.Float(load_default=None, validate=validate.Range(0.0, 1.0),
                                   metadata={"description": "Share of participants that may be suppressed "
                                             "before a further generalisation step is applied (default and "
                                             "most: the study's max_suppression)."})
    view = fields.String(load_default="front", validate=validate.OneOf(PHOTO_VIEWS))
    algorithm_version = fields.String(load_default=None, validate=validate.Regexp(ALGORITHM_VERSION_PATTERN),
                                      metadata={"description": "Default: the running algorithm version."})


class ExportCreateSchema(DeidentificationArgsSchema):
    parquet = fields.Boolean(load_default=False, metadata={"description": "Add Parquet copies of the tables."})
    region_patches = fields.Boolean(
        load_default=False, metadata={"description": "Add patches/<participant>/<milestone>_<region>.png: forehead "
                                      "and cheek crops (grey outside the skin mask, no eyes, no metadata) for "
                                      "participants whose research_region_patches consent is granted."})


class ExportSchema(ma.Schema):
    """An export package request; download when ``status`` is ``ready``."""

    id = fields.UUID()
    status = fields.String(validate=validate.OneOf(EXPORT_STATUSES))
    options = fields.Dict(keys=fields.String())
    summary = fields.Dict(keys=fields.String(), metadata={"description": "Row counts and the k-anonymity report."})
    size_bytes = fields.Integer(allow_none=True)
    sha256 = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    download_url = fields.String(allow_none=True)


class ChangeSummarySchema(ma.Schema):
    measure = fields.String()
    region = fields.String()
    milestone = fields.String()
    day_offset = fields.Integer()
    n = fields.Integer(allow_none=True)
    mean_change = fields.Float(allow_none=True)
    mean_ci_low = fields.Float(allow_none=True)
    mean_ci_high = fields.Float(allow_none=True)
    median_change = fields.Float(allow_none=True)
    median_ci_low = fields.Float(allow_none=True)
    median_ci_high = fields.Float(allow_none=True)
    wilcoxon_p = fields.Float(allow_none=True)
    share_exceeding_mdc = fields.Float(allow_none=True)
    mdc_sources = fields.String(allow_none=True, metadata={
        "description": "Participants per MDC95 source (clinic, all_clinics, recapture_study), e.g. "
                       "'clinic:3;recapture_study:7'."})
    suppressed = fields.Boolean(metadata={"description": "True: fewer than k participants in this cell, so its "
                                          "numbers are withheld (null)."})


class GaisFrequencySchema(ma.Schema):
    milestone = fields.String()
    rater_role = fields.String()
    gais = fields.Integer()
    count = fields.Integer(allow_none=True)
    share = fields.Float(allow_none=True)
    suppressed = fields.Boolean(metadata={"description": "True: fewer than k participants in this cell, so its "
                                          "numbers are withheld (null)."})


class AdverseEventFrequencySchema(ma.Schema):
    event_type = fields.String()
    severity = fields.String()
    events = fields.Integer(allow_none=True)
    participants = fields.Integer(allow_none=True)
    share_of_participants = fields.Float(allow_none=True)
    suppressed = fields.Boolean(metadata={"description": "True: fewer than k participants in this cell, so its "
                                          "numbers are withheld (null)."})


class CohortStatisticsSchema(ma.Schema):
    """Cohort outcomes of the released (k-anonymous) participants; same numbers as summary.csv."""

    participants = fields.Integer()
    k_anonymity = fields.Dict(keys=fields.String())
    options = fields.Dict(keys=fields.String())
    changes = fields.List(fields.Nested(ChangeSummarySchema))
    split_face = fields.List(fields.Nested(ChangeSummarySchema),
                             metadata={"description": "Paired treated-minus-control change; region "
                                                      "treated_minus_control."})
    gais = fields.List(fields.Nested(GaisFrequencySchema))
    adverse_events = fields.List(fields.Nested(AdverseEventFrequencySchema))
