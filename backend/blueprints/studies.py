"""Studies API: admins define studies and grant researchers; researchers export and see statistics.

Who may do what:
- admin: create studies (owned by their clinic), join or leave a study with their own clinic,
  grant and revoke researchers on studies their clinic owns; list and read study definitions
  (no patient data).
- researcher: read the studies they hold an active grant for, request and download export
  packages, read cohort statistics. Any other study answers 404.
- clinician, patient: 403 on every endpoint here.
Exports, downloads and statistics reads are audited.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, url_for
from sqlalchemy import select

from backend import audit
from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import clinical_blueprint
from backend.http.idempotency import idempotent
from backend.http.pagination import paginate
from backend.http.problems import problem
from backend.models.studies import Study, StudyExport, StudyGrant
from backend.services import studies as study_service
from backend.services.export import package as export_package
from backend.services.export import tables as export_tables
from backend.services.studies import export_status, options_from
from backend.storage import current_storage
from backend.unit_of_work import transactional
from schemas.common import CursorArgsSchema, page_schema
from schemas.studies import (
    CohortStatisticsSchema,
    DeidentificationArgsSchema,
    ExportCreateSchema,
    ExportSchema,
    GrantCreateSchema,
    GrantListSchema,
    GrantSchema,
    PrivacyFloorSchema,
    StudyCreateSchema,
    StudySchema,
)

blp = clinical_blueprint("studies", "Research studies, researcher grants, de-identified exports, cohort statistics.")

STUDY_ROLES = ("admin", "researcher")


def study_body(study: Study) -> dict[str, Any]:
    return {"id": study.id, "title": study.title, "description": study.description, "indication": study.indication,
            "starts_on": study.starts_on, "ends_on": study.ends_on, "owner_clinic_id": study.owner_clinic_id,
            "clinic_ids": [link.clinic_id for link in study.clinics], "created_at": study.created_at,
            "privacy_floor": {"min_k": study.min_k, "max_suppression": study.max_suppression}}


def export_body(export: StudyExport) -> dict[str, Any]:
    ready = export.status == "ready"
    return {"id": export.id, "status": export_status(export), "options": export.options, "summary": export.summary,
            "size_bytes": export.size_bytes, "sha256": export.sha256, "created_at": export.created_at,
            "completed_at": export.completed_at,
            "download_url": url_for("studies.download_export", study_id=export.study_id, export_id=export.id)
            if ready else None}


@blp.route("/studies", methods=["POST"])
@auth_required("admin")
@idempotent
@blp.arguments(StudyCreateSchema)
@blp.response(201, StudySchema)
def create_study(data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Define a study owned by the admin's clinic (which participates from the start)."""
    study = study_service.create_study(current_user(), data)
    audit.record("study.create", "study", study.id)
    return study_body(study), 201, {"Location": url_for("studies.get_study", study_id=study.id)}


@blp.route("/studies", methods=["GET"])
@auth_required(*STUDY_ROLES)
@transactional
@blp.arguments(CursorArgsSchema, location="query")
@blp.response(200, page_schema(StudySchema))
def list_studies(page_args: dict[str, Any]) -> dict[str, Any]:
    """Studies the caller may read: admins all definitions, researchers those granted."""
    statement = select(Study).where(study_service.visible_studies(current_user()))
    items, next_cursor = paginate(statement, (Study.created_at, Study.id), page_args)
    return {"items": [study_body(s) for s in items], "next_cursor": next_cursor}


@blp.route("/studies/<uuid:study_id>", methods=["GET"])
@auth_required(*STUDY_ROLES)
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, StudySchema)
def get_study(study_id: uuid.UUID) -> dict[str, Any]:
    """One study definition."""
    return study_body(study_service.get_study_or_404(current_user(), study_id))


@blp.route("/studies/<uuid:study_id>/clinics/<uuid:clinic_id>", methods=["PUT"])
@auth_required("admin")
@transactional
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, StudySchema)
def join_study(study_id: uuid.UUID, clinic_id: uuid.UUID) -> dict[str, Any]:
    """Add the admin's own clinic to a study (its consenting patients become eligible)."""
    user = current_user()
    study = study_service.get_study_or_404(user, study_id)
    if study_service.join_study(study, clinic_id, user):
        audit.record("study.clinic_join", "study", study.id, clinic=str(clinic_id))
    return study_body(study)


@blp.route("/studies/<uuid:study_id>/clinics/<uuid:clinic_id>", methods=["DELETE"])
@auth_required("admin")
@transactional
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(204)
def leave_study(study_id: uuid.UUID, clinic_id: uuid.UUID) -> Response:
    """Remove the admin's own clinic from a study (later exports leave its patients out)."""
    user = current_user()
    study = study_service.get_study_or_404(user, study_id)
    if study_service.leave_study(study, clinic_id, user):
        audit.record("study.clinic_leave", "study", study.id, clinic=str(clinic_id))
    return Response(status=204)


