"""Consistency check of the database against the photo store (``flask --app backend check-integrity``).

After any fault (a storage failing mid-write, a worker killed, a restart with jobs queued,
racing retries) every accepted photo must be stored once and analysed at the current
algorithm version, and nothing may be left behind. :func:`check_integrity` reports each
departure as a :class:`Finding` naming ids and storage keys only (never health data):

``orphan_file``
    An object in storage no row references (and no queued or running job will claim).
``missing_bytes``
    A row (photo, overlay, baseline reference, export) whose object is not in storage.
``stuck_job``
    A job still ``running`` after its lease ended (its worker died and no sweep re-ran it).
``unanalysed_photo``
    A stored photo without an analysis at the current algorithm version and no queued or
    running job that would produce one.
``audit_chain``
    The audit hash chain is broken (first broken sequence number).

Objects younger than ``grace_s`` are skipped as orphans: a request writes a photo's bytes
before its transaction commits, so a check running beside live traffic would otherwise
report in-flight uploads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from sqlalchemy import and_, select

from backend.extensions import db
from backend.models.jobs import Job, JobStatus
from backend.models.photos import Photo, PhotoAnalysis, PhotoOverlay, PhotoUpload
from backend.models.studies import StudyExport
from backend.storage import ObjectNotFound, Storage, current_storage
from imaging.version import ALGORITHM_VERSION

#: Default age (seconds) below which an unreferenced object counts as in flight, not orphaned.
DEFAULT_GRACE_S = 300.0
#: Job states in which a job may still write or remove files.
_ACTIVE_JOB_STATES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class Finding:
    """One inconsistency.

    Attributes
    ----------
    kind : str
        ``orphan_file``, ``missing_bytes``, ``stuck_job``, ``unanalysed_photo`` or ``audit_chain``.
    subject : str
        What it is about: a storage key, or ``<object type>:<uuid>``.
    detail : str
        A short explanation (ids and states only).
    """

    kind: str
    subject: str
    detail: str


@dataclass
class IntegrityReport:
    """Result of :func:`check_integrity`.

    Attributes
    ----------
    findings : list of Finding
        Every inconsistency found, grouped by kind in check order.
    counts : dict of str to int
        What was examined: ``objects``, ``photos``, ``jobs``, ``audit_events``.
    """

    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def of_kind(self, kind: str) -> list[Finding]:
        """The findings of one kind."""
        return [finding for finding in self.findings if finding.kind == kind]

    def to_dict(self) -> dict:
        """JSON-ready form ``{ok, counts, findings: [{kind, subject, detail}]}``."""
        return {"ok": self.ok, "counts": dict(self.counts), "findings": [asdict(f) for f in self.findings]}


def referenced_keys() -> set[str]:
    """Every storage key a row points at (photos, overlays, references, pending uploads, exports)."""
    queries = (
        select(Photo.storage_key).where(Photo.storage_key.is_not(None)),
        select(PhotoOverlay.storage_key).where(PhotoOverlay.storage_key.is_not(None)),
        select(PhotoAnalysis.baseline_reference_key).where(PhotoAnalysis.baseline_reference_key.is_not(None)),
        select(PhotoUpload.staging_key).where(PhotoUpload.status == "pending"),
        select(StudyExport.storage_key).where(StudyExport.storage_key.is_not(None)),
    )
    keys: set[str] = set()
    for query in queries:
        keys.update(db.session.scalars(query))
    return keys


def _photo_ids_with_active_jobs() -> set[str]:
    """Photo ids (str) that a queued or running job (analysis or purge) still works on."""
    payloads = db.session.scalars(select(Job.payload).where(Job.status.in_(_ACTIVE_JOB_STATES)))
    return {str(payload["photo_id"]) for payload in payloads if isinstance(payload, dict) and "photo_id" in payload}


def _export_ids_in_progress() -> set[str]:
    return {str(export_id) for export_id in db.session.scalars(
        select(StudyExport.id).where(StudyExport.storage_key.is_(None), StudyExport.job_id.in_(
            select(Job.id).where(Job.status.in_(_ACTIVE_JOB_STATES))))
    )}


def _photo_id_of_key(key: str) -> str | None:
    """The photo id segment of ``photos/<patient>/<photo>/...`` keys, else None."""
    parts = key.split("/")
    return parts[2] if len(parts) >= 4 and parts[0] == "photos" else None


def _export_id_of_key(key: str) -> str | None:
    """The export id of ``exports/<study>/<export>.zip`` keys, else None."""
    parts = key.split("/")
    return parts[2].removesuffix(".zip") if len(parts) == 3 and parts[0] == "exports" else None


def find_orphan_files(storage: Storage, grace_s: float) -> tuple[list[Finding], int]:
    """Objects no row references, excluding those a live job or an in-flight request may own.

    Parameters
    ----------
    storage : Storage
        The photo store.
    grace_s : float
        Objects modified (by the wall clock, as storage records it) less than this many seconds ago are skipped (>= 0).

    Returns
    -------
    (list of Finding, int)
        The orphans and the number of objects examined.
    """
    referenced = referenced_keys()
    busy_photos = _photo_ids_with_active_jobs()
    busy_exports = _export_ids_in_progress()
    wall_now = dt.datetime.now(dt.timezone.utc)  # storage times are wall-clock, whatever the app clock says
    findings, examined = [], 0
    for key in storage.iter_keys(""):
        examined += 1
        if key in referenced or _photo_id_of_key(key) in busy_photos or _export_id_of_key(key) in busy_exports:
            continue
        try:
            age_s = (wall_now - storage.stat(key).modified_at).total_seconds()
        except ObjectNotFound:
            continue  # removed while we listed
        if age_s < grace_s:
            continue
        findings.append(Finding("orphan_file", key, "no row references this object"))
    return findings, examined


def find_missing_bytes(storage: Storage) -> list[Finding]:
    """Rows whose referenced object is absent from storage."""
    rows: Iterable[tuple[str, uuid.UUID, str]] = [
        *(("photo", i, k) for i, k in db.session.execute(
            select(Photo.id, Photo.storage_key).where(Photo.storage_key.is_not(None)))),
        *(("photo_overlay", i, k) for i, k in db.session.execute(
            select(PhotoOverlay.id, PhotoOverlay.storage_key).where(PhotoOverlay.storage_key.is_not(None)))),
        *(("photo_analysis", i, k) for i, k in db.session.execute(
            select(PhotoAnalysis.id, PhotoAnalysis.baseline_reference_key)
            .where(PhotoAnalysis.baseline_reference_key.is_not(None)))),
        *(("study_export", i, k) for i, k in db.session.execute(
            select(StudyExport.id, StudyExport.storage_key).where(StudyExport.storage_key.is_not(None)))),
    ]
    return [Finding("missing_bytes", f"{kind}:{row_id}", f"object {key} is not in storage")
            for kind, row_id, key in rows if not storage.exists(key)]


def find_stuck_jobs(now: dt.datetime) -> list[Finding]:
    """Jobs still ``running`` whose lease ended before ``now``."""
    jobs = db.session.execute(
        select(Job.id, Job.kind, Job.locked_until)
        .where(Job.status == JobStatus.RUNNING.value, Job.locked_until < now)
        .order_by(Job.locked_until)
    )
    return [Finding("stuck_job", f"job:{job_id}", f"{kind} running past its lease ({until.isoformat()})")
            for job_id, kind, until in jobs]


def find_unanalysed_photos(version: str = ALGORITHM_VERSION) -> list[Finding]:
    """Stored photos without a ``version`` analysis and no active job that would make one."""
    analysed = select(PhotoAnalysis.photo_id).where(PhotoAnalysis.algorithm_version == version)
    active = select(Job.id).where(and_(Job.status.in_(_ACTIVE_JOB_STATES), Job.dedupe_key.is_not(None)))
    pending = {key.split(":", 1)[0] for key in db.session.scalars(
        select(Job.dedupe_key).where(Job.id.in_(active), Job.dedupe_key.like(f"%:{version}")))}
    rows = db.session.execute(
        select(Photo.id, Photo.analysis_job_id)
        .where(Photo.deleted_at.is_(None), Photo.storage_key.is_not(None), Photo.id.not_in(analysed))
        .order_by(Photo.created_at, Photo.id)
    )
    findings = []
    for photo_id, job_id in rows:
        if str(photo_id) in pending:
            continue
        job = db.session.get(Job, job_id) if job_id is not None else None
        state = f"last job {job.status}" + (f" ({job.last_error})" if job and job.last_error else "") if job else "no job"
        findings.append(Finding("unanalysed_photo", f"photo:{photo_id}", f"no analysis at {version}; {state}"))
    return findings


def check_integrity(*, storage: Storage | None = None, now: dt.datetime | None = None,
                    grace_s: float = DEFAULT_GRACE_S, version: str = ALGORITHM_VERSION) -> IntegrityReport:
    """Run every check inside the current app context (read-only).

    Parameters
    ----------
    storage : Storage, optional
        The photo store; default the app's.
    now : datetime, optional
        Current time for job leases (timezone-aware UTC); default the app clock.
    grace_s : float
        Age in seconds below which unreferenced objects are treated as in flight.
    version : str
        Algorithm version every stored photo should have an analysis at.

    Returns
    -------
    IntegrityReport
    """
    from backend import audit
    from backend.extensions import now as app_now

    storage = storage if storage is not None else current_storage()
    moment = now if now is not None else app_now()
    report = IntegrityReport()
    try:
        orphans, examined = find_orphan_files(storage, grace_s)
        report.findings += orphans
        report.findings += find_missing_bytes(storage)
        report.findings += find_stuck_jobs(moment)
        report.findings += find_unanalysed_photos(version)
        chain = audit.verify_chain()
        if not chain.ok:
            report.findings.append(Finding("audit_chain", f"audit_event:{chain.first_broken_seq}",
                                           f"chain broken at seq {chain.first_broken_seq}: {chain.reason}"))
        report.counts = {
            "objects": examined,
            "photos": db.session.scalar(select(db.func.count()).select_from(Photo)) or 0,
            "jobs": db.session.scalar(select(db.func.count()).select_from(Job)) or 0,
            "audit_events": chain.checked,
        }
    finally:
        db.session.rollback()  # read-only: end the transaction
    return report


def remove_orphan_files(report: IntegrityReport, storage: Storage | None = None) -> list[str]:
    """Delete the objects ``report`` found orphaned; return their keys.

    Such objects are left by a request whose database went away after the bytes were written
    (whether its commit happened was unknown, so the request kept them). Only objects past the
    report's grace period are listed, so an upload still in flight is never removed.
    """
    storage = storage if storage is not None else current_storage()
    removed = []
    for finding in report.of_kind("orphan_file"):
        storage.delete(finding.subject)
        removed.append(finding.subject)
    return removed
