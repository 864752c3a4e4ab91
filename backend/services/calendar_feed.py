"""The patient's personal calendar feed: each photo milestone's window as an all-day event.

Calendar programs subscribe to ``webcal://.../api/v1/calendar/<token>.ics`` and fetch it
without signing in, so the token in the URL is the credential. It is random (32 bytes), only
its keyed hash is stored (HMAC-SHA-256 with the app's secret key, as invitation secrets), it is
replaced by a new one when the patient asks (the old URL stops working at once) and revoked
on request. The feed holds no health data: neutral titles ("Skin photo check-in: 2 weeks"),
the windows' dates and an id per event; no name, no product, no indication.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

from sqlalchemy import select, update

from backend.errors import NotFound
from backend.extensions import db
from backend.models.accounts import User
from backend.models.calendar import CalendarFeed
from backend.models.clinical import Patient, TreatmentCourse
from backend.services.enrolment import secret_hash
from backend.services.links import public_url

FEED_TOKEN_BYTES = 32
#: Courses whose milestones are still ahead of the patient (as ``GET /me/schedule``).
SCHEDULED_COURSE_STATUSES = ("planned", "active")
#: How often calendar programs should fetch again (RFC 7986 REFRESH-INTERVAL).
REFRESH_INTERVAL = dt.timedelta(hours=12)


def feed_path(token: str) -> str:
    """The feed's path (the token is URL-safe base64)."""
    return f"/api/v1/calendar/{token}.ics"


def feed_urls(token: str) -> dict[str, str]:
    """``webcal`` (subscribe) and ``https`` (download) addresses of a feed token."""
    return {"webcal_url": public_url(feed_path(token), scheme="webcal"), "url": public_url(feed_path(token))}


def _hash(token: str) -> str:
    return secret_hash("calendar", token)


def revoke_feeds(patient: Patient, now: dt.datetime) -> int:
    """Stop every live feed URL of the patient; returns how many were live."""
    return db.session.execute(
        update(CalendarFeed)
        .where(CalendarFeed.patient_id == patient.id, CalendarFeed.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def create_feed(patient: Patient, now: dt.datetime) -> tuple[CalendarFeed, str]:
    """A new feed token for the patient; earlier feed URLs stop working.

    Returns
    -------
    (CalendarFeed, str)
        The row and the token (shown only now: only its hash is stored).
    """
    revoke_feeds(patient, now)
    token = secrets.token_urlsafe(FEED_TOKEN_BYTES)
    feed = CalendarFeed(patient_id=patient.id, token_hash=_hash(token), created_at=now, updated_at=now)
    db.session.add(feed)
    db.session.flush()
    return feed, token


def live_feed_of(patient: Patient) -> CalendarFeed | None:
    """The patient's live feed row, if any (the token itself is not recoverable)."""
    return db.session.scalar(
        select(CalendarFeed).where(CalendarFeed.patient_id == patient.id, CalendarFeed.revoked_at.is_(None))
    )


def feed_by_token(token: str, now: dt.datetime) -> tuple[CalendarFeed, Patient]:
    """The live feed of this token and its patient; the fetch time is noted.

    Raises
    ------
    NotFound
        Unknown or revoked token, or the patient's login is deactivated (one answer for all).
    """
    feed = db.session.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == _hash(token)))
    if feed is None or feed.revoked_at is not None:
        raise NotFound("calendar feed")
    patient = db.session.get(Patient, feed.patient_id)
    login = db.session.get(User, patient.user_id) if patient.user_id is not None else None
    if login is None or not login.is_active:
        raise NotFound("calendar feed")
    feed.last_fetched_at = now
    return feed, patient


def _title(milestone_name: str) -> str:
    return "Skin photo check-in: " + milestone_name.replace("_", " ")


def milestone_calendar(courses: Iterable[TreatmentCourse], now: dt.datetime) -> bytes:
    """RFC 5545 calendar of the milestones not yet completed in the given courses.

    Each milestone is one all-day event over its window (``DTEND`` is exclusive: the day after
    the window closes) with a reminder at 09:00 on the day the window opens.
    """
    import icalendar

    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//skintrack//patient app//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "skintrack photo check-ins")
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", REFRESH_INTERVAL)
    host = public_url("").split("://", 1)[1].split("/", 1)[0]
    for course in courses:
        for milestone in course.milestones:
            if milestone.completed_at is not None:
                continue
            window = milestone.window
            event = icalendar.Event()
            event.add("uid", f"milestone-{milestone.id}@{host}")
            event.add("dtstamp", now)
            event.add("summary", _title(milestone.name))
            event.add("description", (
                f"Take your check-in photos in the skintrack app between {window.opens:%d %B %Y} "
                f"and {window.closes:%d %B %Y} (best on {window.target:%d %B %Y})."))
            event.add("dtstart", window.opens)
            event.add("dtend", window.closes + dt.timedelta(days=1))
            event.add("transp", "TRANSPARENT")
            alarm = icalendar.Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", _title(milestone.name))
            alarm.add("trigger", dt.timedelta(hours=9))
            event.add_component(alarm)
            calendar.add_component(event)
    return calendar.to_ical()


def scheduled_courses(patient: Patient) -> list[TreatmentCourse]:
    """The patient's courses whose milestones belong in the feed."""
    return [course for course in patient.courses if course.status in SCHEDULED_COURSE_STATUSES]
