"""Progress series: a course's measures per milestone, change from baseline and MDC flags.

Which photo gives a milestone's value: the photo that counts for that milestone and view
(:func:`backend.services.photos.photo_standings`, the one rule of upload, schedule, progress,
charts and export), when it has an analysis of the requested ``algorithm_version`` with a face
found. Every other photo of the course that is neither deleted nor superseded by a usable retake
is listed in ``excluded`` with the reason (``unusable``, ``out_of_window``, ``repeat``,
``not_analysed``, ``no_face``) so a reader sees what was left out: an unusable retake is kept
and listed, and the usable photo before it keeps counting.
Only results of ONE algorithm version are ever compared (see ``imaging.version``), and of a
charted photo only the measures the imaging reports as comparable with the baseline
(``comparability`` of :func:`imaging.analysis.analyze`: absolute colour needs a colour chart,
another camera's colour rendering, a failed registration, a smoothing filter on texture); the
others are listed in ``left_out`` with the reasons.

Change from baseline: value minus the baseline milestone's value (absolute, the measure's
units) and ``100 * change / |baseline value|`` (percent, None when the baseline is 0).
``exceeds_mdc`` says whether ``|change| > MDC95`` of the measure IN THAT REGION. The MDC95 is the
clinic's own (or all clinics' pooled) from repeat captures when enough good pairs exist, else
from the published reliability table (the provenance rule of
:mod:`backend.services.repeatability`; each series says ``mdc_source`` and ``mdc_n_pairs``). The
table is ``imaging/reliability_table.json`` (written by ``bench/reliability.py
--write``: all-skin values under ``measures``, each face region's under ``regions``); it is None
when the table was measured with another algorithm version or does not list the measure for
that region (a region's MDC is never borrowed from all skin: a region has fewer pixels and its
own noise).

Split-face courses: per milestone and measure, treated-cheek minus control-cheek value
(``left_cheek``/``right_cheek`` by the course's treated side, subject's left/right) and the
change of that difference from baseline. A difference of two regions has no measured
reliability, so it carries no MDC flag.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from backend.extensions import db
from backend.models.clinical import AdverseEvent, Assessment, Milestone, TreatmentCourse
from backend.models.photos import Photo, PhotoAnalysis, PhotoMeasurement
from backend.services.analysis import ALL_SKIN_REGION as ALL_SKIN  # noqa: F401  (the series' all-skin key, for callers)
from backend.services.photos import photo_standings
from backend.services.repeatability import MdcChoice, mdc_provider
from imaging.catalogue import MEASURE_BY_KEY, REGION_BY_KEY
from imaging.reliability import RELIABILITY_TABLE_PATH, Reliability, exceeds_mdc, load_reliability_table
from imaging.version import ALGORITHM_VERSION
from schemas.progress import HEADLINE_MEASURES, SERIES_MEASURES, SERIES_REGIONS  # noqa: F401  (re-exported to callers)

# Regions (all skin first), headline measures (each rises when skin gets worse), measures with a
# published reliability, and exclusion reasons are part of the API contract: defined in schemas,
# from the measure and region definitions of imaging.catalogue (labels, units, directions).


@functools.lru_cache(maxsize=4)
def _read_mdc_table(path: str) -> tuple[str, dict[tuple[str, str], Reliability]]:
    table = load_reliability_table(path)
    return table.algorithm_version, table.by_region()


def mdc_table(algorithm_version: str, path: str | None = None) -> dict[tuple[str, str], Reliability]:
    """MDC95 per (region, measure) valid for ``algorithm_version`` (empty when the table is of another version).

    Parameters
    ----------
    algorithm_version : str
    path : str, optional
        The reliability table (default ``imaging/reliability_table.json``).

    Returns
    -------
    dict[(str, str), imaging.reliability.Reliability]
        Keyed by (region, measure); the region ``all_skin`` holds the all-skin values. Empty
        when the table is missing or was measured with another algorithm version.
    """
    try:
        table_version, entries = _read_mdc_table(str(path or RELIABILITY_TABLE_PATH))
    except FileNotFoundError:
        return {}
    return entries if table_version == algorithm_version else {}


def study_mdc_table(algorithm_version: str, path: str | None = None) -> dict[tuple[str, str], Reliability]:
    """:func:`mdc_table` of the deployment's table: ``path``, else the ``RELIABILITY_TABLE_PATH``
    setting, else the published ``imaging/reliability_table.json``."""
    return mdc_table(algorithm_version, path or current_app.config.get("RELIABILITY_TABLE_PATH"))


def change_from_baseline(value: float | None, baseline: float | None) -> tuple[float | None, float | None]:
    """Absolute and percent change of ``value`` from ``baseline``.

    Returns
    -------
    (float or None, float or None)
        ``value - baseline`` (measure units) and ``100 * (value - baseline) / |baseline|``
        (percent; None when baseline is 0); both None when either value is missing.
    """
    if value is None or baseline is None:
        return None, None
    change = value - baseline
    percent = None if baseline == 0 else 100.0 * change / abs(baseline)
    return change, percent


def mdc_flag(change: float | None, mdc95: float | None) -> bool | None:
    """Whether ``|change| > MDC95``; None when the change or the MDC is unknown."""
    if change is None or mdc95 is None:
        return None
    return exceeds_mdc(change, mdc95)


@dataclass(frozen=True)
class SeriesPoint:
    """The value of one measure and region at one milestone."""

    milestone_id: uuid.UUID
    milestone_name: str
    day_offset: int
    days_since_baseline: int
    photo_id: uuid.UUID
    analysis_id: uuid.UUID
    captured_on: dt.date
    value: float | None
    change: float | None
    change_percent: float | None
    exceeds_mdc: bool | None


@dataclass(frozen=True)
class MeasureSeries:
    """One measure in one region over the course's milestones (milestones without a value omitted)."""

    measure: str
    region: str
    mdc95: float | None
    baseline_value: float | None
    points: tuple[SeriesPoint, ...]
    #: The baseline milestone, when its photo gave a value.
    baseline_milestone_id: uuid.UUID | None = None
    #: Where ``mdc95`` comes from (``clinic``, ``all_clinics``, ``recapture_study``; None without
    #: an MDC) and the repeat pairs behind it: see :mod:`backend.services.repeatability`.
    mdc_source: str | None = None
    mdc_n_pairs: int = 0

    @property
    def mdc_label(self) -> str:
        """Where the MDC95 comes from, in short words (chart legends, tables)."""
        return MdcChoice(self.mdc95, self.mdc_source, self.mdc_n_pairs).label

    def baseline_point(self) -> SeriesPoint | None:
        """The point of the baseline milestone, if present."""
        return next((p for p in self.points if p.milestone_id == self.baseline_milestone_id), None)

    def latest(self) -> SeriesPoint | None:
        """The last point after baseline with a value, if any."""
        later = [p for p in self.points if p.milestone_id != self.baseline_milestone_id and p.value is not None]
        return later[-1] if later else None

    def worsened_beyond_mdc(self) -> bool:
        """True when the latest change is beyond the MDC in the worse direction (the measure's ``worse_when``)."""
        point = self.latest()
        if point is None or not point.exceeds_mdc or point.change is None:
            return False
        return (point.change > 0) == (MEASURE_BY_KEY[self.measure].worse_when == "higher")


