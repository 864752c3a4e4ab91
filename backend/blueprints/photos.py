"""Photos: direct and two-phase uploads, listing, detail, job status, downloads, deletion.

Roles: patients upload, read and delete their own photos; clinicians those of their clinic's
patients; admins read their clinic's; researchers none (403). Another patient's or clinic's
photo answers 404. Downloads (image, overlays) are audited.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, request, stream_with_context, url_for
from sqlalchemy import select

from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import audit_change, audit_reads, clinical_blueprint
from backend.extensions import db, now
from backend.http.idempotency import idempotent
from backend.http.media_types import accepts
from backend.http.pagination import paginate
from backend.http.problems import problem
from backend.jobs import get_job, job_status_dict
from backend.models.clinical import Patient
from backend.models.photos import Photo, PhotoUpload
from backend.services import access
from backend.services import analysis as _analysis  # noqa: F401 - registers the analyse_photo job handler
from backend.services import photos as photo_service
from backend.storage import CHUNK_BYTES, ObjectNotFound, current_storage
from backend.unit_of_work import transactional
from schemas.common import page_schema
from schemas.photos import (
    DIRECT_UPLOAD_MEDIA_TYPES,
    AnalysisSchema,
    DirectUploadArgsSchema,
    JobStatusSchema,
    PhotoListArgsSchema,
    PhotoSchema,
    UploadCreateSchema,
    UploadSchema,
)

blp = clinical_blueprint("photos", "Face photos: uploads with quality feedback, results, downloads.")

#: Who may upload and delete photos.
PHOTO_WRITERS = ("patient", "clinician")
#: Who may list, read and download photos.
PHOTO_READERS = ("patient", "clinician", "admin")

_IMAGE_BODY = {
    "required": True,
    "description": "The photo's bytes (JPEG, PNG, WebP or HEIC); the type is sniffed from the bytes.",
    "content": {media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in DIRECT_UPLOAD_MEDIA_TYPES},
}


# ------------------------------------------------------------------ views of rows

def analysis_to_dict(analysis) -> dict[str, Any]:
    """API form of a :class:`PhotoAnalysis` (``AnalysisSchema``)."""
    return {
        "id": analysis.id, "algorithm_version": analysis.algorithm_version, "created_at": analysis.created_at,
        "baseline_photo_id": analysis.baseline_photo_id, "face_found": analysis.face_found,
        "quality": analysis.quality, "summary": analysis.summary,
        "measurements": analysis.measurements,
        "overlays": [o.name for o in analysis.overlays if o.storage_key],
    }


def photo_to_dict(photo: Photo, counted: set[uuid.UUID]) -> dict[str, Any]:
    """API form of a photo (``PhotoSchema``) with its job state and latest analysis."""
    job = get_job(photo.analysis_job_id) if photo.analysis_job_id else None
    latest = photo_service.latest_analysis(photo)
    return {
        **{name: getattr(photo, name) for name in (
            "id", "patient_id", "course_id", "milestone_id", "out_of_window", "view", "captured_at",
            "capture_date", "capture_time_source", "make_up", "device", "capture_conditions", "content_type", "width",
            "height", "size_bytes", "created_at", "quality", "usable", "superseded_by_id", "repeat_of_id", "deleted_at",
            "deletion_reason",
        )},
        "milestone_name": photo.milestone.name if photo.milestone is not None else None,
        "counts": photo.id in counted,
        "job": job_status_dict(job) if job is not None else None,
        "latest_analysis": analysis_to_dict(latest) if latest is not None else None,
    }


def photo_response(photo: Photo, status: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A single photo as a view's return value, with its Location."""
    body = photo_to_dict(photo, photo_service.counting_photo_ids([photo]))
    return body, status, {"Location": url_for("photos.get_photo", photo_id=photo.id)}


def get_photo_or_404(photo_id: uuid.UUID) -> Photo:
    """The photo if the caller may see its patient, else a 404 problem."""
    photo = db.session.scalar(
        select(Photo).join(Patient, Photo.patient_id == Patient.id)
        .where(Photo.id == photo_id, access.patients_visible_to(current_user()))
    )
    if photo is None:
        access.not_found("photo")
    return photo


def _request_body() -> bytes:
    # Reading the body enforces MAX_CONTENT_LENGTH (413 problem).
    return request.get_data(cache=True)


# ------------------------------------------------------------------ uploads

