"""Authorisation matrix: every route of the app x every kind of caller.

The target objects belong to ``world.patient`` (clinic A) unless an entry says otherwise.
Callers relative to them:

- ``patient_own``: the patient themselves;
- ``patient_other``: another patient of the same clinic;
- ``clinician_same`` / ``clinician_other``: a clinician of clinic A / clinic B;
- ``admin_same`` / ``admin_other``: a clinic admin of clinic A / clinic B;
- ``researcher``: a researcher of clinic A (granted on the study of clinic A, no identified data).

Expectation: a role the endpoint never serves -> 403; an allowed role that cannot see the
object (another patient's, another clinic's) -> 404; an allowed role that can -> the
endpoint's success status. List endpoints answer 200 to allowed roles but must not contain
objects the caller may not see. Routes without sign-in give every caller the same answer.
Dashboard pages use a session instead of a bearer token: clinicians and admins sign in,
every other role cannot, so a page sends them to the sign-in form (302).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from backend.extensions import db
from backend.models.clinical import TreatmentCourse
from backend.models.jobs import Job
from backend.models.photos import Photo, PhotoUpload
from backend.models.studies import Study, StudyClinic, StudyGrant
from backend.storage import current_storage
from tests import factories
from tests.backend.clock import FakeClock
from tests.backend.dashboard_helpers import form_csrf, sign_in
from tests.backend.photo_helpers import grant_photo_consent
from tests.backend.progress_helpers import add_overlay, add_result

pytestmark = pytest.mark.usefixtures("clock")  # the matrix runs on day 14 of the factory course (below)

PROBLEM = "application/problem+json"

#: Caller -> (world attribute of the user, sees world.patient's records as which role).
CALLERS: dict[str, tuple[str, bool]] = {
    "patient_own": ("patient_user", True),
    "patient_other": ("other_patient_user", False),
    "clinician_same": ("clinician_a", True),
    "clinician_other": ("clinician_b", False),
    "admin_same": ("admin_a", True),
    "admin_other": ("admin_b", False),
    "researcher": ("researcher", False),
}

PATIENT, CLINICIAN, ADMIN, RESEARCHER = "patient", "clinician", "admin", "researcher"
READERS = (PATIENT, CLINICIAN, ADMIN)
ANY_ROLE = (PATIENT, CLINICIAN, ADMIN, RESEARCHER)
#: Who sees an object: world.patient's records, or what only clinic A's staff see.
PATIENT_RECORD, CLINIC_A_STAFF = "patient record", "clinic A staff"
#: Routes that need no sign-in.
NO_SIGN_IN = None


@dataclass(frozen=True)
class Endpoint:
    """One route of the matrix.

    ``request(world)`` returns (path, body or None); the world carries the caller
    (``world.caller``) and the app (``world.app``) for requests that depend on them. ``roles``
    may use it (``NO_SIGN_IN``: anyone, signed in or not); ``success`` is the status for a
    caller that may; ``listed`` is set for list endpoints (200 for every allowed role) and
    returns the id (or text) that must be present only for callers that see the target;
    ``overrides`` give the status of callers where the rule does not (a creator-only object,
    a study only its owning clinic administers). ``needs`` names world parts to add first.
    """

    endpoint: str
    method: str
    request: Callable[[Any], tuple[str, Any]]
    roles: tuple[str, ...] | None
    success: int = 200
    listed: Callable[[Any], str] | None = None
    #: Whether another object's caller can even address it (False for /me routes).
    addresses_object: bool = True
    visible_to: str = PATIENT_RECORD
    overrides: Mapping[str, int] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    #: Media type of a body that is not JSON (bytes).
    content_type: str | None = None


def _milestone(world: Any, name: str) -> str:
    return str(next(m.id for m in world.course.milestones if m.name == name))


def _png(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg() -> bytes:
    """A small decodable JPEG without a face: accepted, stored and flagged unusable."""
    buffer = io.BytesIO()
    Image.new("RGB", (90, 120), (150, 110, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


# ------------------------------------------------------------------ world parts

def _add_photo(app, world) -> None:
    """A stored photo of world.patient with an analysis, a job and overlays (incl. a before/after pair)."""
    world.photo_id = add_result(app, world.course, "baseline", dt.date(2026, 3, 1), {("all_skin", "redness"): 1.0})
    with app.app_context():
        photo = db.session.get(Photo, world.photo_id)
        stored = current_storage().put(f"{photo.prefix}original.jpg", _jpeg(), "image/jpeg")
        job = Job(kind="analyse_photo", payload={"photo_id": str(photo.id)}, status="done",
                  run_after=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
        db.session.add(job)
        db.session.flush()
        photo.storage_key, photo.size_bytes, photo.analysis_job_id = stored.key, stored.size, job.id
        db.session.commit()
    for name in ("redness", "pigment_spots", "wrinkles", "regions"):
        add_overlay(app, world.photo_id, name, _png())
    add_overlay(app, world.photo_id, "before_after", _png(2 * 40 + 8))


def _add_consent(app, world) -> None:
    grant_photo_consent(app, world.patient, world.clinician_a)


def _add_upload(app, world) -> None:
    """A two-phase upload by clinician_a for world.patient whose bytes arrived."""
    data = _jpeg()
    with app.app_context():
        upload = PhotoUpload(
            id=uuid.uuid4(), patient_id=world.patient.id, course_id=world.course.id,
            created_by_user_id=world.clinician_a.id, capture={"course_id": str(world.course.id), "view": "front"},
            declared_size=len(data), declared_content_type="image/jpeg", status="pending",
            expires_at=dt.datetime(2026, 3, 16, tzinfo=dt.timezone.utc))
        upload.staging_key = f"uploads/{upload.id}/object"
        current_storage().put(upload.staging_key, data, "image/jpeg")
        db.session.add(upload)
        db.session.commit()
        world.upload_id = upload.id


def _add_signed_put(app, world) -> None:
    """A signed local upload URL (what ``presign_put`` hands out) and the bytes it takes."""
    world.put_bytes = _jpeg()
    with app.test_request_context():
        signed = current_storage().presign_put(f"uploads/{uuid.uuid4()}/object", "image/jpeg",
                                               len(world.put_bytes), 900)
    world.put_path = signed.url.split("://", 1)[1].split("/", 1)[1]


def _add_study(app, world) -> None:
    """A study owned by clinic A, the researcher granted, and a built export."""
    from backend.services.export import package
    from backend.services.export.options import ExportOptions

    with app.app_context():
        study = Study(id=uuid.uuid4(), title="Study A", owner_clinic_id=world.clinic_a.id,
                      created_by_user_id=world.admin_a.id)
        study.clinics.append(StudyClinic(clinic_id=world.clinic_a.id, added_by_user_id=world.admin_a.id,
                                         created_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)))
        study.grants.append(StudyGrant(researcher_user_id=world.researcher.id, granted_by_user_id=world.admin_a.id))
        db.session.add(study)
        db.session.flush()
        export = package.request_export(study, world.researcher.id, ExportOptions())
        db.session.commit()  # the inline job backend builds the export now
        world.study_id, world.export_id = study.id, export.id


#: A public address literal: registering and re-enabling resolve nothing and send nothing.
PUBLIC_WEBHOOK_URL = "https://93.184.216.34/hooks"


def _add_webhook(app, world) -> None:
    """A webhook endpoint of clinic A for an event no matrix request causes."""
    from backend.models.webhooks import WebhookEndpoint

    with app.app_context():
        endpoint = WebhookEndpoint(clinic_id=world.clinic_a.id, url=PUBLIC_WEBHOOK_URL, events=["milestone.due"],
                                   secret="whsec_" + "A" * 32, created_by_user_id=world.admin_a.id)
        db.session.add(endpoint)
        db.session.commit()
        world.webhook_id = endpoint.id


def _add_lot(app, world) -> None:
    """A session of world.course that applied lot ``LOT-M``."""
    from backend.services import courses as course_service

    with app.app_context():
        course = db.session.get(TreatmentCourse, world.course.id)
        course_service.add_session(course, {"performed_on": dt.date(2026, 3, 1), "product_lot": "LOT-M"},
                                   world.clinician_a)
        db.session.commit()


def _add_calendar_feed(app, world) -> None:
    """A live calendar feed of world.patient (its token is the feed URL's key)."""
    from backend.services import calendar_feed

    with app.app_context():
        patient = db.session.get(type(world.patient), world.patient.id)
        _, world.feed_token = calendar_feed.create_feed(patient, dt.datetime(2026, 3, 15, tzinfo=dt.timezone.utc))
        db.session.commit()


WORLD_PARTS: dict[str, Callable[[Any, Any], None]] = {
    "photo": _add_photo, "consent": _add_consent, "upload": _add_upload, "signed_put": _add_signed_put,
    "study": _add_study, "webhook": _add_webhook, "lot": _add_lot, "calendar_feed": _add_calendar_feed,
}


def make_world(app, needs: tuple[str, ...]) -> Any:
    world = factories.make_clinical_world(app)
    world.app = app
    for part in needs:
        WORLD_PARTS[part](app, world)
    return world


CLINICAL: tuple[Endpoint, ...] = (

    Endpoint("patients.list_patients", "GET", lambda w: ("/api/v1/patients", None), READERS,
             listed=lambda w: str(w.patient.id)),
    Endpoint("patients.create_patient", "POST", lambda w: ("/api/v1/patients", {
        "full_name": "New Person", "date_of_birth": "1990-01-02", "sex": "male",
        "fitzpatrick_type": 4}), (CLINICIAN,), success=201, addresses_object=False),
    Endpoint("patients.get_patient", "GET", lambda w: (f"/api/v1/patients/{w.patient.id}", None), READERS),
    Endpoint("patients.update_patient", "PATCH",
             lambda w: (f"/api/v1/patients/{w.patient.id}", {"phone": "+1 555 0100"}), (CLINICIAN,)),
    Endpoint("patients.get_own_patient", "GET", lambda w: ("/api/v1/me/patient", None), (PATIENT,),
             addresses_object=False),
    Endpoint("patients.get_consents", "GET",
             lambda w: (f"/api/v1/patients/{w.patient.id}/consents", None), READERS),
    Endpoint("patients.list_consent_events", "GET",
             lambda w: (f"/api/v1/patients/{w.patient.id}/consents/history", None), READERS),
    Endpoint("patients.record_consent", "POST", lambda w: (
        f"/api/v1/patients/{w.patient.id}/consents",
        {"scope": "research", "action": "grant", "version": "2026-01"}), (PATIENT, CLINICIAN), success=201),
    Endpoint("courses.list_courses", "GET",
             lambda w: (f"/api/v1/patients/{w.patient.id}/courses", None), READERS),
    Endpoint("courses.create_course", "POST", lambda w: (
        f"/api/v1/patients/{w.patient.id}/courses",
        {"indication": "redness_rosacea", "product_name": "Exo", "exosome_source": "plant",
         "delivery": "peel", "treated_regions": ["nose"], "baseline_date": "2026-03-01"}),
        (CLINICIAN,), success=201),
    Endpoint("courses.get_course", "GET", lambda w: (f"/api/v1/courses/{w.course.id}", None), READERS),
    Endpoint("courses.update_course", "PATCH",
             lambda w: (f"/api/v1/courses/{w.course.id}", {"status": "completed"}), (CLINICIAN,)),
    Endpoint("courses.replace_milestones", "PUT", lambda w: (
        f"/api/v1/courses/{w.course.id}/milestones",
        {"milestones": [{"name": "baseline", "day_offset": 0, "window_before_days": 0,
                         "window_after_days": 2}]}), (CLINICIAN,)),
    Endpoint("courses.record_milestone_visit", "POST",
             lambda w: (f"/api/v1/milestones/{_milestone(w, 'baseline')}/visit", None), (CLINICIAN,)),
    Endpoint("courses.list_sessions", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/sessions", None), READERS),
    Endpoint("courses.create_session", "POST", lambda w: (
        f"/api/v1/courses/{w.course.id}/sessions", {"performed_on": "2026-03-01"}), (CLINICIAN,), success=201),
    Endpoint("courses.course_schedule", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/schedule", None), READERS),
    Endpoint("courses.own_schedule", "GET", lambda w: ("/api/v1/me/schedule", None), (PATIENT,),
             addresses_object=False),
    Endpoint("assessments.list_assessments", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/assessments", None), READERS),
    Endpoint("assessments.create_assessment", "POST", lambda w: (
        f"/api/v1/courses/{w.course.id}/assessments", {"milestone_id": _milestone(w, "2_weeks"), "gais": 3}),
        (PATIENT, CLINICIAN), success=201),
    Endpoint("assessments.list_adverse_events", "GET",
             lambda w: (f"/api/v1/courses/{w.course.id}/adverse-events", None), READERS),
    Endpoint("assessments.create_adverse_event", "POST", lambda w: (
        f"/api/v1/courses/{w.course.id}/adverse-events",
        {"event_type": "swelling", "severity": "mild", "onset_date": "2026-03-01"}),
        (PATIENT, CLINICIAN), success=201),
    Endpoint("assessments.update_adverse_event", "PATCH", lambda w: (
        f"/api/v1/adverse-events/{w.adverse_event.id}", {"resolution_date": "2026-03-01"}),
        (PATIENT, CLINICIAN)),
    # Invitations target a patient of clinic A without a login (an enrolled one answers 409).
    Endpoint("patients.patient_fhir", "GET", lambda w: (f"/api/v1/patients/{w.patient.id}/fhir", None),
             (CLINICIAN,), needs=("photo",)),
    Endpoint("enrolment.create_invitation", "POST",
             lambda w: (f"/api/v1/patients/{w.new_patient.id}/invitations", {}), (CLINICIAN,), success=201,
             visible_to=CLINIC_A_STAFF),)

WRITERS = (PATIENT, CLINICIAN)
STAFF_OTHER_403 = {"admin_other": 403}

#: Every other API route (bearer token, or no sign-in at all).
API_ROUTES: tuple[Endpoint, ...] = (
    # Sign-in and tokens: every role signs in and manages its own sign-in the same way.
    Endpoint("auth.login", "POST", lambda w: ("/api/v1/auth/login", {
        "email": w.caller.email, "password": factories.DEFAULT_PASSWORD}), NO_SIGN_IN),
    Endpoint("auth.refresh", "POST", lambda w: ("/api/v1/auth/refresh", {
        "refresh_token": factories.issue_tokens(w.app, w.caller)["refresh_token"]}), NO_SIGN_IN),
    Endpoint("auth.logout", "POST", lambda w: ("/api/v1/auth/logout", None), ANY_ROLE, success=204,
             addresses_object=False),
    Endpoint("auth.me", "GET", lambda w: ("/api/v1/auth/me", None), ANY_ROLE, addresses_object=False),
    Endpoint("auth.change_password", "POST", lambda w: ("/api/v1/auth/password", {
        "current_password": factories.DEFAULT_PASSWORD, "new_password": "another correct horse 42"}),
        ANY_ROLE, success=204, addresses_object=False),
    # An unknown invitation code: the same 400 for anyone (enrolment itself: test_enrolment.py).
    Endpoint("enrolment.enrol", "POST", lambda w: ("/api/v1/auth/enrol", {
        "code": "0000-0000-0000", "email": "someone.new@example.org", "password": "a long enough passphrase"}),
        NO_SIGN_IN, success=400),
    # Clinic administration: the target is a clinician of clinic A.
    Endpoint("admin.list_users", "GET", lambda w: ("/api/v1/admin/users", None), (ADMIN,),
             listed=lambda w: str(w.clinician_a.id), visible_to=CLINIC_A_STAFF),
    Endpoint("admin.create_user", "POST", lambda w: ("/api/v1/admin/users", {
        "email": "new.staff@example.org", "role": "clinician", "display_name": "New Staff",
        "password": "a long enough passphrase"}), (ADMIN,), success=201, addresses_object=False),
    Endpoint("admin.get_user", "GET", lambda w: (f"/api/v1/admin/users/{w.clinician_a.id}", None), (ADMIN,),
             visible_to=CLINIC_A_STAFF),
    Endpoint("admin.deactivate_user", "POST", lambda w: (f"/api/v1/admin/users/{w.clinician_a.id}/deactivate", None),
             (ADMIN,), visible_to=CLINIC_A_STAFF),
    Endpoint("admin.reactivate_user", "POST", lambda w: (f"/api/v1/admin/users/{w.clinician_a.id}/reactivate", None),
             (ADMIN,), visible_to=CLINIC_A_STAFF),
    Endpoint("admin.list_audit_events", "GET", lambda w: ("/api/v1/audit", None), (ADMIN,), addresses_object=False),
    Endpoint("admin.verify_audit_chain", "GET", lambda w: ("/api/v1/audit/verify", None), (ADMIN,),
             addresses_object=False),
    # Photos of world.patient; a two-phase upload is its creator's (clinician_a) only.
    Endpoint("photos.upload_photo", "POST", lambda w: (
        f"/api/v1/patients/{w.patient.id}/photos?course_id={w.course.id}", _jpeg()), WRITERS, success=201,
        needs=("consent",), content_type="image/jpeg"),
    Endpoint("photos.create_upload", "POST", lambda w: (f"/api/v1/patients/{w.patient.id}/uploads", {
        "course_id": str(w.course.id), "size_bytes": 1000, "content_type": "image/jpeg"}), WRITERS, success=201,
        needs=("consent",)),
    Endpoint("photos.get_upload", "GET", lambda w: (f"/api/v1/uploads/{w.upload_id}", None), WRITERS,
             overrides={"patient_own": 404}, needs=("upload",)),
    Endpoint("photos.complete_upload", "POST", lambda w: (f"/api/v1/uploads/{w.upload_id}/complete", None), WRITERS,
             success=201, overrides={"patient_own": 404}, needs=("consent", "upload")),
    Endpoint("photos.list_photos", "GET", lambda w: (f"/api/v1/patients/{w.patient.id}/photos", None), READERS,
             needs=("photo",)),
    Endpoint("photos.get_photo", "GET", lambda w: (f"/api/v1/photos/{w.photo_id}", None), READERS, needs=("photo",)),
    Endpoint("photos.get_photo_job", "GET", lambda w: (f"/api/v1/photos/{w.photo_id}/job", None), READERS,
             needs=("photo",)),
    Endpoint("photos.list_analyses", "GET", lambda w: (f"/api/v1/photos/{w.photo_id}/analyses", None), READERS,
             needs=("photo",)),
    Endpoint("photos.download_image", "GET", lambda w: (f"/api/v1/photos/{w.photo_id}/image", None), READERS,
             needs=("photo",)),
    Endpoint("photos.download_overlay", "GET", lambda w: (f"/api/v1/photos/{w.photo_id}/overlays/redness", None),
             READERS, needs=("photo",)),
    Endpoint("photos.delete_photo", "DELETE", lambda w: (f"/api/v1/photos/{w.photo_id}", None), WRITERS,
             success=204, needs=("photo",)),
    # The signed URL is the credential: anyone holding it stores the bytes once.
    Endpoint("uploads_local.put_upload", "PUT", lambda w: (w.put_path, w.put_bytes), NO_SIGN_IN, success=204,
             needs=("signed_put",), content_type="image/jpeg"),
    # Progress of world.patient's course; /me routes: the patient's own newest course.
    Endpoint("progress.course_progress", "GET", lambda w: (f"/api/v1/courses/{w.course.id}/progress", None), READERS),
    Endpoint("progress.course_chart", "GET", lambda w: (f"/api/v1/courses/{w.course.id}/charts/redness.png", None),
             READERS),
    Endpoint("progress.my_summary", "GET", lambda w: ("/api/v1/me/summary", None), (PATIENT,),
             addresses_object=False),
    # The other patient has no course: nothing to chart.
    Endpoint("progress.my_chart", "GET", lambda w: ("/api/v1/me/charts/redness.png", None), (PATIENT,),
             addresses_object=False, overrides={"patient_other": 404}),
    # Studies: admins read every definition, only the owning clinic's admin administers it; the
    # researcher is granted on this study.
    Endpoint("studies.create_study", "POST", lambda w: ("/api/v1/studies", {"title": "New study"}), (ADMIN,),
             success=201, addresses_object=False),
    Endpoint("studies.list_studies", "GET", lambda w: ("/api/v1/studies", None), (ADMIN, RESEARCHER),
             addresses_object=False, needs=("study",)),
    Endpoint("studies.get_study", "GET", lambda w: (f"/api/v1/studies/{w.study_id}", None), (ADMIN, RESEARCHER),
             addresses_object=False, needs=("study",)),
    Endpoint("studies.join_study", "PUT", lambda w: (f"/api/v1/studies/{w.study_id}/clinics/{w.clinic_a.id}", None),
             (ADMIN,), addresses_object=False, overrides=STAFF_OTHER_403, needs=("study",)),
    Endpoint("studies.leave_study", "DELETE",
             lambda w: (f"/api/v1/studies/{w.study_id}/clinics/{w.clinic_a.id}", None), (ADMIN,), success=204,
             addresses_object=False, overrides=STAFF_OTHER_403, needs=("study",)),
    Endpoint("studies.set_privacy_floor", "PUT", lambda w: (f"/api/v1/studies/{w.study_id}/privacy-floor", {
        "min_k": 5, "max_suppression": 0.1}), (ADMIN,), addresses_object=False, overrides=STAFF_OTHER_403,
        needs=("study",)),
    Endpoint("studies.list_grants", "GET", lambda w: (f"/api/v1/studies/{w.study_id}/grants", None), (ADMIN,),
             addresses_object=False, overrides=STAFF_OTHER_403, needs=("study",)),
    Endpoint("studies.grant_researcher", "POST", lambda w: (f"/api/v1/studies/{w.study_id}/grants", {
        "researcher_id": str(w.researcher.id)}), (ADMIN,), success=201, addresses_object=False,
        overrides=STAFF_OTHER_403, needs=("study",)),
    Endpoint("studies.revoke_grant", "DELETE",
             lambda w: (f"/api/v1/studies/{w.study_id}/grants/{w.researcher.id}", None), (ADMIN,), success=204,
             addresses_object=False, overrides=STAFF_OTHER_403, needs=("study",)),
    Endpoint("studies.request_export", "POST", lambda w: (f"/api/v1/studies/{w.study_id}/exports", {}),
             (RESEARCHER,), success=202, addresses_object=False, needs=("study",)),
    Endpoint("studies.get_export", "GET", lambda w: (f"/api/v1/studies/{w.study_id}/exports/{w.export_id}", None),
             (RESEARCHER,), addresses_object=False, needs=("study",)),
    Endpoint("studies.download_export", "GET",
             lambda w: (f"/api/v1/studies/{w.study_id}/exports/{w.export_id}/download", None), (RESEARCHER,),
             addresses_object=False, needs=("study",)),
    Endpoint("studies.cohort_statistics", "GET", lambda w: (f"/api/v1/studies/{w.study_id}/statistics", None),
             (RESEARCHER,), addresses_object=False, needs=("study",)),
    # Webhook endpoints belong to clinic A; only its admins manage them.
    Endpoint("webhooks.create_endpoint", "POST", lambda w: ("/api/v1/webhooks/endpoints", {
        "url": PUBLIC_WEBHOOK_URL, "events": ["milestone.due"]}), (ADMIN,), success=201, addresses_object=False),
    Endpoint("webhooks.list_endpoints", "GET", lambda w: ("/api/v1/webhooks/endpoints", None), (ADMIN,),
             listed=lambda w: str(w.webhook_id), visible_to=CLINIC_A_STAFF, needs=("webhook",)),
    Endpoint("webhooks.rotate_secret", "POST",
             lambda w: (f"/api/v1/webhooks/endpoints/{w.webhook_id}/rotate-secret", None), (ADMIN,),
             visible_to=CLINIC_A_STAFF, needs=("webhook",)),
    Endpoint("webhooks.enable_endpoint", "POST",
             lambda w: (f"/api/v1/webhooks/endpoints/{w.webhook_id}/enable", None), (ADMIN,),
             visible_to=CLINIC_A_STAFF, needs=("webhook",)),
    Endpoint("webhooks.list_deliveries", "GET",
             lambda w: (f"/api/v1/webhooks/endpoints/{w.webhook_id}/deliveries", None), (ADMIN,),
             visible_to=CLINIC_A_STAFF, needs=("webhook",)),
    # The patient app's API: a patient's own preview checks and calendar feed; the feed itself
    # needs no sign-in (its URL is the key) and answers the same to everyone.
    Endpoint("patient_app_api.preview_check", "POST", lambda w: ("/api/v1/me/preview-check", _jpeg()), (PATIENT,),
             addresses_object=False, content_type="image/jpeg"),
    Endpoint("patient_app_api.get_calendar_feed", "GET", lambda w: ("/api/v1/me/calendar-feed", None), (PATIENT,),
             addresses_object=False),
    Endpoint("patient_app_api.create_calendar_feed", "POST", lambda w: ("/api/v1/me/calendar-feed", None),
             (PATIENT,), success=201, addresses_object=False),
    Endpoint("patient_app_api.revoke_calendar_feed", "DELETE", lambda w: ("/api/v1/me/calendar-feed", None),
             (PATIENT,), success=204, addresses_object=False),
    Endpoint("patient_app_api.calendar_feed", "GET", lambda w: (f"/api/v1/calendar/{w.feed_token}.ics", None),
             NO_SIGN_IN, needs=("calendar_feed",)),
    # The patient app's shell: static, the same for everyone (its data comes from the API).
    Endpoint("patient_app.shell", "GET", lambda w: ("/app/", None), NO_SIGN_IN),
    Endpoint("patient_app.service_worker", "GET", lambda w: ("/app/sw.js", None), NO_SIGN_IN),
    Endpoint("patient_app.manifest", "GET", lambda w: ("/app/manifest.webmanifest", None), NO_SIGN_IN),
    # The API's own documents.
    Endpoint("api-docs.openapi_json", "GET", lambda w: ("/api/v1/openapi.json", None), NO_SIGN_IN),
    Endpoint("api-docs-ui.swagger_ui", "GET", lambda w: ("/api/v1/docs", None), NO_SIGN_IN),
    Endpoint("api-docs-ui.asset", "GET", lambda w: ("/api/v1/docs/assets/swagger-init.js", None), NO_SIGN_IN),
)

MATRIX: tuple[Endpoint, ...] = CLINICAL + API_ROUTES

#: Roles that can sign in to the dashboard; a page answers every other role with the sign-in form.
DASHBOARD_ROLES = (CLINICIAN, ADMIN)
NOT_STAFF_401 = {"patient_own": 401, "patient_other": 401}
#: Roles that sign in to the pages: clinic staff, and researchers (their studies' pages only).
SIGN_IN_ROLES = DASHBOARD_ROLES + (RESEARCHER,)
#: Where a signed-in user of another role is sent from a page not for them.
START_PAGE = {RESEARCHER: "/dashboard/research/", CLINICIAN: "/dashboard/", ADMIN: "/dashboard/"}

#: A one-time form token (the pages' submit-once forms carry one).
FORM_TOKEN = {"form_token": "matrix-one-time-form-token-0001"}
#: Clinician-only pages: an admin signs in but may not write clinical records (as in the API).
ADMIN_403 = {"admin_same": 403, "admin_other": 403}


def _page(template: str) -> Callable[[Any], str]:
    return lambda w: template.format(patient=w.patient.id, course=w.course.id, event=w.adverse_event.id,
                                     new_patient=w.new_patient.id, photo=getattr(w, "photo_id", None))


def _get(endpoint: str, path: str, **options: Any) -> Endpoint:
    return Endpoint(endpoint, "GET", lambda w: (_page(path)(w), None), options.pop("roles", DASHBOARD_ROLES),
                    **options)


def _post(endpoint: str, path: str, body: Callable[[Any], dict[str, Any]], **options: Any) -> Endpoint:
    return Endpoint(endpoint, "POST", lambda w: (_page(path)(w), {**FORM_TOKEN, **body(w)}),
                    options.pop("roles", DASHBOARD_ROLES), success=options.pop("success", 303), **options)


#: The clinic workspace pages (backend/dashboard/clinic.py): GET forms and their POSTs.
CLINIC_WORKSPACE: tuple[Endpoint, ...] = (
    _get("dashboard.patient_new", "/dashboard/patients/new", addresses_object=False, overrides=ADMIN_403),
    _post("dashboard.patient_new", "/dashboard/patients/new", lambda w: {
        "full_name": "Form Person", "date_of_birth": "1990-01-02", "sex": "male", "fitzpatrick_type": "4"},
        addresses_object=False, overrides=ADMIN_403),
    _get("dashboard.patient_edit", "/dashboard/patients/{patient}/edit", overrides=ADMIN_403),
    _post("dashboard.patient_edit", "/dashboard/patients/{patient}/edit", lambda w: {"full_name": "Renamed"},
          overrides=ADMIN_403),
    _get("dashboard.consents", "/dashboard/patients/{patient}/consents"),
    _post("dashboard.consents", "/dashboard/patients/{patient}/consents", lambda w: {
        "scope": "research", "action": "grant", "version": "2026-01"}, overrides={"admin_same": 403}),
    _post("dashboard.invitation", "/dashboard/patients/{new_patient}/invitation", lambda w: {}, success=200,
          visible_to=CLINIC_A_STAFF, overrides=ADMIN_403),
    _get("dashboard.course_new", "/dashboard/patients/{patient}/courses/new", overrides=ADMIN_403),
    _post("dashboard.course_new", "/dashboard/patients/{patient}/courses/new", lambda w: {
        "indication": "photoaging", "product_name": "P", "exosome_source": "adipose", "delivery": "peel",
        "baseline_date": "2026-03-15", "treated_regions": ["forehead"]}, overrides=ADMIN_403),
    _get("dashboard.course_edit", "/dashboard/courses/{course}/edit", overrides=ADMIN_403),
    _post("dashboard.course_edit", "/dashboard/courses/{course}/edit", lambda w: {"notes": "changed"},
          overrides=ADMIN_403),
    _get("dashboard.course_schedule", "/dashboard/courses/{course}/schedule", overrides=ADMIN_403),
    _post("dashboard.course_schedule", "/dashboard/courses/{course}/schedule", lambda w: {
        "milestones": "baseline, 0, 0, 3\n2_weeks, 14, 3, 3\n1_month, 30, 5, 5\n3_months, 90, 14, 14\n"
                      "6_months, 180, 14, 14"}, overrides=ADMIN_403),
    _get("dashboard.session_new", "/dashboard/courses/{course}/sessions/new", overrides=ADMIN_403),
    _post("dashboard.session_new", "/dashboard/courses/{course}/sessions/new", lambda w: {
        "performed_on": "2026-03-15", "product_lot": "L1"}, overrides=ADMIN_403),
    _get("dashboard.assessment_new", "/dashboard/courses/{course}/assessments/new", overrides=ADMIN_403),
    _post("dashboard.assessment_new", "/dashboard/courses/{course}/assessments/new", lambda w: {
        "milestone_id": _milestone(w, "2_weeks"), "gais": "2"}, overrides=ADMIN_403),
    _get("dashboard.adverse_event_new", "/dashboard/courses/{course}/adverse-events/new", overrides=ADMIN_403),
    _post("dashboard.adverse_event_new", "/dashboard/courses/{course}/adverse-events/new", lambda w: {
        "event_type": "erythema", "severity": "mild", "onset_date": "2026-03-10"}, overrides=ADMIN_403),
    _get("dashboard.adverse_event_edit", "/dashboard/adverse-events/{event}/edit", overrides=ADMIN_403),
    _post("dashboard.adverse_event_edit", "/dashboard/adverse-events/{event}/edit", lambda w: {
        "severity": "moderate"}, overrides=ADMIN_403),
    _get("dashboard.photo_upload", "/dashboard/patients/{patient}/photos/new", overrides=ADMIN_403),
    _post("dashboard.photo_upload", "/dashboard/patients/{patient}/photos/new", lambda w: {
        "course_id": str(w.course.id), "view": "front", "photo": (io.BytesIO(_jpeg()), "face.jpg")},
        overrides=ADMIN_403, needs=("consent",)),
    _get("dashboard.photo_result", "/dashboard/photos/{photo}", needs=("photo",)),
    _get("dashboard.lots", "/dashboard/lots?lot=LOT-M", listed=lambda w: "Pat Own", needs=("lot",)),
    _get("dashboard.worklist", "/dashboard/worklist", listed=lambda w: "Pat Own"),
)

#: Admin pages: a clinician signs in but does not administer (as in the API).
CLINICIAN_403 = {"clinician_same": 403, "clinician_other": 403}
ADMINS = (ADMIN,)


def _admin_page(endpoint: str, method: str, path: Callable[[Any], str], body: Callable[[Any], dict] | None = None,
                **options: Any) -> Endpoint:
    request = (lambda w: (path(w), None)) if method == "GET" else (lambda w: (path(w), {**FORM_TOKEN, **body(w)}))
    return Endpoint(endpoint, method, request, ADMINS, success=options.pop("success", 200 if method == "GET" else 303),
                    overrides={**CLINICIAN_403, **options.pop("overrides", {})}, **options)


ADMIN_PAGES: tuple[Endpoint, ...] = (
    _admin_page("dashboard.admin_users", "GET", lambda w: "/dashboard/admin/users", addresses_object=False,
                listed=lambda w: w.clinician_a.email, visible_to=CLINIC_A_STAFF),
    _admin_page("dashboard.admin_users", "POST", lambda w: "/dashboard/admin/users", lambda w: {
        "email": "made@example.org", "role": "researcher", "password": "a long enough passphrase 42"},
        addresses_object=False),
    _admin_page("dashboard.admin_user_active", "POST", lambda w: f"/dashboard/admin/users/{w.clinician_a.id}/active",
                lambda w: {"active": "false"}, visible_to=CLINIC_A_STAFF),
    _admin_page("dashboard.admin_audit", "GET", lambda w: "/dashboard/admin/audit", addresses_object=False),
    _admin_page("dashboard.admin_audit_verify", "POST", lambda w: "/dashboard/admin/audit/verify", lambda w: {},
                success=200, addresses_object=False),
    _admin_page("dashboard.admin_studies", "GET", lambda w: "/dashboard/admin/studies", addresses_object=False),
    _admin_page("dashboard.admin_studies", "POST", lambda w: "/dashboard/admin/studies", lambda w: {"title": "S"},
                addresses_object=False),
    # Admins read every study definition and may join any study with their own clinic; only the
    # owning clinic's admins grant researchers.
    _admin_page("dashboard.admin_study", "GET", lambda w: f"/dashboard/admin/studies/{w.study_id}",
                visible_to=CLINIC_A_STAFF, needs=("study",), overrides={"admin_other": 200}),
    _admin_page("dashboard.admin_study_membership", "POST", lambda w: f"/dashboard/admin/studies/{w.study_id}/membership",
                lambda w: {"join": "true"}, visible_to=CLINIC_A_STAFF, needs=("study",),
                overrides={"admin_other": 303}),
    _admin_page("dashboard.admin_study_grant", "POST", lambda w: f"/dashboard/admin/studies/{w.study_id}/grants",
                lambda w: {"researcher_id": str(w.researcher.id)}, visible_to=CLINIC_A_STAFF, needs=("study",),
                overrides={"admin_other": 403}),
)

#: Researcher pages: the studies a researcher is granted (clinic A's study here).
RESEARCHERS = (RESEARCHER,)
RESEARCH_PAGES: tuple[Endpoint, ...] = (
    Endpoint("dashboard.research_home", "GET", lambda w: ("/dashboard/research/", None), RESEARCHERS,
             addresses_object=False, needs=("study",)),  # what it lists: test_research_pages
    Endpoint("dashboard.research_study", "GET", lambda w: (f"/dashboard/research/studies/{w.study_id}", None),
             RESEARCHERS, needs=("study",), overrides={"researcher": 200}),
    Endpoint("dashboard.research_study", "POST", lambda w: (f"/dashboard/research/studies/{w.study_id}",
                                                            {**FORM_TOKEN, "k": "1"}),
             RESEARCHERS, success=303, needs=("study",), overrides={"researcher": 303}),
    Endpoint("dashboard.research_download", "GET", lambda w: (
        f"/dashboard/research/studies/{w.study_id}/exports/{w.export_id}/download", None),
             RESEARCHERS, needs=("study",), overrides={"researcher": 200}),
    Endpoint("dashboard.research_statistics", "GET", lambda w: (
        f"/dashboard/research/studies/{w.study_id}/statistics", None),
             RESEARCHERS, needs=("study",), overrides={"researcher": 200}),
)

#: Every dashboard route (session sign-in, forms with a CSRF token).
DASHBOARD: tuple[Endpoint, ...] = (
    Endpoint("dashboard.login", "GET", lambda w: ("/dashboard/login", None), NO_SIGN_IN),
    Endpoint("dashboard.login", "POST", lambda w: ("/dashboard/login", {
        "email": w.caller.email, "password": factories.DEFAULT_PASSWORD}), NO_SIGN_IN, success=302,
        overrides=NOT_STAFF_401),
    Endpoint("dashboard.logout", "POST", lambda w: ("/dashboard/logout", {}), NO_SIGN_IN, success=302),
    Endpoint("dashboard.patients", "GET", lambda w: ("/dashboard/", None), DASHBOARD_ROLES,
             listed=lambda w: w.patient.full_name),
    Endpoint("dashboard.patient_page", "GET", lambda w: (f"/dashboard/patients/{w.patient.id}", None),
             DASHBOARD_ROLES),
    Endpoint("dashboard.chart", "GET", lambda w: (
        f"/dashboard/patients/{w.patient.id}/courses/{w.course.id}/charts/redness.png", None), DASHBOARD_ROLES),
    Endpoint("dashboard.timeline_chart", "GET", lambda w: (
        f"/dashboard/patients/{w.patient.id}/courses/{w.course.id}/timeline.svg", None), DASHBOARD_ROLES),
    Endpoint("dashboard.viewer", "GET", lambda w: (f"/dashboard/patients/{w.patient.id}/viewer", None),
             DASHBOARD_ROLES, needs=("photo",)),
    Endpoint("dashboard.report", "GET", lambda w: (f"/dashboard/patients/{w.patient.id}/report.pdf", None),
             DASHBOARD_ROLES),
    Endpoint("dashboard.photo_overlay", "GET", lambda w: (f"/dashboard/photos/{w.photo_id}/overlays/redness.png", None),
             DASHBOARD_ROLES, needs=("photo",)),
    Endpoint("dashboard.aligned_face", "GET", lambda w: (f"/dashboard/photos/{w.photo_id}/aligned/baseline.png", None),
             DASHBOARD_ROLES, needs=("photo",)),
    # The caller's own clinic's repeatability (no object addressed: another clinic's is never reachable).
    Endpoint("dashboard.repeatability", "GET", lambda w: ("/dashboard/repeatability", None), DASHBOARD_ROLES,
             addresses_object=False),
    Endpoint("dashboard.bland_altman", "GET", lambda w: ("/dashboard/repeatability/bland-altman/redness.svg", None),
             DASHBOARD_ROLES, addresses_object=False),
    *CLINIC_WORKSPACE,
    *ADMIN_PAGES,
    *RESEARCH_PAGES,
)

#: Routes with nothing to authorise: static files.
STATIC_ENDPOINTS = {"static", "dashboard.static", "patient_app.static"}


def sees(entry: Endpoint, caller: str) -> bool:
    """Whether the caller may see the entry's target object."""
    if entry.visible_to == CLINIC_A_STAFF:
        return caller in ("clinician_same", "admin_same")
    return CALLERS[caller][1]


def expected_status(entry: Endpoint, caller: str, role: str, *, refused: int = 403) -> int:
    """The status the matrix requires for ``caller`` (of ``role``) on ``entry``.

    ``refused`` is the answer to a role the route never serves (the dashboard: its sign-in form).
    """
    if caller in entry.overrides:
        return entry.overrides[caller]
    if entry.roles is NO_SIGN_IN:
        return entry.success
    if role not in entry.roles:
        return refused
    if not entry.addresses_object or entry.listed is not None:
        return entry.success
    return entry.success if sees(entry, caller) else 404


@pytest.fixture
def clock() -> FakeClock:
    # Day 14 of the factory course: its 2_weeks milestone is open for ratings.
    return FakeClock(dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc))


def test_matrix_lists_every_route_of_the_app(app):
    registered = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in STATIC_ENDPOINTS
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    in_matrix = [(entry.endpoint, entry.method) for entry in MATRIX + DASHBOARD]
    assert len(in_matrix) == len(set(in_matrix))
    assert registered == set(in_matrix)


def _send(client, entry: Endpoint, world: Any, headers: dict[str, str] | None = None):
    path, body = entry.request(world)
    if entry.content_type is not None:
        return client.open(path, method=entry.method, data=body, content_type=entry.content_type, headers=headers)
    return client.open(path, method=entry.method, json=body, headers=headers)


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("entry", MATRIX, ids=lambda entry: f"{entry.method} {entry.endpoint}")
def test_authorisation_matrix(app, client, entry: Endpoint, caller: str):
    world = make_world(app, entry.needs)
    user = world.caller = getattr(world, CALLERS[caller][0])
    response = _send(client, entry, world, factories.auth_headers(app, user))
    expected = expected_status(entry, caller, user.role)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert response.mimetype == PROBLEM
        return
    if entry.listed is not None:
        listed_ids = {item["id"] for item in response.get_json()["items"]}
        assert (entry.listed(world) in listed_ids) == sees(entry, caller)


#: Patients cannot sign in to the pages, so another patient is refused exactly like the patient
#: themselves: one patient caller is enough for the pages (it keeps this matrix's run time down).
DASHBOARD_CALLERS = [caller for caller in CALLERS if caller != "patient_other"]


@pytest.mark.parametrize("caller", DASHBOARD_CALLERS)
@pytest.mark.parametrize("entry", DASHBOARD, ids=lambda entry: f"{entry.method} {entry.endpoint}")
def test_dashboard_authorisation_matrix(app, entry: Endpoint, caller: str):
    world = make_world(app, entry.needs)
    user = world.caller = getattr(world, CALLERS[caller][0])
    client = app.test_client()
    if entry.endpoint != "dashboard.login":
        # Every role tries to sign in; only clinicians and admins can.
        signed_in = sign_in(client, user.email)
        assert signed_in.status_code == (302 if user.role in SIGN_IN_ROLES else 401)
    path, body = entry.request(world)
    if entry.method == "POST":
        response = client.post(path, data={**body, "csrf_token": form_csrf(client)})
    else:
        response = client.get(path)
    expected = expected_status(entry, caller, user.role, refused=302)
    assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected == 302 and entry.roles is not NO_SIGN_IN:  # the sign-in form, or the role's own start page
        assert response.headers["Location"].startswith(("/dashboard/login", START_PAGE.get(user.role, "?"))), \
            response.headers["Location"]
    if expected == 200 and entry.listed is not None:
        assert (entry.listed(world) in response.get_data(as_text=True)) == sees(entry, caller)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_patient_list_never_shows_another_clinic(app, client, caller):
    world = factories.make_clinical_world(app)
    user = getattr(world, CALLERS[caller][0])
    response = client.get("/api/v1/patients", headers=factories.auth_headers(app, user))
    if user.role == "researcher":
        assert response.status_code == 403
        return
    listed = {item["id"] for item in response.get_json()["items"]}
    assert str(world.patient_b.id) not in listed or caller in ("clinician_other", "admin_other")
    if user.role == "patient":
        own = world.patient if caller == "patient_own" else world.other_patient
        assert listed == {str(own.id)}


def test_unauthenticated_requests_get_401(app, client):
    needs = tuple(dict.fromkeys(part for entry in MATRIX for part in entry.needs))
    world = make_world(app, needs)
    for entry in MATRIX:
        if entry.roles is NO_SIGN_IN:
            continue
        response = _send(client, entry, world)
        assert response.status_code == 401, entry.endpoint
        assert response.mimetype == PROBLEM


def test_spec_documents_the_matrix_answers_as_problems(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    shared = spec["components"]["responses"]
    for entry in CLINICAL:
        path = next(rule for rule in _rules(client.application, entry.endpoint))
        operation = spec["paths"][path][entry.method.lower()]
        documented = set(operation["responses"])
        assert {str(entry.success), "401", "403"} <= documented, entry.endpoint
        if entry.addresses_object and entry.listed is None:
            assert "404" in documented, entry.endpoint
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                content = shared[response["$ref"].rsplit("/", 1)[1]]["content"]
                assert list(content) == [PROBLEM], (entry.endpoint, status)


def _rules(app, endpoint: str):
    """OpenAPI paths of an endpoint (``<uuid:x>`` -> ``{x}``)."""
    for rule in app.url_map.iter_rules(endpoint):
        yield re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