@dataclass(frozen=True)
class SplitFaceDifference:
    """Treated-side minus control-side value of one measure at one milestone."""

    measure: str
    milestone_id: uuid.UUID
    milestone_name: str
    days_since_baseline: int
    treated_region: str
    control_region: str
    treated_value: float | None
    control_value: float | None
    difference: float | None
    change_from_baseline: float | None


@dataclass(frozen=True)
class ExcludedPhoto:
    """A photo of the course whose results are not in the series, and why."""

    photo_id: uuid.UUID
    milestone_id: uuid.UUID | None
    milestone_name: str | None
    captured_on: dt.date
    reason: str


@dataclass(frozen=True)
class LeftOutValue:
    """A measure of a charted photo left out of its series because it is not comparable with the
    baseline (:func:`imaging.analysis.comparability`: e.g. absolute colour without a colour chart,
    another camera, registration failed), with the imaging's reasons."""

    photo_id: uuid.UUID
    milestone_name: str
    measure: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class CourseProgress:
    """Everything the series API, charts, dashboard and summary show of one course."""

    course_id: uuid.UUID
    patient_id: uuid.UUID
    view: str
    algorithm_version: str
    baseline_date: dt.date
    #: Day 0 of ``days_since_baseline``: the baseline photo's capture date (else the course baseline date).
    day_zero: dt.date
    split_face_treated_side: str | None
    series: tuple[MeasureSeries, ...]
    split_face: tuple[SplitFaceDifference, ...]
    excluded: tuple[ExcludedPhoto, ...]
    milestones: tuple[Milestone, ...] = field(repr=False, default=())
    #: Values of charted photos left out as not comparable (one entry per photo and measure).
    left_out: tuple[LeftOutValue, ...] = ()
    #: Milestone name -> the region its photo's redness is a contrast against
    #: (``imaging.analysis.AnalysisResult.redness_reference``; None: no redness).
    redness_reference: dict[str, str | None] = field(default_factory=dict)

    @property
    def last_milestone_day(self) -> int:
        """Scheduled day of the course's last milestone (the end of every chart's time axis)."""
        return max((m.day_offset for m in self.milestones), default=0)

    def get(self, measure: str, region: str) -> MeasureSeries | None:
        """The series of one measure and region, if it was computed."""
        return next((s for s in self.series if s.measure == measure and s.region == region), None)


