"""API endpoints made for the patient app (``/app/``): live preview checks and the personal
calendar feed. Like everything the app uses, they are public API (a native app can use them).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from backend import audit
from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import audit_change, clinical_blueprint
from backend.extensions import limiter, now
from backend.http.media_types import accepts
from backend.http.problems import problem
from backend.services import access
from backend.services import calendar_feed as feed_service
from backend.services import preview as preview_service
from backend.unit_of_work import transactional
from schemas.patient_app import CalendarFeedSchema, PreviewCheckSchema

blp = clinical_blueprint("patient_app_api", "For the patient app: live framing hints, personal calendar feed.")

#: Frames the app may check per client address (it sends about two a second while framing).
PREVIEW_RATE_LIMIT = "300 per minute"
#: Feed fetches per client address (calendar programs poll every few hours).
FEED_RATE_LIMIT = "30 per minute"
_FRAME_BODY = {
    "required": True,
    "description": "A downscaled camera frame (JPEG, about 640x480), upright, not mirrored.",
    "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
}


@blp.route("/me/preview-check", methods=["POST"])
@accepts("image/jpeg", "image/png", "image/webp")
@auth_required("patient")
@limiter.limit(PREVIEW_RATE_LIMIT)
@blp.doc(requestBody=_FRAME_BODY)
@blp.response(200, PreviewCheckSchema)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
def preview_check() -> dict[str, Any]:
    """Check one camera frame while the patient frames a photo: the face box (fractions of the
    frame), pose, skin lightness, left/right light balance and hints in plain words.
    Nothing is stored or audited: the frame is not a photo of the record."""
    data = request.get_data(cache=False)
    if not data:
        problem(400, "The request body must be the frame's bytes.", type_="empty-body")
    if len(data) > preview_service.MAX_PREVIEW_BYTES:
        problem(413, "Send a downscaled frame (about 640x480) for the preview check.", type_="frame-too-large")
    return preview_service.check_preview_frame(data)


@blp.route("/me/calendar-feed", methods=["GET"])
@auth_required("patient")
@transactional
@blp.response(200, CalendarFeedSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_calendar_feed() -> dict[str, Any]:
    """Whether the patient has a live calendar feed (the address is shown only when created)."""
    patient = access.own_patient_or_403(current_user())
    feed = feed_service.live_feed_of(patient)
    return {"active": feed is not None, "created_at": feed.created_at if feed else None,
            "last_fetched_at": feed.last_fetched_at if feed else None}


@blp.route("/me/calendar-feed", methods=["POST"])
@auth_required("patient")
@transactional
@blp.response(201, CalendarFeedSchema)
@blp.alt_response(404, response="NOT_FOUND")
def create_calendar_feed() -> dict[str, Any]:
    """A new personal calendar address (`webcal_url` to subscribe); an earlier address stops
    working. The address is the feed's only key: it is shown only in this answer."""
    patient = access.own_patient_or_403(current_user())
    feed, token = feed_service.create_feed(patient, now())
    audit_change("create", "calendar_feed", feed.id, patient_id=str(patient.id))
    return {"active": True, "created_at": feed.created_at, "last_fetched_at": None, **feed_service.feed_urls(token)}


@blp.route("/me/calendar-feed", methods=["DELETE"])
@auth_required("patient")
@transactional
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND")
def revoke_calendar_feed() -> None:
    """Stop the calendar address: calendar programs get 404 from now on."""
    patient = access.own_patient_or_403(current_user())
    if feed_service.revoke_feeds(patient, now()):
        audit.record("calendar_feed.revoke", "patient", patient.id, patient_id=str(patient.id))


@blp.route("/calendar/<string:token>.ics", methods=["GET"])
@limiter.limit(FEED_RATE_LIMIT)
@transactional
@blp.response(200, description="RFC 5545 calendar of the photo milestones' windows.", content_type="text/calendar")
@blp.alt_response(404, response="NOT_FOUND")
def calendar_feed(token: str) -> Response:
    """The personal calendar feed (no sign-in: the address is the key). Each fetch is audited
    with the patient's id, never the token."""
    feed, patient = feed_service.feed_by_token(token, now())
    audit.record("calendar_feed.read", "patient", patient.id, actor=None, clinic_id=patient.clinic_id,
                 feed_id=str(feed.id))
    body = feed_service.milestone_calendar(feed_service.scheduled_courses(patient), now())
    return Response(body, mimetype="text/calendar", headers={"Content-Disposition": 'inline; filename="skintrack.ics"'})