@blp.route("/studies/<uuid:study_id>/privacy-floor", methods=["PUT"])
@auth_required("admin")
@transactional
@blp.arguments(PrivacyFloorSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, StudySchema)
def set_privacy_floor(data: dict[str, Any], study_id: uuid.UUID) -> dict[str, Any]:
    """Set the least protection researchers may ask for: k >= min_k, suppression <= max_suppression."""
    study = study_service.owned_study_or_403(current_user(), study_id)
    study_service.set_privacy_floor(study, data["min_k"], data["max_suppression"])
    audit.record("study.privacy_floor", "study", study.id, min_k=data["min_k"],
                 max_suppression=data["max_suppression"])
    return study_body(study)


@blp.route("/studies/<uuid:study_id>/grants", methods=["GET"])
@auth_required("admin")
@transactional
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, GrantListSchema)
def list_grants(study_id: uuid.UUID) -> dict[str, Any]:
    """Researcher grants of a study the admin's clinic owns (revoked ones included)."""
    return {"items": study_service.owned_study_or_403(current_user(), study_id).grants}


@blp.route("/studies/<uuid:study_id>/grants", methods=["POST"])
@auth_required("admin")
@idempotent
@blp.arguments(GrantCreateSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(201, GrantSchema)
def grant_researcher(data: dict[str, Any], study_id: uuid.UUID) -> tuple[StudyGrant, int]:
    """Grant a researcher access to the study's exports and statistics (re-granting revives)."""
    user = current_user()
    study = study_service.owned_study_or_403(user, study_id)
    grant = study_service.grant_researcher(study, data["researcher_id"], user)
    audit.record("study.grant", "study", study.id, researcher=str(grant.researcher_user_id))
    return grant, 201


@blp.route("/studies/<uuid:study_id>/grants/<uuid:researcher_id>", methods=["DELETE"])
@auth_required("admin")
@transactional
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(204)
def revoke_grant(study_id: uuid.UUID, researcher_id: uuid.UUID) -> Response:
    """Revoke a researcher's access (their earlier downloads cannot be recalled)."""
    study = study_service.owned_study_or_403(current_user(), study_id)
    study_service.revoke_grant(study, researcher_id)
    audit.record("study.revoke", "study", study.id, researcher=str(researcher_id))
    return Response(status=204)


@blp.route("/studies/<uuid:study_id>/exports", methods=["POST"])
@auth_required("researcher")
@idempotent
@blp.arguments(ExportCreateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(202, ExportSchema)
def request_export(data: dict[str, Any], study_id: uuid.UUID) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Request a de-identified export package; a job builds it (poll the Location)."""
    user = current_user()
    study = study_service.get_study_or_404(user, study_id)
    export = export_package.request_export(study, user.id, options_from(study, data))
    audit.record("study_export.request", "study", study.id, export=str(export.id))
    location = url_for("studies.get_export", study_id=study.id, export_id=export.id)
    return export_body(export), 202, {"Location": location}


def granted_export_or_404(study_id: uuid.UUID, export_id: uuid.UUID) -> StudyExport:
    study = study_service.get_study_or_404(current_user(), study_id)
    return study_service.export_of_study_or_404(study, export_id)


@blp.route("/studies/<uuid:study_id>/exports/<uuid:export_id>", methods=["GET"])
@auth_required("researcher")
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, ExportSchema)
def get_export(study_id: uuid.UUID, export_id: uuid.UUID) -> dict[str, Any]:
    """Status of an export; ``download_url`` once ready."""
    return export_body(granted_export_or_404(study_id, export_id))


@blp.route("/studies/<uuid:study_id>/exports/<uuid:export_id>/download", methods=["GET"])
@auth_required("researcher")
@transactional
@blp.response(200, description="The export package (zip).", content_type="application/zip")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def download_export(study_id: uuid.UUID, export_id: uuid.UUID) -> Response:
    """The export zip (409 while it is still being built)."""
    export = granted_export_or_404(study_id, export_id)
    if export.status != "ready" or export.storage_key is None:
        problem(409, f"The export is {export.status}, not ready.", type_="export-not-ready")
    with current_storage().open(export.storage_key) as stream:
        data = stream.read()
    audit.record("study_export.download", "study", study_id, export=str(export.id))
    return Response(data, mimetype=export_package.ZIP_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="study-export-{export.id}.zip"',
        "Cache-Control": "private, no-store"})


@blp.route("/studies/<uuid:study_id>/statistics", methods=["GET"])
@auth_required("researcher")
@transactional
@blp.arguments(DeidentificationArgsSchema, location="query")
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, CohortStatisticsSchema)
def cohort_statistics(args: dict[str, Any], study_id: uuid.UUID) -> dict[str, Any]:
    """Change from baseline per measure, region and milestone (n, mean and median with 95 % CIs,
    Wilcoxon p, share beyond MDC95), split-face paired differences, GAIS and adverse-event
    frequencies, over the released participants (k-anonymity applied as in an export)."""
    study = study_service.get_study_or_404(current_user(), study_id)
    options = options_from(study, args)
    audit.record("study.statistics_read", "study", study.id)
    return export_tables.cohort_statistics(study, options)
