"""Study data: who is in a study, the de-identified tables, cohort statistics and the export zip.

Inclusion: patients of the study's participating clinics whose latest ``research`` consent
event is a grant at the time of the export, with a course matching the study (indication if
set, baseline date within the study dates). One course per participant: the earliest
matching baseline (ties: earliest created). A withdrawal removes the patient from every later
export and statistic, because inclusion is evaluated anew each time.

The zip holds ``participants.csv``, ``visits.csv``, ``measurements.csv`` (long),
``assessments.csv``, ``adverse_events.csv``, ``summary.csv``, ``codebook.csv`` and
``manifest.json`` (optionally ``parquet/<table>.parquet`` copies). No photos, names, contact
data, free text, record ids or exact dates are written (see ``backend.services.deidentify``).

Option ``region_patches``: ``patches/<participant code>/<milestone>_<region>.png`` skin-only
crops (forehead, cheeks; see ``imaging.patches``) of the visits' usable photos, only for
released participants whose ``research_region_patches`` consent is also granted now.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import platform
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db, now
from backend.jobs import JobContext, PermanentJobError, job_handler
from backend.models.clinical import AdverseEvent, Assessment, Patient, TreatmentCourse
from backend.models.photos import Photo
from backend.models.studies import Study, StudyExport, StudyParticipant
from backend.services import cohort_stats, deidentify, progress
from backend.services.patients import current_consent
from backend.storage import current_storage
from imaging.errors import ImageError
from imaging.patches import PATCH_REGIONS, photo_region_patches
from imaging.version import ALGORITHM_VERSION
from schemas.clinical import ADVERSE_EVENT_TYPES, DELIVERY_METHODS, EXOSOME_SOURCES, INDICATIONS, SEVERITIES, SEXES

EXPORT_JOB = "build_study_export"
FORMAT_VERSION = 1
ZIP_MEDIA_TYPE = "application/zip"
#: Fixed member timestamp: the zip's bytes depend on its content only.
ZIP_MEMBER_TIME = (1980, 1, 1, 0, 0, 0)

#: Units and meaning of the measures a study exports (mirrors the README measures table).
MEASURE_UNITS = {
    "redness": "centi-OD", "pigmentation": "centi-OD", "texture": "centi-OD", "a_star": "CIELAB a*",
    "erythema_index": "EI a.u.", "l_star": "CIELAB L* 0-100", "ita_deg": "degrees", "melanin_index": "a.u.",
    "spot_area_fraction": "fraction 0-1", "melanin_spread": "OD", "wrinkle_density_mm_per_cm2": "mm/cm^2",
}


@dataclass(frozen=True)
class ExportOptions:
    """Parameters of one export (all stated in the manifest)."""

    k: int = 5
    max_suppression: float = 0.1
    parquet: bool = False
    view: str = "front"
    algorithm_version: str = ALGORITHM_VERSION
    region_patches: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportOptions:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def as_dict(self) -> dict[str, Any]:
        return {"k": self.k, "max_suppression": self.max_suppression, "parquet": self.parquet,
                "view": self.view, "algorithm_version": self.algorithm_version,
                "region_patches": self.region_patches}


# --- codebook: one definition per variable, used to write the tables and describe them ------------

@dataclass(frozen=True)
class Variable:
    """One column of one table, as described in ``codebook.csv``."""

    name: str
    type: str  # string | integer | number | boolean | category
    description: str
    source: str
    unit: str = ""
    allowed: str = ""
    derivation: str = ""


def _choices(values: Iterable[str]) -> str:
    return "|".join(values)


PARTICIPANT_ID = Variable("participant_id", "string", "Random study participant code, persistent within the study",
                          "generated", allowed="P- + 8 Crockford base32 characters",
                          derivation="OS CSPRNG; never derived from names, emails or record ids")
MILESTONE = Variable("milestone", "string", "Scheduled visit name (e.g. baseline, 1_month)", "milestones.name")
DAYS_SINCE_BASELINE = Variable(
    "days_since_baseline", "integer", "Days from the baseline photo's capture date (else the course baseline date)",
    "photos.capture_date", unit="days", derivation="date - day zero; no calendar dates are exported")

TABLES: dict[str, tuple[Variable, ...]] = {
    "participants.csv": (
        PARTICIPANT_ID,
        Variable("age_band", "category", "Age at course baseline, banded", "patients.date_of_birth",
                 unit="years", allowed="<18|18-...|90+ (width per manifest)",
                 derivation="completed years at baseline; >89 collapsed to 90+; widened by k-anonymity"),
        Variable("sex", "category", "Sex", "patients.sex", allowed=_choices(SEXES)),
        Variable("fitzpatrick_type", "category", "Fitzpatrick skin phototype", "patients.fitzpatrick_type",
                 allowed="I..VI | I-II|III-IV|V-VI | *", derivation="merged or suppressed (*) by k-anonymity"),
        Variable("clinic_code", "category", "Pseudonymous code of the treating clinic", "study_clinics",
                 allowed="C01.. | *", derivation="order of joining the study; * when suppressed by k-anonymity"),
        Variable("indication", "category", "Course indication", "treatment_courses.indication",
                 allowed=_choices(INDICATIONS)),
        Variable("exosome_source", "category", "Exosome source", "treatment_courses.exosome_source",
                 allowed=_choices(EXOSOME_SOURCES)),
        Variable("delivery", "category", "Delivery method", "treatment_courses.delivery",
                 allowed=_choices(DELIVERY_METHODS)),
        Variable("concentration_value", "number", "Product concentration", "treatment_courses.concentration_value",
                 unit="see concentration_unit"),
        Variable("concentration_unit", "string", "Unit of concentration_value", "treatment_courses.concentration_unit"),
        Variable("treated_regions", "string", "Treated face regions", "treatment_courses.treated_regions",
                 allowed="forehead;left_cheek;right_cheek;nose;chin (semicolon-separated)"),
        Variable("split_face", "category", "Split-face design", "treatment_courses.split_face_treated_side",
                 allowed="yes|no"),
        Variable("split_face_treated_side", "category", "Treated side of a split-face design (subject's side)",
                 "treatment_courses.split_face_treated_side", allowed="left|right|(empty)"),
        Variable("course_status", "category", "Course status at export", "treatment_courses.status",
                 allowed="planned|active|completed|discontinued"),
        Variable("baseline_date_shifted", "string", "Day zero (baseline photo's capture date, else the course "
                 "baseline date) shifted by the participant's secret offset",
                 "photos.capture_date, treatment_courses.baseline_date", unit="ISO date",
                 derivation="true date + secret per-participant offset (-1095..-366 days); intervals kept"),
    ),
    "visits.csv": (
        PARTICIPANT_ID, MILESTONE,
        Variable("scheduled_day", "integer", "Scheduled day of the visit", "milestones.day_offset", unit="days"),
        DAYS_SINCE_BASELINE,
        Variable("completed", "boolean", "Visit marked completed", "milestones.completed_at", allowed="true|false"),
        Variable("photo_count", "integer", "Photos of the visit in the export view (not deleted, not retaken)",
                 "photos"),
        Variable("usable_photo", "boolean", "At least one photo passed the quality gate", "photos.usable",
                 allowed="true|false"),
        Variable("measured", "boolean", "The visit has measurements in measurements.csv", "photo_analyses",
                 allowed="true|false"),
        Variable("make_up", "boolean", "Make-up reported at capture (newest photo)", "photos.make_up",
                 allowed="true|false|(empty)"),
        Variable("capture_time_source", "category", "Where the capture time came from (newest photo)",
                 "photos.capture_time_source", allowed="app|exif|upload"),
        Variable("quality_problems", "string", "Quality-gate problem codes of the newest photo", "photos.quality",
                 allowed="semicolon-separated codes"),
    ),
    "measurements.csv": (
        PARTICIPANT_ID, MILESTONE, DAYS_SINCE_BASELINE,
        Variable("region", "category", "Face region (all_skin: the whole measured face)", "photo_measurements.region",
                 allowed=_choices(progress.SERIES_REGIONS)),
        Variable("measure", "category", "Measure (README: Imaging measures)", "photo_measurements.measure",
                 allowed=_choices(progress.SERIES_MEASURES)),
        Variable("value", "number", "Measured value", "photo_measurements.value", unit="see unit"),
        Variable("unit", "string", "Unit of value", "imaging measures table"),
        Variable("change_from_baseline", "number", "value minus the baseline visit's value", "derived",
                 unit="see unit"),
        Variable("exceeds_mdc", "boolean", "|change| > MDC95 of the measure in that region",
                 "imaging/reliability_table.json",
                 allowed="true|false|(empty: no MDC)"),
        Variable("algorithm_version", "string", "Imaging algorithm version of the value",
                 "photo_analyses.algorithm_version"),
    ),
    "assessments.csv": (
        PARTICIPANT_ID, MILESTONE,
        Variable("days_since_baseline", "integer", "Days from day zero to the visit's target date",
                 "milestones.day_offset", unit="days"),
        Variable("rater_role", "category", "Who rated", "assessments.rater_role", allowed="patient|clinician"),
        Variable("gais", "integer", "Global Aesthetic Improvement Scale", "assessments.gais",
                 allowed="1 very much improved .. 5 worse"),
        Variable("satisfaction", "integer", "Patient satisfaction", "assessments.satisfaction", allowed="0..10"),
    ),
    "adverse_events.csv": (
        PARTICIPANT_ID,
        Variable("event_type", "category", "Adverse event type", "adverse_events.event_type",
                 allowed=_choices(ADVERSE_EVENT_TYPES)),
        Variable("severity", "category", "Severity", "adverse_events.severity", allowed=_choices(SEVERITIES)),
        Variable("onset_day", "integer", "Days since baseline at onset", "adverse_events.onset_date", unit="days"),
        Variable("resolution_day", "integer", "Days since baseline at resolution (empty: ongoing)",
                 "adverse_events.resolution_date", unit="days"),
        Variable("duration_days", "integer", "resolution - onset (empty: ongoing)", "derived", unit="days"),
        Variable("onset_date_shifted", "string", "Onset date shifted by the participant's secret offset",
                 "adverse_events.onset_date", unit="ISO date", derivation="as baseline_date_shifted"),
        Variable("reporter_role", "category", "Who reported", "adverse_events.reporter_role"),
    ),
    "summary.csv": (
        Variable("section", "category", "Kind of statistic", "derived",
                 allowed="change|split_face|gais|adverse_event"),
        Variable("measure", "string", "Measure (change, split_face)", "derived"),
        Variable("region", "string", "Region (change) or treated-minus-control (split_face)", "derived"),
        Variable("milestone", "string", "Visit", "derived"),
        Variable("group", "string", "gais: rater_role:score; adverse_event: event_type:severity", "derived"),
        Variable("n", "integer", "Participants (change, split_face) or count (gais, adverse_event)", "derived"),
        Variable("mean", "number", "Mean change from baseline", "derived", unit="measure units"),
        Variable("mean_ci_low", "number", "95 % t-interval lower limit", "derived", unit="measure units"),
        Variable("mean_ci_high", "number", "95 % t-interval upper limit", "derived", unit="measure units"),
        Variable("median", "number", "Median change from baseline", "derived", unit="measure units"),
        Variable("median_ci_low", "number", "95 % binomial order-statistic interval lower limit (n >= 6)",
                 "derived", unit="measure units"),
        Variable("median_ci_high", "number", "95 % binomial order-statistic interval upper limit", "derived",
                 unit="measure units"),
        Variable("wilcoxon_p", "number", "Two-sided Wilcoxon signed-rank p (zeros dropped)", "derived"),
        Variable("share_exceeding_mdc", "number", "Share with |change| > MDC95", "derived", unit="fraction"),
        Variable("share", "number", "gais: share of the milestone's ratings by that rater; adverse_event: share of "
                 "participants with at least one such event", "derived", unit="fraction"),
    ),
}
TABLE_NAMES = tuple(TABLES)
PATCH_CONSENT_SCOPE = "research_region_patches"
PATCH_FILE_PATTERN = "patches/<participant_id>/<milestone>_<region>.png"
#: Codebook rows of the optional patch images (not a table: one PNG per participant, visit, region).
PATCH_VARIABLES = (
    Variable("participant_id", "string", "Directory: the participant's study code (as participants.csv)",
             "generated"),
    Variable("milestone", "string", "File name part: the visit (as visits.csv)", "milestones.name"),
    Variable("region", "category", "File name part: the face region cropped", "imaging.regions.region_masks",
             allowed=_choices(PATCH_REGIONS)),
    Variable("pixels", "image", "RGB PNG crop of the region in the canonical face frame (eyes 256 px apart, "
             "level); grey (128,128,128) outside the region mask, so no eyes, brows, lips or hair",
             "photos (newest usable photo of the visit in the export view)", unit="canonical px",
             derivation="decode, eye-based warp to the canonical frame, region mask bounding box; encoded "
                        "from pixels (no EXIF, ICC or text chunks); only with research_region_patches "
                        "consent"),
)


# --- inclusion and secrets -----------------------------------------------------------------------

@dataclass
class Participant:
    """One included patient with the course the study uses and their secrets."""

    patient: Patient
    course: TreatmentCourse
    code: str
    date_shift_days: int
    clinic_code: str


def study_clinic_codes(study: Study) -> dict[uuid.UUID, str]:
    """Pseudonymous clinic codes ``C01``.. in the order clinics joined the study."""
    return {link.clinic_id: f"C{index:02d}" for index, link in enumerate(study.clinics, start=1)}


def covered_courses(study: Study) -> list[TreatmentCourse]:
    """Each covered patient's first matching course (consent not yet checked)."""
    clinic_ids = [link.clinic_id for link in study.clinics]
    if not clinic_ids:
        return []
    statement = (select(TreatmentCourse).join(Patient, TreatmentCourse.patient_id == Patient.id)
                 .where(Patient.clinic_id.in_(clinic_ids))
                 .order_by(TreatmentCourse.baseline_date, TreatmentCourse.created_at, TreatmentCourse.id))
    if study.indication is not None:
        statement = statement.where(TreatmentCourse.indication == study.indication)
    if study.starts_on is not None:
        statement = statement.where(TreatmentCourse.baseline_date >= study.starts_on)
    if study.ends_on is not None:
        statement = statement.where(TreatmentCourse.baseline_date <= study.ends_on)
    first: dict[uuid.UUID, TreatmentCourse] = {}
    for course in db.session.scalars(statement):
        first.setdefault(course.patient_id, course)
    return list(first.values())


