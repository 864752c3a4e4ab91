"""Progress API: series with MDC flags, charts (PNG/SVG), and the patient's own summary."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Response, url_for
from sqlalchemy import select

from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import READERS, audit_reads, clinical_blueprint
from backend.extensions import db, now
from backend.models.clinical import Patient, TreatmentCourse
from backend.services import access
from backend.services import progress as progress_service
from backend.services.charts import CHART_MEDIA_TYPES, render_chart
from backend.services.milestones import schedule_items
from backend.unit_of_work import transactional
from imaging.version import ALGORITHM_VERSION
from schemas.progress import (
    ChartArgsSchema,
    CourseProgressSchema,
    MyChartArgsSchema,
    PatientSummarySchema,
    ProgressArgsSchema,
)

blp = clinical_blueprint("progress", "Progress over time: series with MDC flags, charts, patient summary.")

#: Milestone states a patient can still act on, most urgent first.
ACTIONABLE_STATUSES = ("due", "upcoming")


def chart_response(course: TreatmentCourse, measure: str, fmt: str, args: dict[str, Any],
                   *, with_events: bool = True) -> Response:
    """Render one chart of a course (404 for a measure without a series)."""
    if measure not in progress_service.SERIES_MEASURES:
        access.not_found("measure")
    progress = progress_service.course_progress(
        course, view=args["view"], algorithm_version=args.get("algorithm_version") or ALGORITHM_VERSION,
        measures=(measure,), regions=(args["region"],),
    )
    series = progress.get(measure, args["region"])
    events = progress_service.course_timeline(course, progress.day_zero) if with_events else ()
    data = render_chart(series, fmt, events, last_day=progress.last_milestone_day)
    return Response(data, mimetype=CHART_MEDIA_TYPES[fmt], headers={"Cache-Control": "private, no-store"})


@blp.route("/courses/<uuid:course_id>/progress", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(ProgressArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, CourseProgressSchema)
def course_progress(args: dict[str, Any], course_id: uuid.UUID):
    """Per measure and region: the value at each milestone, change from baseline (absolute and
    percent) and whether it exceeds the measure's MDC95; split-face differences; photos left out."""
    course = access.get_course_or_404(current_user(), course_id)
    audit_reads("course", [course.id])
    return progress_service.course_progress(
        course, view=args["view"], algorithm_version=args["algorithm_version"] or ALGORITHM_VERSION,
        measures=tuple(args["measure"] or progress_service.SERIES_MEASURES),
        regions=tuple(args["region"] or progress_service.SERIES_REGIONS),
    )


@blp.route("/courses/<uuid:course_id>/charts/<string:measure>.<any(png,svg):fmt>", methods=["GET"])
@auth_required(*READERS)
@transactional
@blp.arguments(ChartArgsSchema, location="query")
@blp.response(200, description="Chart of the measure over days since baseline with the MDC band.",
              content_type="image/png")
@blp.alt_response(404, response="NOT_FOUND")
def course_chart(args: dict[str, Any], course_id: uuid.UUID, measure: str, fmt: str) -> Response:
    """PNG or SVG chart of one measure in one region, with assessments and adverse events marked."""
    course = access.get_course_or_404(current_user(), course_id)
    audit_reads("course", [course.id])
    return chart_response(course, measure, fmt, args)


def newest_course(patient: Patient) -> TreatmentCourse | None:
    """The patient's course with the latest baseline date (ties: newest created)."""
    return db.session.scalars(
        select(TreatmentCourse).where(TreatmentCourse.patient_id == patient.id)
        .order_by(TreatmentCourse.baseline_date.desc(), TreatmentCourse.created_at.desc()).limit(1)
    ).first()


def next_milestone(course: TreatmentCourse, today: dt.date) -> dict[str, Any] | None:
    """The first milestone still to do (due now, else the next upcoming), or None."""
    grouped = schedule_items([course], today)
    for status in ACTIONABLE_STATUSES:
        if grouped[status]:
            item = grouped[status][0]
            return {"milestone_id": item.milestone_id, "name": item.name, "target_date": item.target_date,
                    "window_opens": item.window_opens, "window_closes": item.window_closes, "status": status}
    return None


def summary_results(course: TreatmentCourse, progress: progress_service.CourseProgress) -> list[dict[str, Any]]:
    """Latest change of each headline measure, all skin and each treated region, in words."""
    results = []
    for series in progress.series:
        point = series.latest()
        if point is None or series.baseline_value is None or point.change is None:
            continue
        mdc_percent = (100.0 * series.mdc95 / abs(series.baseline_value)
                       if series.mdc95 is not None and series.baseline_value else None)
        results.append({
            "measure": series.measure, "region": series.region, "milestone_name": point.milestone_name,
            "value": point.value, "baseline_value": series.baseline_value, "change": point.change,
            "change_percent": point.change_percent, "mdc95": series.mdc95, "mdc_percent": mdc_percent,
            "exceeds_mdc": point.exceeds_mdc, "mdc_source": series.mdc_source, "mdc_n_pairs": series.mdc_n_pairs,
            "text": progress_service.plain_words(series.measure, series.region, point.change, point.change_percent,
                                                 series.mdc95, series.baseline_value, point.exceeds_mdc),
        })
    return results


@blp.route("/me/summary", methods=["GET"])
@auth_required("patient")
@transactional
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, PatientSummarySchema)
def my_summary() -> dict[str, Any]:
    """For the phone app: next milestone, latest results in plain words with the same numbers
    as the charts, and links to the patient's own charts."""
    patient = access.own_patient_or_403(current_user())
    audit_reads("patient", [patient.id])
    course = newest_course(patient)
    if course is None:
        return {"course_id": None, "next_milestone": None, "results": [], "excluded_photos": 0, "charts": {}}
    regions = (progress_service.ALL_SKIN, *[r for r in course.treated_regions if r in progress_service.SERIES_REGIONS])
    progress = progress_service.course_progress(course, measures=progress_service.HEADLINE_MEASURES, regions=regions)
    return {
        "course_id": course.id,
        "next_milestone": next_milestone(course, now().date()),
        "results": summary_results(course, progress),
        "excluded_photos": len(progress.excluded),
        "charts": {m: url_for("progress.my_chart", measure=m, fmt="png", course_id=str(course.id))
                   for m in progress_service.HEADLINE_MEASURES},
    }


@blp.route("/me/charts/<string:measure>.<any(png,svg):fmt>", methods=["GET"])
@auth_required("patient")
@transactional
@blp.arguments(MyChartArgsSchema, location="query")
@blp.response(200, description="The patient's own chart.", content_type="image/png")
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def my_chart(args: dict[str, Any], measure: str, fmt: str) -> Response:
    """The signed-in patient's chart of one measure (their newest course unless `course_id`)."""
    user = current_user()
    patient = access.own_patient_or_403(user)
    course = (access.get_course_or_404(user, args["course_id"]) if args["course_id"] else newest_course(patient))
    if course is None:
        access.not_found("course")
    audit_reads("course", [course.id])
    return chart_response(course, measure, fmt, args)