@dataclass(frozen=True)
class _Chosen:
    photo: Photo
    analysis_id: uuid.UUID
    milestone: Milestone


def _choose_photos(course: TreatmentCourse, view: str, version: str) -> tuple[dict[uuid.UUID, _Chosen], list[ExcludedPhoto]]:
    """The photo giving each milestone's value, and the photos left out with their reason.

    Which photo counts is :func:`backend.services.photos.photo_standings` (the one rule); a counting
    photo without an analysis of ``version`` with a face is left out as ``not_analysed`` /
    ``no_face``. Deleted and superseded photos are not listed.
    """
    milestones = {m.id: m for m in course.milestones}
    photos = list(db.session.scalars(
        select(Photo).where(Photo.course_id == course.id, Photo.view == view)
        .order_by(Photo.created_at.desc(), Photo.id.desc())
    ))
    standings = photo_standings(photos)
    photos = [p for p in photos if standings[p.id].counts or standings[p.id].listed]
    analysis_rows = db.session.execute(
        select(PhotoAnalysis.photo_id, PhotoAnalysis.id, PhotoAnalysis.face_found)
        .where(PhotoAnalysis.photo_id.in_([p.id for p in photos]), PhotoAnalysis.algorithm_version == version)
    ).all() if photos else []
    analyses = {photo_id: analysis_id for photo_id, analysis_id, _ in analysis_rows}
    face_found = {analysis_id: found for _, analysis_id, found in analysis_rows}
    chosen: dict[uuid.UUID, _Chosen] = {}
    excluded: list[ExcludedPhoto] = []
    for photo in photos:
        milestone = milestones.get(photo.milestone_id) if photo.milestone_id else None
        standing = standings[photo.id]
        if not standing.counts:
            reason = standing.reason
        elif photo.id not in analyses:
            reason = "not_analysed"
        elif not face_found.get(analyses[photo.id], False):
            reason = "no_face"
        else:
            chosen[milestone.id] = _Chosen(photo, analyses[photo.id], milestone)
            continue
        excluded.append(ExcludedPhoto(photo.id, milestone.id if milestone else None,
                                      milestone.name if milestone else None, photo.capture_date, reason))
    excluded.sort(key=lambda e: (e.captured_on, str(e.photo_id)))
    return chosen, excluded


def _measurement_values(analysis_ids: Iterable[uuid.UUID], measures: Sequence[str],
                        regions: Sequence[str]) -> dict[tuple[uuid.UUID, str, str], float | None]:
    ids = list(analysis_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(PhotoMeasurement.analysis_id, PhotoMeasurement.region, PhotoMeasurement.measure, PhotoMeasurement.value)
        .where(PhotoMeasurement.analysis_id.in_(ids), PhotoMeasurement.measure.in_(list(measures)),
               PhotoMeasurement.region.in_(list(regions)))
    ).all()
    return {(a, r, m): (v if v is None or math.isfinite(v) else None) for a, r, m, v in rows}