def participant_secrets(study: Study, patient_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StudyParticipant]:
    """The persistent code and date offset of each patient in the study, created when missing.

    A concurrent creator for the same patient wins on the unique constraint; its row is used.
    """
    rows = {row.patient_id: row for row in db.session.scalars(
        select(StudyParticipant).where(StudyParticipant.study_id == study.id))}
    for patient_id in patient_ids:
        if patient_id in rows:
            continue
        taken = {row.code for row in rows.values()}
        code = deidentify.new_participant_code()
        while code in taken:
            code = deidentify.new_participant_code()
        row = StudyParticipant(study_id=study.id, patient_id=patient_id, code=code,
                               date_shift_days=deidentify.new_date_shift_days())
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:
            row = db.session.execute(select(StudyParticipant).where(
                StudyParticipant.study_id == study.id, StudyParticipant.patient_id == patient_id)).scalar_one()
        rows[patient_id] = row
    return rows


def included_participants(study: Study) -> list[Participant]:
    """Patients in the study now: covered course and current research consent."""
    courses = [c for c in covered_courses(study) if current_consent(c.patient, "research")]
    secrets = participant_secrets(study, [c.patient_id for c in courses])
    clinic_codes = study_clinic_codes(study)
    return [Participant(course.patient, course, secrets[course.patient_id].code,
                        secrets[course.patient_id].date_shift_days, clinic_codes[course.patient.clinic_id])
            for course in courses]


