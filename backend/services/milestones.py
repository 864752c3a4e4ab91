"""Milestone schedules: windows relative to a course's baseline date, and what is due when.

A milestone is a visit at ``baseline + day_offset`` days; it may be done from
``window_before_days`` days before to ``window_after_days`` days after that target date
(both ends inclusive). A milestone is *completed* once something marks it so, through
:func:`mark_milestone_completed`: a follow-up assessment, a visit a clinician records
(:func:`record_visit`), or - from the photo pipeline - a usable photo. The first completion
wins; :func:`clear_milestone_completion` undoes one (e.g. its photo was deleted).

Default schedule (used when a course is created without one)::

    name        day   window
    baseline      0   -0 / +3
    2_weeks      14   -3 / +3
    1_month      30   -5 / +5
    3_months     90  -14 / +14
    6_months    180  -14 / +14
"""
from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backend.errors import Conflict, ValidationFailed
from backend.models.clinical import Milestone, MilestoneWindow, TreatmentCourse
from schemas.clinical import MAX_MILESTONES, SCHEDULE_STATUSES


@dataclass(frozen=True)
class MilestoneSpec:
    """One milestone of a schedule, before it is stored.

    Attributes
    ----------
    name : str
        Unique within the course, 1..40 characters.
    day_offset : int
        Days after baseline of the target visit, >= 0.
    window_before_days, window_after_days : int
        Days the visit may be early / late, >= 0 (the API caps offsets and windows).
    """

    name: str
    day_offset: int
    window_before_days: int
    window_after_days: int


DEFAULT_SCHEDULE: tuple[MilestoneSpec, ...] = (
    MilestoneSpec("baseline", 0, 0, 3),
    MilestoneSpec("2_weeks", 14, 3, 3),
    MilestoneSpec("1_month", 30, 5, 5),
    MilestoneSpec("3_months", 90, 14, 14),
    MilestoneSpec("6_months", 180, 14, 14),
)


#: Problem type of a schedule that breaks a rule (its field errors list every broken rule).
INVALID_SCHEDULE = "invalid-schedule"


def schedule_errors(specs: Sequence[MilestoneSpec]) -> list[str]:
    """List what is wrong with a schedule (empty when valid).

    Parameters
    ----------
    specs : sequence of MilestoneSpec
        In the order given by the client.

    Returns
    -------
    list of str
        Human-readable messages: empty schedule, too many milestones, duplicate names,
        offsets not strictly increasing, a window opening before baseline (day 0), or
        windows that overlap (a visit must belong to one milestone only).
    """
    errors: list[str] = []
    if not specs:
        return ["a schedule needs at least one milestone"]
    if len(specs) > MAX_MILESTONES:
        errors.append(f"at most {MAX_MILESTONES} milestones")
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        errors.append(f"milestone names must be unique: {', '.join(duplicates)}")
    for earlier, later in itertools.pairwise(specs):
        if later.day_offset <= earlier.day_offset:
            errors.append(
                f"milestones must be sorted by day_offset: {later.name!r} ({later.day_offset}) "
                f"after {earlier.name!r} ({earlier.day_offset})"
            )
        elif later.day_offset - later.window_before_days <= earlier.day_offset + earlier.window_after_days:
            errors.append(f"windows of {earlier.name!r} and {later.name!r} overlap")
    for spec in specs:
        if spec.day_offset - spec.window_before_days < 0:
            errors.append(f"window of {spec.name!r} opens before baseline (day 0)")
    return errors


def validate_schedule(specs: Sequence[MilestoneSpec]) -> None:
    """Raise :class:`ValidationFailed` listing what :func:`schedule_errors` finds, if anything."""
    errors = schedule_errors(specs)
    if errors:
        raise ValidationFailed(errors={"milestones": errors}, slug=INVALID_SCHEDULE)


def milestone_status(window: MilestoneWindow, completed: bool, today: dt.date) -> str:
    """Classify one milestone on a given day.

    Returns
    -------
    str
        ``completed`` if completed (whenever that happened); otherwise ``due`` while the window
        is open (``opens <= today <= closes``), ``upcoming`` before it opens, ``overdue`` after
        it closed.
    """
    if completed:
        return "completed"
    if today < window.opens:
        return "upcoming"
    if today > window.closes:
        return "overdue"
    return "due"


def default_specs() -> list[MilestoneSpec]:
    """The default schedule as a new list (callers may not mutate the module constant)."""
    return list(DEFAULT_SCHEDULE)


