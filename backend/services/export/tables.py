"""The de-identified tables of a study (participants, visits, measurements, assessments, adverse
events, summary) and the cohort statistics endpoint's body, which has the summary's numbers.

No names, contact data, free text, record ids or exact dates are written (see
``backend.services.deidentify``); k-anonymity decides who is released.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select

from backend.extensions import db
from backend.models.clinical import AdverseEvent, Assessment, TreatmentCourse
from backend.models.photos import Photo
from backend.models.repeatability import RepeatabilityResult
from backend.models.studies import Study
from backend.services import cohort_stats, deidentify, progress
from backend.services.export.codebook import TABLE_NAMES
from backend.services.export.inclusion import Participant, included_participants, quasi_identifiers
from backend.services.export.options import ExportOptions
from backend.services.photos import photo_standings
from imaging.catalogue import FITZPATRICK_GROUP_NAMES, MEASURE_BY_KEY


@dataclass
class StudyTables:
    """De-identified rows per table (dicts keyed by the codebook's variable names)."""

    rows: dict[str, list[dict[str, Any]]]
    anonymity: deidentify.AnonymityResult
    changes: list[cohort_stats.ChangeObservation] = field(default_factory=list)
    split_face: list[cohort_stats.ChangeObservation] = field(default_factory=list)
    algorithm_versions: set[str] = field(default_factory=set)


def export_photos(course: TreatmentCourse, view: str) -> list[Photo]:
    """The course's photos in the export view, the counting one of each milestone first, then the
    others that are neither deleted nor replaced by a retake, newest first
    (:func:`backend.services.photos.photo_standings`)."""
    photos = list(db.session.scalars(
        select(Photo).where(Photo.course_id == course.id, Photo.view == view)
        .order_by(Photo.created_at.desc(), Photo.id.desc())))
    standings = photo_standings(photos)
    shown = [p for p in photos if standings[p.id].counts or standings[p.id].listed]
    return sorted(shown, key=lambda p: not standings[p.id].counts)  # stable: newest first within each part


def _visit_rows(participant: Participant, course_progress: progress.CourseProgress, view: str) -> list[dict[str, Any]]:
    photos = export_photos(participant.course, view)
    measured_days = {p.milestone_name: p.days_since_baseline for s in course_progress.series for p in s.points}
    not_comparable: dict[str, list[str]] = {}
    for left in course_progress.left_out:
        not_comparable.setdefault(left.milestone_name, []).append(f"{left.measure}:{','.join(left.reasons)}")
    rows = []
    for milestone in course_progress.milestones:
        own = [p for p in photos if p.milestone_id == milestone.id]
        newest = own[0] if own else None
        problems = newest.quality.get("problems", []) if newest is not None else []
        rows.append({
            "participant_id": participant.code, "milestone": milestone.name, "scheduled_day": milestone.day_offset,
            "days_since_baseline": measured_days.get(milestone.name),
            "completed": milestone.completed_at is not None, "photo_count": len(own),
            "usable_photo": any(p.usable for p in own), "measured": milestone.name in measured_days,
            "make_up": newest.make_up if newest is not None else None,
            "capture_time_source": newest.capture_time_source if newest is not None else None,
            "quality_problems": ";".join(sorted(str(p.get("code", "")) for p in problems)) or None,
            "not_comparable": ";".join(not_comparable.get(milestone.name, [])) or None,
            "redness_reference": course_progress.redness_reference.get(milestone.name),
        })
    return rows


def build_tables(participants: Sequence[Participant], options: ExportOptions) -> StudyTables:
    """De-identify the participants' data into the export tables (k-anonymity applied)."""
    anonymity = deidentify.k_anonymise({p.code: quasi_identifiers(p) for p in participants},
                                       options.k, options.max_suppression)
    released = [p for p in sorted(participants, key=lambda p: p.code) if p.code in anonymity.values]
    tables = StudyTables(rows={name: [] for name in TABLE_NAMES if name != "summary.csv"}, anonymity=anonymity)
    for participant in released:
        course, code = participant.course, participant.code
        course_progress = progress.course_progress(course, view=options.view,
                                                   algorithm_version=options.algorithm_version)
        day_zero = course_progress.day_zero
        tables.rows["participants.csv"].append({
            **anonymity.values[code], "participant_id": code,
            "concentration_value": course.concentration_value, "concentration_unit": course.concentration_unit,
            "treated_regions": ";".join(course.treated_regions),
            "split_face_treated_side": course.split_face_treated_side, "course_status": course.status,
            # Day zero (not the planned baseline date), so shifted dates minus it give the exported days.
            "baseline_date_shifted": deidentify.shift_date(day_zero, participant.date_shift_days),
        })
        tables.rows["visits.csv"].extend(_visit_rows(participant, course_progress, options.view))
        for series in course_progress.series:
            for point in series.points:
                if point.value is None:
                    continue
                tables.algorithm_versions.add(options.algorithm_version)
                tables.rows["measurements.csv"].append({
                    "participant_id": code, "milestone": point.milestone_name,
                    "days_since_baseline": point.days_since_baseline, "region": series.region,
                    "measure": series.measure, "value": point.value, "unit": MEASURE_BY_KEY[series.measure].unit,
                    "change_from_baseline": point.change, "exceeds_mdc": point.exceeds_mdc,
                    "mdc95": series.mdc95, "mdc_source": series.mdc_source, "mdc_n_pairs": series.mdc_n_pairs,
                    "algorithm_version": options.algorithm_version,
                })
                if point.milestone_id != series.baseline_milestone_id and point.change is not None:
                    tables.changes.append(cohort_stats.ChangeObservation(
                        code, series.measure, series.region, point.milestone_name, point.day_offset,
                        point.change, point.exceeds_mdc, series.mdc_source))
        baseline_name = course_progress.milestones[0].name if course_progress.milestones else None
        day_offsets = {m.name: m.day_offset for m in course_progress.milestones}
        for difference in course_progress.split_face:
            if difference.milestone_name != baseline_name and difference.change_from_baseline is not None:
                tables.split_face.append(cohort_stats.ChangeObservation(
                    code, difference.measure, "treated_minus_control", difference.milestone_name,
                    day_offsets[difference.milestone_name], difference.change_from_baseline, None))
        assessments = db.session.scalars(select(Assessment).where(Assessment.course_id == course.id))
        for assessment in sorted(assessments, key=lambda a: (a.milestone.day_offset, a.rater_role)):
            tables.rows["assessments.csv"].append({
                "participant_id": code, "milestone": assessment.milestone.name,
                "days_since_baseline": (assessment.milestone.window.target - day_zero).days,
                "rater_role": assessment.rater_role, "gais": assessment.gais, "satisfaction": assessment.satisfaction,
            })
        events = db.session.scalars(select(AdverseEvent).where(AdverseEvent.course_id == course.id))
        for event in sorted(events, key=lambda e: (e.onset_date, e.event_type, e.severity)):
            resolved = event.resolution_date
            tables.rows["adverse_events.csv"].append({
                "participant_id": code, "event_type": event.event_type, "severity": event.severity,
                "onset_day": (event.onset_date - day_zero).days,
                "resolution_day": (resolved - day_zero).days if resolved else None,
                "duration_days": (resolved - event.onset_date).days if resolved else None,
                "onset_date_shifted": deidentify.shift_date(event.onset_date, participant.date_shift_days),
                "reporter_role": event.reporter_role,
            })
    tables.rows["repeatability.csv"] = repeatability_rows(participants, options)
    return tables


def repeatability_rows(participants: Sequence[Participant], options: ExportOptions) -> list[dict[str, Any]]:
    """``repeatability.csv``: stored repeatability of the export's algorithm version, of all clinics
    pooled and of each clinic of the exported participants (by its pseudonymous clinic code); rows
    of fewer than ``k`` pairs are left out (a pair's difference is one patient's measurement)."""
    codes = {p.patient.clinic_id: p.clinic_code for p in participants if p.clinic_code != "*"}
    stored = db.session.scalars(select(RepeatabilityResult).where(
        RepeatabilityResult.algorithm_version == options.algorithm_version,
        or_(RepeatabilityResult.scope == "all_clinics", RepeatabilityResult.clinic_id.in_(list(codes)))))
    rows = [{
        "scope": row.scope, "clinic_code": codes.get(row.clinic_id) if row.clinic_id else None,
        "fitzpatrick_group": row.fitzpatrick_group or "all", "measure": row.measure, "region": row.region,
        "n_pairs": row.n_pairs, "within_subject_sd": row.within_subject_sd, "icc": row.icc,
        "icc_ci_low": row.icc_ci_low, "icc_ci_high": row.icc_ci_high, "sem": row.sem, "mdc95": row.mdc95,
        "bias": row.bias, "loa_low": row.loa_low, "loa_high": row.loa_high,
        "unit": MEASURE_BY_KEY[row.measure].unit, "algorithm_version": row.algorithm_version,
    } for row in stored if row.n_pairs >= options.k and row.measure in MEASURE_BY_KEY]
    order = {name: index for index, name in enumerate(("all", *FITZPATRICK_GROUP_NAMES))}
    rows.sort(key=lambda r: (r["scope"] != "all_clinics", r["clinic_code"] or "", order[r["fitzpatrick_group"]],
                             r["measure"], r["region"]))
    return rows
def statistics(tables: StudyTables) -> dict[str, list[Any]]:
    """Change summaries, split-face differences, GAIS and adverse-event frequencies of the released
    participants, cells of fewer than k participants suppressed (k: the request's, >= the study's floor)."""
    k = tables.anonymity.k
    participant_count = len(tables.rows["participants.csv"])
    return {
        "changes": cohort_stats.suppress_small_cells("change", cohort_stats.summarise_changes(tables.changes), k),
        "split_face": cohort_stats.suppress_small_cells(
            "change", cohort_stats.summarise_changes(tables.split_face), k),
        "gais": cohort_stats.suppress_small_cells(
            "gais", cohort_stats.gais_frequencies(tables.rows["assessments.csv"]), k),
        "adverse_events": cohort_stats.suppress_small_cells("adverse_event", cohort_stats.adverse_event_frequencies(
            tables.rows["adverse_events.csv"], participant_count), k),
    }


def summary_rows(tables: StudyTables) -> list[dict[str, Any]]:
    """``summary.csv``: change statistics, split-face differences, GAIS and adverse-event frequencies."""
    rows: list[dict[str, Any]] = []
    numbers = statistics(tables)

    def change_row(section: str, summary: cohort_stats.ChangeSummary) -> dict[str, Any]:
        return {"section": section, "measure": summary.measure, "region": summary.region,
                "milestone": summary.milestone, "n": summary.n, "mean": summary.mean_change,
                "mean_ci_low": summary.mean_ci_low, "mean_ci_high": summary.mean_ci_high,
                "median": summary.median_change, "median_ci_low": summary.median_ci_low,
                "median_ci_high": summary.median_ci_high, "wilcoxon_p": summary.wilcoxon_p,
                "share_exceeding_mdc": summary.share_exceeding_mdc, "mdc_sources": summary.mdc_sources,
                "suppressed": summary.suppressed}

    rows += [change_row("change", s) for s in numbers["changes"]]
    rows += [change_row("split_face", s) for s in numbers["split_face"]]
    for item in numbers["gais"]:
        rows.append({"section": "gais", "milestone": item["milestone"],
                     "group": f"{item['rater_role']}:{item['gais']}", "n": item["count"], "share": item["share"],
                     "suppressed": item["suppressed"]})
    for item in numbers["adverse_events"]:
        rows.append({"section": "adverse_event", "group": f"{item['event_type']}:{item['severity']}",
                     "n": item["events"], "share": item["share_of_participants"], "suppressed": item["suppressed"]})
    return rows


def cohort_statistics(study: Study, options: ExportOptions) -> dict[str, Any]:
    """The cohort statistics endpoint's body (same numbers as ``summary.csv`` of an export)."""
    tables = build_tables(included_participants(study), options)
    numbers = statistics(tables)
    return {
        "participants": len(tables.rows["participants.csv"]),
        "k_anonymity": tables.anonymity.report(),
        "options": options.as_dict(),
        "changes": [s.as_dict() for s in numbers["changes"]],
        "split_face": [s.as_dict() for s in numbers["split_face"]],
        "gais": numbers["gais"],
        "adverse_events": numbers["adverse_events"],
    }