def quasi_identifiers(participant: Participant) -> deidentify.QuasiIdentifiers:
    """The raw quasi-identifiers of a participant (age at the course baseline)."""
    patient, course = participant.patient, participant.course
    return deidentify.QuasiIdentifiers(
        age=deidentify.age_in_years(patient.date_of_birth, course.baseline_date), sex=patient.sex,
        fitzpatrick_type=patient.fitzpatrick_type, clinic_code=participant.clinic_code,
        indication=course.indication, exosome_source=course.exosome_source, delivery=course.delivery,
        split_face=course.split_face_treated_side is not None,
    )


# --- the tables ----------------------------------------------------------------------------------

@dataclass
class StudyTables:
    """De-identified rows per table (dicts keyed by the codebook's variable names)."""

    rows: dict[str, list[dict[str, Any]]]
    anonymity: deidentify.AnonymityResult
    changes: list[cohort_stats.ChangeObservation] = field(default_factory=list)
    split_face: list[cohort_stats.ChangeObservation] = field(default_factory=list)
    algorithm_versions: set[str] = field(default_factory=set)


def export_photos(course: TreatmentCourse, view: str) -> list[Photo]:
    """The course's photos in the export view (not deleted, not retaken), newest first."""
    return list(db.session.scalars(
        select(Photo).where(Photo.course_id == course.id, Photo.view == view,
                            Photo.deleted_at.is_(None), Photo.superseded_by_id.is_(None))
        .order_by(Photo.created_at.desc(), Photo.id.desc())))