def _summaries(analysis_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Analysis id -> its stored summary (the imaging's per-measure ``comparability``, its
    ``redness_reference``, ...)."""
    ids = list(analysis_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(PhotoAnalysis.id, PhotoAnalysis.summary).where(PhotoAnalysis.id.in_(ids))).all()
    return {analysis_id: summary or {} for analysis_id, summary in rows}


def not_comparable_reasons(comparability: dict, measure: str) -> tuple[str, ...]:
    """Why a measure of an analysis may not be compared with the baseline (empty when it may)."""
    entry = comparability.get(measure)
    if entry is None or entry.get("comparable", True):
        return ()
    return tuple(entry.get("reasons") or ("not_comparable",))


def course_progress(course: TreatmentCourse, *, view: str = "front", algorithm_version: str = ALGORITHM_VERSION,
                    measures: Sequence[str] = SERIES_MEASURES, regions: Sequence[str] = SERIES_REGIONS,
                    mdc_path: str | None = None) -> CourseProgress:
    """Compute a course's progress series (see the module docstring for the rules).

    Parameters
    ----------
    course : TreatmentCourse
        Already checked to be visible to the caller.
    view : str
        Photo view (``front``, ``left``, ``right``).
    algorithm_version : str
        Only analyses of this version are used.
    measures, regions : sequence of str
        Subsets of :data:`SERIES_MEASURES` and :data:`SERIES_REGIONS`.
    mdc_path : str, optional
        Reliability table to read; default the app's ``RELIABILITY_TABLE_PATH`` setting if
        set, else the published ``imaging/reliability_table.json``.

    Returns
    -------
    CourseProgress
    """
    milestones = tuple(sorted(course.milestones, key=lambda m: m.day_offset))
    chosen, excluded = _choose_photos(course, view, algorithm_version)
    values = _measurement_values((c.analysis_id for c in chosen.values()), measures, regions)
    summaries = _summaries(c.analysis_id for c in chosen.values())
    comparability = {analysis_id: summary.get("comparability") or {} for analysis_id, summary in summaries.items()}
    left_out = [LeftOutValue(c.photo.id, c.milestone.name, measure, reasons)
                for c in sorted(chosen.values(), key=lambda c: c.milestone.day_offset) for measure in measures
                if (reasons := not_comparable_reasons(comparability.get(c.analysis_id, {}), measure))]
    # A value the imaging says is not comparable is never charted, flagged or exported as change.
    values = {key: value for key, value in values.items()
              if not not_comparable_reasons(comparability.get(key[0], {}), key[2])}
    mdcs = study_mdc_table(algorithm_version, mdc_path)
    mdc_for = mdc_provider(course.patient.clinic_id, algorithm_version, mdcs)
    baseline_milestone = milestones[0] if milestones else None
    baseline_choice = chosen.get(baseline_milestone.id) if baseline_milestone else None
    # Day 0 is the baseline photo's capture date: changes are relative to that photo.
    day_zero = baseline_choice.photo.capture_date if baseline_choice else course.baseline_date
    ordered = [chosen[m.id] for m in milestones if m.id in chosen]

    series = []
    for measure in measures:
        for region in regions:
            mdc = mdc_for(region, measure)
            baseline_value = values.get((baseline_choice.analysis_id, region, measure)) if baseline_choice else None
            points = []
            for choice in ordered:
                value = values.get((choice.analysis_id, region, measure))
                change, percent = change_from_baseline(value, baseline_value)
                if choice is baseline_choice:
                    change, percent = (0.0, 0.0) if value is not None else (None, None)
                points.append(SeriesPoint(
                    milestone_id=choice.milestone.id, milestone_name=choice.milestone.name,
                    day_offset=choice.milestone.day_offset,
                    days_since_baseline=(choice.photo.capture_date - day_zero).days,
                    photo_id=choice.photo.id, analysis_id=choice.analysis_id,
                    captured_on=choice.photo.capture_date, value=value, change=change,
                    change_percent=percent, exceeds_mdc=mdc_flag(change, mdc.mdc95),
                ))
            series.append(MeasureSeries(measure, region, mdc.mdc95, baseline_value, tuple(points),
                                        baseline_choice.milestone.id if baseline_choice else None,
                                        mdc_source=mdc.source, mdc_n_pairs=mdc.n_pairs))

    split = split_face_differences(course, ordered, baseline_choice, values, measures, day_zero)
    return CourseProgress(
        course_id=course.id, patient_id=course.patient_id, view=view, algorithm_version=algorithm_version,
        baseline_date=course.baseline_date, day_zero=day_zero, split_face_treated_side=course.split_face_treated_side,
        series=tuple(series), split_face=split, excluded=tuple(excluded), milestones=milestones,
        left_out=tuple(left_out),
        redness_reference={c.milestone.name: summaries.get(c.analysis_id, {}).get("redness_reference")
                           for c in ordered},
    )


def split_face_differences(course: TreatmentCourse, ordered: Sequence[_Chosen], baseline_choice: _Chosen | None,
                           values: dict[tuple[uuid.UUID, str, str], float | None], measures: Sequence[str],
                           day_zero: dt.date) -> tuple[SplitFaceDifference, ...]:
    """Treated minus control cheek per milestone and measure (empty for whole-face courses)."""
    treated_side, control_side = course.split_face_treated_side, course.split_face_control_side
    if treated_side is None or control_side is None:
        return ()
    treated, control = f"{treated_side}_cheek", f"{control_side}_cheek"

    def difference(choice: _Chosen | None, measure: str) -> tuple[float | None, float | None, float | None]:
        if choice is None:
            return None, None, None
        t = values.get((choice.analysis_id, treated, measure))
        c = values.get((choice.analysis_id, control, measure))
        return t, c, (t - c if t is not None and c is not None else None)

    out = []
    for measure in measures:
        _, _, baseline_difference = difference(baseline_choice, measure)
        for choice in ordered:
            t, c, d = difference(choice, measure)
            change = d - baseline_difference if d is not None and baseline_difference is not None else None
            out.append(SplitFaceDifference(
                measure=measure, milestone_id=choice.milestone.id, milestone_name=choice.milestone.name,
                days_since_baseline=(choice.photo.capture_date - day_zero).days,
                treated_region=treated, control_region=control, treated_value=t, control_value=c,
                difference=d, change_from_baseline=change,
            ))
    return tuple(out)


@dataclass(frozen=True)
class TimelineEvent:
    """An assessment or adverse event placed on the days-since-baseline axis."""

    days_since_baseline: int
    on: dt.date
    kind: str
    label: str
    #: The GAIS score of an assessment (1 = very much improved .. 5 = worse); None otherwise.
    gais: int | None = None
    #: Who rated an assessment (``clinician`` or ``patient``); None otherwise.
    rater_role: str | None = None


def course_timeline(course: TreatmentCourse, day_zero: dt.date) -> list[TimelineEvent]:
    """GAIS/satisfaction assessments (at their milestone's target date) and adverse events (at onset).

    Returns
    -------
    list of TimelineEvent, sorted by date; ``kind`` is ``assessment`` or ``adverse_event``.
    """
    events = []
    assessments = db.session.scalars(select(Assessment).where(Assessment.course_id == course.id))
    for assessment in assessments:
        on = assessment.milestone.window.target
        label = f"GAIS {assessment.gais} ({assessment.rater_role})"
        if assessment.satisfaction is not None:
            label += f", satisfaction {assessment.satisfaction}/10"
        events.append(TimelineEvent((on - day_zero).days, on, "assessment", label, assessment.gais,
                                     assessment.rater_role))
    for event in db.session.scalars(select(AdverseEvent).where(AdverseEvent.course_id == course.id)):
        label = f"{event.event_type.replace('_', ' ')} ({event.severity})"
        events.append(TimelineEvent((event.onset_date - day_zero).days, event.onset_date, "adverse_event", label))
    events.sort(key=lambda e: (e.on, e.kind, e.label))
    return events


def region_phrase(region: str) -> str:
    """Where, in words addressed to the patient (``left_cheek`` -> ``on your left cheek``)."""
    return f"on {REGION_BY_KEY[region].in_words}"


def plain_words(measure: str, region: str, change: float, change_percent: float | None,
                mdc95: float | None, baseline_value: float, exceeds: bool | None) -> str:
    """One result in plain words, with the same numbers the charts show.

    Parameters
    ----------
    measure, region : str
    change : float
        Latest minus baseline value (measure units).
    change_percent : float or None
        Percent of the baseline value (None when the baseline is 0: units are used instead).
    mdc95 : float or None
        The measure's MDC95 (units); None when unknown.
    baseline_value : float
    exceeds : bool or None
        ``|change| > MDC95``.

    Returns
    -------
    str
        E.g. "Redness on your left cheek is 12 % lower than at baseline; this is more than
        the measurement noise (MDC 5 %)."
    """
    label = MEASURE_BY_KEY[measure].label
    use_percent = change_percent is not None
    size = abs(change_percent) if use_percent else abs(change)
    unit = " %" if use_percent else f" {MEASURE_BY_KEY[measure].unit}"
    if round(size) == 0 and (not use_percent or abs(change_percent) < 0.5):
        text = f"{label} {region_phrase(region)} is about the same as at baseline"
    else:
        direction = "lower" if change < 0 else "higher"
        text = f"{label} {region_phrase(region)} is {size:.0f}{unit} {direction} than at baseline"
    if mdc95 is None or exceeds is None:
        return text + "."
    mdc_size = 100.0 * mdc95 / abs(baseline_value) if use_percent else mdc95
    noise = f"(MDC {mdc_size:.0f}{unit})"
    if exceeds:
        return f"{text}; this is more than the measurement noise {noise}."
    return f"{text}; this is within the measurement noise {noise}, so it may not be a real change yet."
