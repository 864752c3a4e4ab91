"""Progress API schemas: series per measure and region, split-face differences, charts, patient summary."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from imaging import catalogue
from imaging.catalogue import NOT_COMPARABLE, REFERENCE_REGIONS
from schemas.photos import PHOTO_VIEWS

#: Regions of a series, all skin first (``all_skin`` = every measured skin pixel).
SERIES_REGIONS = (catalogue.ALL_SKIN.key, *catalogue.REGION_NAMES)
#: Headline measures (charts, dashboard, patient summary); each rises when skin gets worse.
HEADLINE_MEASURES = catalogue.HEADLINE_MEASURES
#: Measures a series may be asked for: those with a published reliability (MDC95), headlines first.
SERIES_MEASURES = catalogue.STUDIED_MEASURES
CHART_FORMATS = ("png", "svg")
#: Where an MDC95 comes from: the clinic's own repeat captures, all clinics' pooled, or the
#: published recapture study (backend.services.repeatability states the rule).
MDC_SOURCES = ("clinic", "all_clinics", "recapture_study")
#: Why a photo is left out of a series.
EXCLUSION_REASONS = ("unusable", "out_of_window", "repeat", "not_analysed", "no_face")
ALGORITHM_VERSION_PATTERN = r"^[0-9]{4}\.[0-9]{1,2}\.[0-9]{1,4}([+._-][A-Za-z0-9._-]{1,16})?$"


class ProgressArgsSchema(ma.Schema):
    """Which photos and results a series uses."""

    view = fields.String(load_default="front", validate=validate.OneOf(PHOTO_VIEWS))
    algorithm_version = fields.String(
        load_default=None, validate=validate.Regexp(ALGORITHM_VERSION_PATTERN),
        metadata={"description": "Default: the running algorithm version."},
    )
    measure = fields.List(
        fields.String(validate=validate.OneOf(SERIES_MEASURES)), load_default=None,
        metadata={"description": "Measures to include (repeat the parameter); default all."},
    )
    region = fields.List(
        fields.String(validate=validate.OneOf(SERIES_REGIONS)), load_default=None,
        metadata={"description": "Regions to include (repeat the parameter); default all."},
    )


class ChartArgsSchema(ma.Schema):
    """One chart: region, view and algorithm version."""

    region = fields.String(load_default="all_skin", validate=validate.OneOf(SERIES_REGIONS))
    view = fields.String(load_default="front", validate=validate.OneOf(PHOTO_VIEWS))
    algorithm_version = fields.String(load_default=None, validate=validate.Regexp(ALGORITHM_VERSION_PATTERN))


class MyChartArgsSchema(ChartArgsSchema):
    """A patient's own chart; the course defaults to their newest course."""

    course_id = fields.UUID(load_default=None)


class SeriesPointSchema(ma.Schema):
    milestone_id = fields.UUID(required=True)
    milestone_name = fields.String(required=True)
    day_offset = fields.Integer(required=True, metadata={"description": "Scheduled day of the milestone."})
    days_since_baseline = fields.Integer(
        required=True, metadata={"description": "Capture date minus the baseline photo's capture date, days."})
    photo_id = fields.UUID(required=True)
    analysis_id = fields.UUID(required=True)
    captured_on = fields.Date(required=True)
    value = fields.Float(allow_none=True, required=True)
    change = fields.Float(allow_none=True, required=True, metadata={"description": "Value minus baseline value."})
    change_percent = fields.Float(allow_none=True, required=True,
                                  metadata={"description": "100 * change / |baseline value|."})
    exceeds_mdc = fields.Boolean(allow_none=True, required=True,
                                 metadata={"description": "|change| > MDC95; null when unknown."})


class MeasureSeriesSchema(ma.Schema):
    measure = fields.String(required=True)
    region = fields.String(required=True)
    mdc95 = fields.Float(allow_none=True, required=True,
                         metadata={"description": "Minimal detectable change (95 %), the measure's units."})
    baseline_value = fields.Float(allow_none=True, required=True)
    mdc_source = fields.String(allow_none=True, required=True, metadata={
        "enum": list(MDC_SOURCES),
        "description": "Where mdc95 comes from: the clinic's own repeat captures (at least 20 pairs and the ICC's "
                       "lower 95 % bound >= 0.5), else all clinics pooled (same condition), else the recapture "
                       "study; null when there is no MDC."})
    mdc_n_pairs = fields.Integer(required=True, metadata={
        "description": "Repeat pairs behind mdc95 (0 for the recapture study)."})
    points = fields.List(fields.Nested(SeriesPointSchema), required=True)


