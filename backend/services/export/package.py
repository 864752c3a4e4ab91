"""The export package: the zip of tables, codebook, patches and manifest, built by a job.

The zip holds ``participants.csv``, ``visits.csv``, ``measurements.csv`` (long),
``assessments.csv``, ``adverse_events.csv``, ``summary.csv``, ``codebook.csv`` and
``manifest.json``, the REDCap files ``redcap/data_dictionary.csv``, ``redcap/records.csv`` and
``redcap/instrument_designation.csv`` (optionally ``parquet/<table>.parquet`` copies and region
patches).
"""

from __future__ import annotations

import hashlib
import json
import platform
import uuid
from importlib import metadata
from typing import Any

from backend.extensions import db, now
from backend.jobs import JobContext, PermanentJobError, job_handler
from backend.models.studies import Study, StudyExport
from backend.services import deidentify, webhooks
from backend.services.export import redcap
from backend.services.export.codebook import CODEBOOK_COLUMNS, TABLES, codebook_rows
from backend.services.export.inclusion import included_participants
from backend.services.export.options import ExportOptions
from backend.services.export.patches import region_patch_files
from backend.services.export.tables import build_tables, summary_rows
from backend.services.export.writers import csv_bytes, parquet_bytes, zip_bytes
from backend.storage import current_storage
from imaging.version import ALGORITHM_VERSION

EXPORT_JOB = "build_study_export"
FORMAT_VERSION = 1
ZIP_MEDIA_TYPE = "application/zip"


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
    files.update(redcap_files(tables.rows))
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
    return zip_bytes(files), manifest


def redcap_files(rows: dict[str, list[dict[str, Any]]]) -> dict[str, bytes]:
    """The REDCap data dictionary, longitudinal records and instrument-event designation."""
    milestones = sorted({(r["scheduled_day"], r["milestone"]) for r in rows["visits.csv"]})
    return {
        "redcap/data_dictionary.csv": csv_bytes(redcap.DICTIONARY_COLUMNS, redcap.dictionary_rows()),
        "redcap/records.csv": csv_bytes(redcap.record_columns(), redcap.records(rows)),
        "redcap/instrument_designation.csv": csv_bytes(redcap.DESIGNATION_COLUMNS,
                                                       redcap.designations([m for _, m in milestones])),
    }


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
    webhooks.emit("export.ready", study.owner_clinic_id, {"export_id": export.id, "study_id": study.id})
    return str(export.id)