def _visit_rows(participant: Participant, course_progress: progress.CourseProgress, view: str) -> list[dict[str, Any]]:
    photos = export_photos(participant.course, view)
    measured_days = {p.milestone_name: p.days_since_baseline for s in course_progress.series for p in s.points}
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
                    "measure": series.measure, "value": point.value, "unit": MEASURE_UNITS.get(series.measure),
                    "change_from_baseline": point.change, "exceeds_mdc": point.exceeds_mdc,
                    "algorithm_version": options.algorithm_version,
                })
                if point.milestone_id != series.baseline_milestone_id and point.change is not None:
                    tables.changes.append(cohort_stats.ChangeObservation(
                        code, series.measure, series.region, point.milestone_name, point.day_offset,
                        point.change, point.exceeds_mdc))
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
    return tables


def summary_rows(tables: StudyTables) -> list[dict[str, Any]]:
    """``summary.csv``: change statistics, split-face differences, GAIS and adverse-event frequencies."""
    rows: list[dict[str, Any]] = []

    def change_row(section: str, summary: cohort_stats.ChangeSummary) -> dict[str, Any]:
        return {"section": section, "measure": summary.measure, "region": summary.region,
                "milestone": summary.milestone, "n": summary.n, "mean": summary.mean_change,
                "mean_ci_low": summary.mean_ci_low, "mean_ci_high": summary.mean_ci_high,
                "median": summary.median_change, "median_ci_low": summary.median_ci_low,
                "median_ci_high": summary.median_ci_high, "wilcoxon_p": summary.wilcoxon_p,
                "share_exceeding_mdc": summary.share_exceeding_mdc}

    rows += [change_row("change", s) for s in cohort_stats.summarise_changes(tables.changes)]
    rows += [change_row("split_face", s) for s in cohort_stats.summarise_changes(tables.split_face)]
    for item in gais_frequencies(tables.rows["assessments.csv"]):
        rows.append({"section": "gais", "milestone": item["milestone"],
                     "group": f"{item['rater_role']}:{item['gais']}", "n": item["count"], "share": item["share"]})
    for item in adverse_event_frequencies(tables.rows["adverse_events.csv"], len(tables.rows["participants.csv"])):
        rows.append({"section": "adverse_event", "group": f"{item['event_type']}:{item['severity']}",
                     "n": item["events"], "share": item["share_of_participants"]})
    return rows


