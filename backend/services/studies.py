"""Studies: who may read or administer one, joining clinics, researcher grants.

Admins read every study definition (no patient data) and administer studies their clinic owns;
a researcher reads only the studies they hold an active grant for. Any other study is
:class:`~backend.errors.NotFound`, exactly like a missing one.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, select

from backend.errors import Forbidden, NotFound, ValidationFailed
from backend.extensions import db, now
from backend.models.accounts import User
from backend.models.jobs import Job
from backend.models.studies import Study, StudyClinic, StudyExport, StudyGrant
from backend.services.export.options import ExportOptions
from imaging.version import ALGORITHM_VERSION


def active_grant(study_id: Any, user: User) -> Any:
    """SQL condition: ``user`` holds an unrevoked grant on the study."""
    return exists().where(StudyGrant.study_id == study_id, StudyGrant.researcher_user_id == user.id,
                          StudyGrant.revoked_at.is_(None))


def visible_studies(user: User) -> Any:
    """SQL condition on :class:`Study` rows the user may read (admins: all definitions)."""
    if user.role == "admin":
        return Study.id.is_not(None)
    return active_grant(Study.id, user)


def get_study_or_404(user: User, study_id: uuid.UUID) -> Study:
    """The study if the user may read it, else :class:`NotFound`."""
    study = db.session.execute(select(Study).where(Study.id == study_id, visible_studies(user))).scalar_one_or_none()
    if study is None:
        raise NotFound("study")
    return study


def owned_study_or_403(user: User, study_id: uuid.UUID) -> Study:
    """A study the admin's clinic owns (:class:`Forbidden` for another clinic's study)."""
    study = get_study_or_404(user, study_id)
    if study.owner_clinic_id != user.clinic_id:
        raise Forbidden("Only an admin of the study's owning clinic may change its grants or privacy floor.")
    return study


def export_of_study_or_404(study: Study, export_id: uuid.UUID) -> StudyExport:
    """The study's export with this id, else :class:`NotFound`."""
    export = db.session.execute(select(StudyExport).where(
        StudyExport.id == export_id, StudyExport.study_id == study.id)).scalar_one_or_none()
    if export is None:
        raise NotFound("export")
    return export


def set_privacy_floor(study: Study, min_k: int, max_suppression: float) -> None:
    """Set the least protection research requests of the study may ask for."""
    study.min_k, study.max_suppression = min_k, max_suppression


def research_protection(study: Study, k: int | None, max_suppression: float | None) -> tuple[int, float]:
    """The k and suppression share of a research request: the study's floor where not asked.

    Asking for more protection (larger k, less suppression) is allowed; asking for less is refused
    with :class:`ValidationFailed` (``below-privacy-floor``) stating the floor.
    """
    k = study.min_k if k is None else k
    max_suppression = study.max_suppression if max_suppression is None else max_suppression
    errors = {}
    if k < study.min_k:
        errors["k"] = [f"must be at least {study.min_k}, the study's privacy floor"]
    if max_suppression > study.max_suppression:
        errors["max_suppression"] = [f"must be at most {study.max_suppression}, the study's privacy floor"]
    if errors:
        raise ValidationFailed(
            f"This study requires k >= {study.min_k} and max_suppression <= {study.max_suppression}.",
            slug="below-privacy-floor", title="Below the study's privacy floor", errors=errors,
            privacy_floor={"min_k": study.min_k, "max_suppression": study.max_suppression})
    return k, max_suppression


def create_study(admin: User, fields: dict[str, Any]) -> Study:
    """Define a study owned by the admin's clinic, which participates from the start."""
    study = Study(id=uuid.uuid4(), owner_clinic_id=admin.clinic_id, created_by_user_id=admin.id, **fields)
    study.clinics.append(StudyClinic(clinic_id=admin.clinic_id, added_by_user_id=admin.id, created_at=now()))
    db.session.add(study)
    db.session.flush()
    return study


def _own_clinic(admin: User, clinic_id: uuid.UUID, refusal: str) -> None:
    if clinic_id != admin.clinic_id:
        raise Forbidden(refusal)


def join_study(study: Study, clinic_id: uuid.UUID, admin: User) -> bool:
    """Add the admin's own clinic to a study; False when it already participates."""
    _own_clinic(admin, clinic_id, "An admin can add only their own clinic to a study.")
    if any(link.clinic_id == clinic_id for link in study.clinics):
        return False
    study.clinics.append(StudyClinic(clinic_id=clinic_id, added_by_user_id=admin.id, created_at=now()))
    db.session.flush()
    return True


def leave_study(study: Study, clinic_id: uuid.UUID, admin: User) -> bool:
    """Remove the admin's own clinic from a study; False when it did not participate."""
    _own_clinic(admin, clinic_id, "An admin can remove only their own clinic from a study.")
    link = next((link for link in study.clinics if link.clinic_id == clinic_id), None)
    if link is None:
        return False
    study.clinics.remove(link)
    return True


def grant_researcher(study: Study, researcher_id: uuid.UUID, admin: User) -> StudyGrant:
    """Grant an active researcher the study's exports and statistics (re-granting revives a grant)."""
    researcher = db.session.get(User, researcher_id)
    if researcher is None or researcher.role != "researcher" or not researcher.is_active:
        raise ValidationFailed("researcher_id is not an active researcher account.", slug="not-a-researcher",
                               errors={"researcher_id": ["not an active researcher account"]})
    grant = next((g for g in study.grants if g.researcher_user_id == researcher.id), None)
    if grant is None:
        grant = StudyGrant(researcher_user_id=researcher.id, granted_by_user_id=admin.id, created_at=now())
        study.grants.append(grant)
    grant.revoked_at = None
    db.session.flush()
    return grant


def revoke_grant(study: Study, researcher_id: uuid.UUID) -> None:
    """Revoke a researcher's active grant (:class:`NotFound` without one)."""
    grant = next((g for g in study.grants if g.researcher_user_id == researcher_id and g.revoked_at is None), None)
    if grant is None:
        raise NotFound("grant")
    grant.revoked_at = now()


def export_status(export: StudyExport) -> str:
    """The export's status; before it is ready, its job's (queued, running, failed)."""
    if export.status == "ready" or export.job_id is None:
        return export.status
    job = db.session.get(Job, export.job_id)
    return job.status if job is not None and job.status in ("queued", "running", "failed") else export.status


def options_from(study: Study, args: dict[str, Any]) -> ExportOptions:
    """Export options from validated ``ExportCreateSchema`` (or ``DeidentificationArgsSchema``) data,
    with the study's privacy floor applied (:func:`research_protection`: never less protection)."""
    k, max_suppression = research_protection(study, args.get("k"), args.get("max_suppression"))
    return ExportOptions(
        k=k, max_suppression=max_suppression, parquet=args.get("parquet", False),
        view=args["view"], algorithm_version=args.get("algorithm_version") or ALGORITHM_VERSION,
        region_patches=args.get("region_patches", False))