@blp.route("/patients/<uuid:patient_id>/photos", methods=["POST"])
@accepts(*DIRECT_UPLOAD_MEDIA_TYPES)
@auth_required(*PHOTO_WRITERS)
@idempotent
@blp.arguments(DirectUploadArgsSchema, location="query")
@blp.doc(requestBody=_IMAGE_BODY)
@blp.response(201, PhotoSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
def upload_photo(args: dict[str, Any], patient_id: uuid.UUID):
    """Upload a photo in one request: the body is the image, metadata in the query.

    Answers with the quality-gate result (``quality.ok`` and ``problems`` with codes and
    messages) so the app can ask for a retake at once, the assigned milestone (or
    ``out_of_window``) and the analysis job. The photo is kept even when unusable.
    Refused images: 415 (not an image) or 422 with the imaging error ``code``.
    """
    patient = access.get_patient_or_404(current_user(), patient_id)
    data = _request_body()
    if not data:
        problem(400, "The request body must be the photo's bytes.", type_="empty-body")
    photo = photo_service.ingest_photo(patient, photo_service.CaptureMetadata.from_args(args), data, current_user())
    return photo_response(photo, 201)


@blp.route("/patients/<uuid:patient_id>/uploads", methods=["POST"])
@auth_required(*PHOTO_WRITERS)
@idempotent
@blp.arguments(UploadCreateSchema)
@blp.response(201, UploadSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def create_upload(data: dict[str, Any], patient_id: uuid.UUID):
    """Start a two-phase upload: returns a signed URL to PUT exactly ``size_bytes`` bytes to.

    Then ``POST /uploads/{id}/complete``.
    """
    user = current_user()
    patient = access.get_patient_or_404(user, patient_id)
    metadata = photo_service.CaptureMetadata.from_args(data)
    photo_service.check_capture(patient, metadata)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if data["size_bytes"] > limit:
        problem(413, f"Photos may be at most {limit} bytes.", type_="photo-too-large")
    upload, signed = photo_service.start_upload(patient, metadata, data["size_bytes"], data["content_type"], user)
    audit_change("create", "photo_upload", upload.id, patient_id=str(patient.id))
    body = _upload_to_dict(upload)
    body["put"] = signed.as_dict()
    return body, 201, {"Location": url_for("photos.get_upload", upload_id=upload.id)}


def _upload_to_dict(upload: PhotoUpload) -> dict[str, Any]:
    return {name: getattr(upload, name) for name in (
        "id", "patient_id", "course_id", "status", "declared_size", "declared_content_type", "expires_at",
        "photo_id")} | {"put": None}


def get_upload_or_404(upload_id: uuid.UUID) -> PhotoUpload:
    """An upload the caller created (and whose patient they still see), else 404."""
    user = current_user()
    upload = db.session.get(PhotoUpload, upload_id)
    if upload is None or upload.created_by_user_id != user.id:
        access.not_found("upload")
    access.get_patient_or_404(user, upload.patient_id)
    return upload


@blp.route("/uploads/<uuid:upload_id>", methods=["GET"])
@auth_required(*PHOTO_WRITERS)
@blp.response(200, UploadSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_upload(upload_id: uuid.UUID):
    """State of a two-phase upload (its creator only)."""
    return _upload_to_dict(get_upload_or_404(upload_id))


@blp.route("/uploads/<uuid:upload_id>/complete", methods=["POST"])
@auth_required(*PHOTO_WRITERS)
@idempotent
@blp.response(201, PhotoSchema)
@blp.alt_response(200, schema=PhotoSchema, description="Already completed: the same photo.")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(410, response="GONE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
def complete_upload(upload_id: uuid.UUID):
    """Finish a two-phase upload: verify the stored object, sanitise and gate it.

    Answers like the direct upload. Completing again returns the same photo (200).
    """
    upload = get_upload_or_404(upload_id)
    if upload.status == "completed" and upload.photo_id is not None:
        return photo_response(db.session.get(Photo, upload.photo_id), 200)
    storage = current_storage()
    try:
        size = storage.stat(upload.staging_key).size
    except ObjectNotFound:
        if now() >= upload.expires_at:
            problem(410, "This upload expired before its bytes arrived; start a new one.", type_="upload-expired")
        problem(409, "The photo's bytes have not been uploaded yet.", type_="upload-incomplete")
    if size != upload.declared_size:
        problem(422, f"{size} bytes were uploaded, {upload.declared_size} were declared.",
                type_="upload-size-mismatch")
    with storage.open(upload.staging_key) as stream:
        data = stream.read()
    patient = db.session.get(Patient, upload.patient_id)
    photo = photo_service.ingest_photo(patient, photo_service.CaptureMetadata.from_json(upload.capture),
                                       data, current_user())
    upload.status, upload.photo_id = "completed", photo.id
    photo_service.delete_after_commit(upload.staging_key)
    return photo_response(photo, 201)


# ------------------------------------------------------------------ reading

@blp.route("/patients/<uuid:patient_id>/photos", methods=["GET"])
@auth_required(*PHOTO_READERS)
@transactional
@blp.arguments(PhotoListArgsSchema, location="query")
@blp.response(200, page_schema(PhotoSchema))
@blp.alt_response(404, response="NOT_FOUND")
def list_photos(args: dict[str, Any], patient_id: uuid.UUID) -> dict[str, Any]:
    """A patient's photos, oldest first (superseded and deleted ones included, flagged)."""
    patient = access.get_patient_or_404(current_user(), patient_id)
    statement = select(Photo).where(Photo.patient_id == patient.id)
    if args.get("course_id") is not None:
        statement = statement.where(Photo.course_id == args["course_id"])
    if args.get("milestone_id") is not None:
        statement = statement.where(Photo.milestone_id == args["milestone_id"])
    if not args.get("include_deleted", True):
        statement = statement.where(Photo.deleted_at.is_(None))
    items, next_cursor = paginate(statement, (Photo.created_at, Photo.id), args)
    counted = photo_service.counting_photo_ids(items)
    audit_reads("photo", (photo.id for photo in items))
    return {"items": [photo_to_dict(photo, counted) for photo in items], "next_cursor": next_cursor}


@blp.route("/photos/<uuid:photo_id>", methods=["GET"])
@auth_required(*PHOTO_READERS)
@transactional
@blp.response(200, PhotoSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_photo(photo_id: uuid.UUID) -> dict[str, Any]:
    """One photo with its quality, job state and latest results."""
    photo = get_photo_or_404(photo_id)
    audit_reads("photo", [photo.id])
    return photo_to_dict(photo, photo_service.counting_photo_ids([photo]))


@blp.route("/photos/<uuid:photo_id>/job", methods=["GET"])
@auth_required(*PHOTO_READERS)
@blp.response(200, JobStatusSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_photo_job(photo_id: uuid.UUID) -> dict[str, Any]:
    """State of the photo's latest analysis job: queued, running, done, failed (with reason)."""
    photo = get_photo_or_404(photo_id)
    job = get_job(photo.analysis_job_id) if photo.analysis_job_id else None
    if job is None:
        access.not_found("job")
    return job_status_dict(job)


@blp.route("/photos/<uuid:photo_id>/analyses", methods=["GET"])
@auth_required(*PHOTO_READERS)
@transactional
@blp.response(200, AnalysisSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_analyses(photo_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every stored analysis of the photo (one per algorithm version), oldest first."""
    photo = get_photo_or_404(photo_id)
    audit_reads("photo", [photo.id])
    return [analysis_to_dict(analysis) for analysis in photo.analyses]


def _stream(key: str, content_type: str) -> Response:
    storage = current_storage()
    try:
        size = storage.stat(key).size
    except ObjectNotFound:
        problem(410, "The photo's bytes were removed.", type_="photo-removed")

    def chunks():
        with storage.open(key) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                yield chunk

    return Response(stream_with_context(chunks()), mimetype=content_type,
                    headers={"Content-Length": str(size), "Cache-Control": "private, no-store"})


@blp.route("/photos/<uuid:photo_id>/image", methods=["GET"])
@auth_required(*PHOTO_READERS)
@transactional
@blp.response(200, description="The sanitised photo (no GPS, serial or comments). A JPEG the phone "
              "stored sideways keeps its pixels and an EXIF holding only the orientation tag: apply it "
              "to show the photo upright (browsers do).",
              content_type="image/jpeg")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE")
def download_image(photo_id: uuid.UUID) -> Response:
    """Download the stored (sanitised) photo; audited."""
    photo = get_photo_or_404(photo_id)
    if photo.storage_key is None:
        problem(410, "This photo was deleted; its bytes were removed.", type_="photo-removed")
    audit_reads("photo", [photo.id])
    return _stream(photo.storage_key, photo.content_type)


@blp.route("/photos/<uuid:photo_id>/overlays/<string:name>", methods=["GET"])
@auth_required(*PHOTO_READERS)
@transactional
@blp.response(200, description="A PNG overlay of the latest analysis.", content_type="image/png")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE")
def download_overlay(photo_id: uuid.UUID, name: str) -> Response:
    """Download an overlay (``redness``, ``pigment``, ``wrinkles``, ``regions``, ``before_after``); audited."""
    photo = get_photo_or_404(photo_id)
    if photo.deleted_at is not None:
        problem(410, "This photo was deleted; its overlays were removed.", type_="photo-removed")
    overlay = photo_service.overlay_of(photo, name)
    if overlay is None:
        access.not_found("overlay")
    audit_reads("photo", [photo.id])
    return _stream(overlay.storage_key, "image/png")


# ------------------------------------------------------------------ deletion

@blp.route("/photos/<uuid:photo_id>", methods=["DELETE"])
@auth_required(*PHOTO_WRITERS)
@transactional
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND")
def delete_photo(photo_id: uuid.UUID) -> Response:
    """Delete a photo: its bytes and overlays are removed from storage; the row stays, marked."""
    photo = get_photo_or_404(photo_id)
    photo_service.delete_photo(photo, reason="deleted")
    return Response(status=204)