class SplitFaceDifferenceSchema(ma.Schema):
    measure = fields.String(required=True)
    milestone_id = fields.UUID(required=True)
    milestone_name = fields.String(required=True)
    days_since_baseline = fields.Integer(required=True)
    treated_region = fields.String(required=True)
    control_region = fields.String(required=True)
    treated_value = fields.Float(allow_none=True, required=True)
    control_value = fields.Float(allow_none=True, required=True)
    difference = fields.Float(allow_none=True, required=True, metadata={"description": "Treated minus control."})
    change_from_baseline = fields.Float(allow_none=True, required=True,
                                        metadata={"description": "Difference minus the baseline difference."})


class ExcludedPhotoSchema(ma.Schema):
    photo_id = fields.UUID(required=True)
    milestone_id = fields.UUID(allow_none=True, required=True)
    milestone_name = fields.String(allow_none=True, required=True)
    captured_on = fields.Date(required=True)
    reason = fields.String(required=True, metadata={"enum": list(EXCLUSION_REASONS)})


class LeftOutValueSchema(ma.Schema):
    photo_id = fields.UUID(required=True)
    milestone_name = fields.String(required=True)
    measure = fields.String(required=True)
    reasons = fields.List(fields.String(metadata={"enum": sorted(NOT_COMPARABLE)}), required=True,
                          metadata={"description": "Why the value may not be compared with the baseline's."})


class CourseProgressSchema(ma.Schema):
    course_id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    view = fields.String(required=True)
    algorithm_version = fields.String(required=True)
    baseline_date = fields.Date(required=True)
    split_face_treated_side = fields.String(allow_none=True, required=True)
    series = fields.List(fields.Nested(MeasureSeriesSchema), required=True)
    split_face = fields.List(fields.Nested(SplitFaceDifferenceSchema), required=True)
    excluded = fields.List(fields.Nested(ExcludedPhotoSchema), required=True,
                           metadata={"description": "Photos left out of the series, with the reason."})
    left_out = fields.List(fields.Nested(LeftOutValueSchema), required=True,
                           metadata={"description": "Measures of charted photos left out as not comparable with "
                                                    "the baseline (e.g. absolute colour without a colour chart)."})
    redness_reference = fields.Dict(
        keys=fields.String(), values=fields.String(allow_none=True, metadata={"enum": list(REFERENCE_REGIONS)}),
        required=True,
        metadata={"description": "Milestone name -> the face region its photo's redness and delta a* are a contrast "
                                 "against: the forehead, or the chin when the forehead was hidden at the baseline "
                                 "(a follow-up keeps its baseline's); null: neither was measurable, no redness."})


class NextMilestoneSchema(ma.Schema):
    milestone_id = fields.UUID(required=True)
    name = fields.String(required=True)
    target_date = fields.Date(required=True)
    window_opens = fields.Date(required=True)
    window_closes = fields.Date(required=True)
    status = fields.String(required=True, metadata={"description": "upcoming, due or overdue."})


class SummaryResultSchema(ma.Schema):
    measure = fields.String(required=True)
    region = fields.String(required=True)
    milestone_name = fields.String(required=True)
    value = fields.Float(required=True)
    baseline_value = fields.Float(required=True)
    change = fields.Float(required=True)
    change_percent = fields.Float(allow_none=True, required=True)
    mdc95 = fields.Float(allow_none=True, required=True)
    mdc_percent = fields.Float(allow_none=True, required=True,
                               metadata={"description": "MDC95 as a percent of the baseline value."})
    exceeds_mdc = fields.Boolean(allow_none=True, required=True)
    mdc_source = fields.String(allow_none=True, required=True, metadata={
        "enum": list(MDC_SOURCES),
        "description": "Where mdc95 comes from: the clinic's own repeat captures (at least 20 pairs and the ICC's "
                       "lower 95 % bound >= 0.5), else all clinics pooled (same condition), else the recapture "
                       "study; null when there is no MDC."})
    mdc_n_pairs = fields.Integer(required=True, metadata={
        "description": "Repeat pairs behind mdc95 (0 for the recapture study)."})
    text = fields.String(required=True, metadata={"description": "The same numbers in plain words."})


class PatientSummarySchema(ma.Schema):
    course_id = fields.UUID(allow_none=True, required=True)
    next_milestone = fields.Nested(NextMilestoneSchema, allow_none=True, required=True)
    results = fields.List(fields.Nested(SummaryResultSchema), required=True)
    excluded_photos = fields.Integer(required=True, metadata={"description": "Photos left out (e.g. unusable)."})
    charts = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": "Measure -> URL of the PNG chart (all skin)."})