def replace_schedule(course: TreatmentCourse, specs: Sequence[MilestoneSpec]) -> list[Milestone]:
    """Set a course's schedule, keeping milestones whose name stays (with their completion).

    Milestones absent from ``specs`` are removed unless they are completed or have
    assessments attached, which raises :class:`Conflict` (history is not silently lost).

    Returns
    -------
    list of Milestone
        The course's milestones in schedule order (new ones not yet flushed).
    """
    validate_schedule(specs)
    existing = {milestone.name: milestone for milestone in course.milestones}
    wanted = {spec.name for spec in specs}
    kept_history = [
        name
        for name, milestone in existing.items()
        if name not in wanted and (milestone.completed_at is not None or milestone.assessments)
    ]
    if kept_history:
        raise Conflict(errors={"milestones": [
            f"milestone {name!r} has a completed visit or assessments and cannot be removed"
            for name in sorted(kept_history)]}, slug=INVALID_SCHEDULE)
    for name, milestone in existing.items():
        if name not in wanted:
            course.milestones.remove(milestone)
    ordered: list[Milestone] = []
    for spec in specs:
        milestone = existing.get(spec.name)
        if milestone is None:
            milestone = Milestone(name=spec.name)
            course.milestones.append(milestone)
        milestone.day_offset = spec.day_offset
        milestone.window_before_days = spec.window_before_days
        milestone.window_after_days = spec.window_after_days
        ordered.append(milestone)
    return ordered


#: The server's UTC date may be a day behind a patient's local date (time zones reach
#: UTC+14), so "not in the future" and "window open" allow one day ahead of UTC.
LOCAL_DATE_SLACK = dt.timedelta(days=1)


def ensure_window_open(milestone: Milestone, today: dt.date, field: str) -> None:
    """Refuse to complete or rate a milestone before its window opens.

    Parameters
    ----------
    milestone : Milestone
    today : datetime.date
        Today in UTC (:data:`LOCAL_DATE_SLACK` is added).
    field : str
        Request field the problem's error is keyed by.

    Raises
    ------
    ValidationFailed (``milestone-not-open``)
    """
    opens = milestone.window.opens
    if today + LOCAL_DATE_SLACK < opens:
        raise ValidationFailed(errors={field: [f"The window of {milestone.name!r} opens on {opens.isoformat()}."]},
                               slug="milestone-not-open")


def record_visit(milestone: Milestone, *, today: dt.date, at: dt.datetime) -> bool:
    """A clinician records that a milestone's visit happened (e.g. baseline photos taken in
    clinic before the photo pipeline exists). Completes the milestone unless it already is.

    Returns
    -------
    bool
        True if this call completed it.
    """
    ensure_window_open(milestone, today, "milestone_id")
    return mark_milestone_completed(milestone, via="visit", at=at)


def mark_milestone_completed(
    milestone: Milestone, *, via: str, at: dt.datetime, source_id: str | None = None
) -> bool:
    """Mark a milestone completed unless it already is (the first completion wins).

    Parameters
    ----------
    milestone : Milestone
    via : str
        What completed it: ``assessment`` now; the photo pipeline uses ``photo``.
    at : datetime.datetime
        UTC-aware time of the completing event.
    source_id : str or None
        Id of the completing object (assessment id, photo id).

    Returns
    -------
    bool
        True if this call completed it, False if it was already completed.
    """
    if milestone.completed_at is not None:
        return False
    milestone.completed_at = at
    milestone.completed_via = via
    milestone.completed_source_id = source_id
    return True


def clear_milestone_completion(milestone: Milestone) -> None:
    """Undo a completion (e.g. when the only usable photo is deleted after consent withdrawal)."""
    milestone.completed_at = None
    milestone.completed_via = None
    milestone.completed_source_id = None


@dataclass(frozen=True)
class ScheduleItem:
    """One milestone of one course, classified on a given day."""

    course_id: str
    milestone_id: str
    name: str
    day_offset: int
    target_date: dt.date
    window_opens: dt.date
    window_closes: dt.date
    status: str
    completed_at: dt.datetime | None


def schedule_items(courses: Iterable[TreatmentCourse], today: dt.date) -> dict[str, list[ScheduleItem]]:
    """Classify every milestone of the given courses on ``today``.

    Parameters
    ----------
    courses : iterable of TreatmentCourse
        Their milestones are read (lazy-loaded if not already).
    today : datetime.date
        The day to classify on (the patient's local date when the app sends it).

    Returns
    -------
    dict
        ``{status: [ScheduleItem, ...]}`` for every status in :data:`SCHEDULE_STATUSES`, each list sorted
        by window opening date then course id.
    """
    grouped: dict[str, list[ScheduleItem]] = {status: [] for status in SCHEDULE_STATUSES}
    for course in courses:
        for milestone in course.milestones:
            window = milestone.window
            status = milestone_status(window, milestone.completed_at is not None, today)
            grouped[status].append(
                ScheduleItem(
                    course_id=course.id,
                    milestone_id=milestone.id,
                    name=milestone.name,
                    day_offset=milestone.day_offset,
                    target_date=window.target,
                    window_opens=window.opens,
                    window_closes=window.closes,
                    status=status,
                    completed_at=milestone.completed_at,
                )
            )
    for items in grouped.values():
        items.sort(key=lambda item: (item.window_opens, item.course_id))
    return grouped