def gais_frequencies(assessment_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Count and share of each GAIS score per milestone and rater role (share within that pair)."""
    out = []
    pairs = sorted({(r["milestone"], r["rater_role"]) for r in assessment_rows})
    for milestone, rater in pairs:
        scores = [(str(r["gais"]),) for r in assessment_rows if (r["milestone"], r["rater_role"]) == (milestone, rater)]
        for item in cohort_stats.frequency_table(scores):
            out.append({"milestone": milestone, "rater_role": rater, "gais": int(item["key"][0]),
                        "count": item["count"], "share": item["share"]})
    return out


def adverse_event_frequencies(event_rows: Sequence[dict[str, Any]], participant_count: int) -> list[dict[str, Any]]:
    """Per event type and severity: number of events, participants with one, and their share."""
    out = []
    for item in cohort_stats.frequency_table((r["event_type"], r["severity"]) for r in event_rows):
        event_type, severity = item["key"]
        people = {r["participant_id"] for r in event_rows if (r["event_type"], r["severity"]) == (event_type, severity)}
        out.append({"event_type": event_type, "severity": severity, "events": item["count"],
                    "participants": len(people),
                    "share_of_participants": len(people) / participant_count if participant_count else None})
    return out


def cohort_statistics(study: Study, options: ExportOptions) -> dict[str, Any]:
    """The cohort statistics endpoint's body (same numbers as ``summary.csv`` of an export)."""
    tables = build_tables(included_participants(study), options)
    return {
        "participants": len(tables.rows["participants.csv"]),
        "k_anonymity": tables.anonymity.report(),
        "options": options.as_dict(),
        "changes": [s.as_dict() for s in cohort_stats.summarise_changes(tables.changes)],
        "split_face": [s.as_dict() for s in cohort_stats.summarise_changes(tables.split_face)],
        "gais": gais_frequencies(tables.rows["assessments.csv"]),
        "adverse_events": adverse_event_frequencies(tables.rows["adverse_events.csv"],
                                                    len(tables.rows["participants.csv"])),
    }


# --- files ---------------------------------------------------------------------------------------

def format_cell(value: Any) -> str:
    """CSV text of a value: empty for None/NaN, ``true``/``false``, ``repr`` for floats (exact)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_bytes(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 CSV (RFC 4180 quoting, ``\\n`` line ends) of ``rows`` in ``columns`` order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(row.get(column)) for column in columns])
    return buffer.getvalue().encode("utf-8")


def codebook_rows() -> list[dict[str, Any]]:
    """One row per variable of every table, then the optional patch images' naming and pixels."""
    described = [*((table, v) for table, variables in TABLES.items() for v in variables),
                 *((PATCH_FILE_PATTERN, v) for v in PATCH_VARIABLES)]
    return [{"file": name, "variable": v.name, "type": v.type, "unit": v.unit, "allowed_values": v.allowed,
             "description": v.description, "derivation": v.derivation, "source": v.source}
            for name, v in described]


CODEBOOK_COLUMNS = ("file", "variable", "type", "unit", "allowed_values", "description", "derivation", "source")
ARROW_TYPES = {"integer": "int64", "number": "float64", "boolean": "bool_"}


def parquet_bytes(variables: Sequence[Variable], rows: Sequence[dict[str, Any]]) -> bytes:
    """The table as Parquet with the codebook's types (strings for categories and dates)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for v in variables:
        arrow_type = getattr(pa, ARROW_TYPES.get(v.type, "string"))()
        values = [row.get(v.name) for row in rows]
        if arrow_type == pa.string():
            values = [None if x is None else format_cell(x) for x in values]
        arrays[v.name] = pa.array(values, type=arrow_type)
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays), sink)
    return sink.getvalue()


def software_versions() -> dict[str, str]:
    """Versions of the software that produced the numbers."""
    versions = {"python": platform.python_version(), "imaging_algorithm": ALGORITHM_VERSION}
    for package in ("numpy", "scipy", "opencv-python-headless", "scikit-image", "colour-science", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


DEIDENTIFICATION_STATEMENT = {
    "participant_ids": "random persistent codes per (study, patient), never derived from identifying data",
    "removed": ["names", "contact data", "dates of birth", "free-text notes", "product names", "record ids",
                "device models", "photos"],
    "time": "days since baseline; calendar dates shifted by a secret per-participant offset",
    "date_shift_range_days": list(deidentify.DATE_SHIFT_RANGE_DAYS),
    "ages": "bands at course baseline; over 89 collapsed to 90+, under 18 to <18",
    "photos": "not exported; option region_patches adds forehead/cheek crops (grey outside the skin mask, "
              "no eyes, encoded from pixels without metadata) for participants with research_region_patches "
              "consent",
    "inclusion": "current research consent at export time; one course per participant (earliest matching)",
}


@dataclass
class PatchReport:
    """What the region-patch option produced (counts only: nobody is identified)."""

    files: dict[str, bytes] = field(default_factory=dict)
    participants_with_patches: int = 0
    skipped_for_consent: int = 0
    photos_without_face: int = 0
    photos_undecodable: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"regions": list(PATCH_REGIONS), "files": len(self.files),
                "participants_with_patches": self.participants_with_patches,
                "participants_skipped_for_consent": self.skipped_for_consent,
                "photos_without_face": self.photos_without_face, "photos_undecodable": self.photos_undecodable}


def patch_photos(participant: Participant, visit_rows: Sequence[dict[str, Any]], view: str) -> dict[str, Photo]:
    """Per visit of ``visits.csv`` with a usable photo: its newest usable stored photo, by milestone name."""
    visits = {row["milestone"] for row in visit_rows
              if row["participant_id"] == participant.code and row["usable_photo"]}
    chosen: dict[str, Photo] = {}
    for photo in export_photos(participant.course, view):  # newest first
        if photo.usable and photo.storage_key and photo.milestone is not None and photo.milestone.name in visits:
            chosen.setdefault(photo.milestone.name, photo)
    return chosen


def region_patch_files(participants: Sequence[Participant], tables: StudyTables, view: str) -> PatchReport:
    """``patches/<code>/<milestone>_<region>.png`` of released participants with patch consent."""
    released = {row["participant_id"] for row in tables.rows["participants.csv"]}
    report = PatchReport()
    storage = current_storage()
    for participant in sorted(participants, key=lambda p: p.code):
        if participant.code not in released:
            continue
        if not current_consent(participant.patient, PATCH_CONSENT_SCOPE):
            report.skipped_for_consent += 1
            continue
        produced = 0
        for milestone, photo in sorted(patch_photos(participant, tables.rows["visits.csv"], view).items()):
            with storage.open(photo.storage_key) as stream:
                data = stream.read()
            try:
                patches = photo_region_patches(data)
            except ImageError:
                report.photos_undecodable += 1
                continue
            if patches is None:
                report.photos_without_face += 1
                continue
            for region, patch in patches.items():
                report.files[f"patches/{participant.code}/{milestone}_{region}.png"] = patch.png
                produced += 1
        report.participants_with_patches += produced > 0
    return report


def build_package(study: Study, options: ExportOptions) -> tuple[bytes, dict[str, Any]]:
    """The export zip and its manifest.

    Returns
    -------
    (bytes, dict)
        Zip bytes and the manifest written into it as ``manifest.json``.
    """
    participants = included_participants(study)
    tables = build_tables(participants, options)
    files: dict[str, bytes] = {}
    for name, variables in TABLES.items():
        rows = summary_rows(tables) if name == "summary.csv" else tables.rows[name]
        files[name] = csv_bytes([v.name for v in variables], rows)
        if options.parquet:
            files[f"parquet/{name.removesuffix('.csv')}.parquet"] = parquet_bytes(variables, rows)
    files["codebook.csv"] = csv_bytes(CODEBOOK_COLUMNS, codebook_rows())
    patches = region_patch_files(participants, tables, options.view) if options.region_patches else None
    if patches is not None:
        files.update(patches.files)
    row_counts = {name: len(tables.rows[name]) for name in tables.rows}
    row_counts["summary.csv"] = files["summary.csv"].count(b"\n") - 1
    row_counts["codebook.csv"] = len(codebook_rows())
    manifest = {
        "format": "skintrack-study-export", "format_version": FORMAT_VERSION,
        "study": {"title": study.title, "indication": study.indication},
        "parameters": options.as_dict(),
        "software": software_versions(),
        "algorithm_versions": sorted(tables.algorithm_versions),
        "deidentification": DEIDENTIFICATION_STATEMENT,
        "k_anonymity": tables.anonymity.report(),
        "participants": {"eligible_with_research_consent": len(participants),
                         "released": len(tables.rows["participants.csv"])},
        "statistics": {"mean_interval": "two-sided 95 % Student t", "median_interval":
                       "95 % binomial order-statistic (distribution-free; none for n < 6)",
                       "test": "Wilcoxon signed-rank, two-sided, zeros dropped (scipy.stats.wilcoxon)",
                       "mdc": "MDC95 from imaging/reliability_table.json"},
        "row_counts": row_counts,
        "region_patches": patches.as_dict() if patches is not None else None,
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in sorted(files.items())},
    }
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_MEMBER_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue(), manifest


def export_key(export: StudyExport) -> str:
    """Storage key of an export's zip."""
    return f"exports/{export.study_id}/{export.id}.zip"


def request_export(study: Study, requested_by_user_id: uuid.UUID, options: ExportOptions) -> StudyExport:
    """Add an export row and its build job to the current transaction (built after commit)."""
    from backend.jobs import enqueue

    export = StudyExport(id=uuid.uuid4(), study_id=study.id, requested_by_user_id=requested_by_user_id,
                         options=options.as_dict(), status="queued")
    db.session.add(export)
    db.session.flush()
    job = enqueue(EXPORT_JOB, {"export_id": str(export.id)}, dedupe_key=str(export.id))
    export.job_id = job.id
    return export


@job_handler(EXPORT_JOB)
def build_study_export(ctx: JobContext) -> str:
    """Job: build the export zip of one :class:`StudyExport`, store it, mark the export ready.

    Idempotent: a rerun rebuilds and overwrites the same key. Payload: ``export_id``.
    """
    export = db.session.get(StudyExport, uuid.UUID(str(ctx.payload["export_id"])))
    if export is None:
        raise PermanentJobError("export no longer exists")
    study = db.session.get(Study, export.study_id)
    data, manifest = build_package(study, ExportOptions.from_dict(export.options))
    key = export_key(export)
    stored = current_storage().put(key, data, ZIP_MEDIA_TYPE)
    export.storage_key, export.size_bytes, export.sha256 = key, len(data), stored.sha256
    export.summary = {"row_counts": manifest["row_counts"], "k_anonymity": manifest["k_anonymity"],
                      "participants": manifest["participants"]}
    export.status, export.completed_at = "ready", now()
    return str(export.id)
