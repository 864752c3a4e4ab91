"""The ``analyse_photo`` job: measure one photo and store the results with their version.

Idempotent per (photo, algorithm version): a run that finds that analysis stored returns
it; storage keys of overlays and references are derived from the photo and version, so a
re-run after a crash overwrites its own partial files. A follow-up photo is registered to
the course baseline (the photo counting for the baseline milestone in the same view). When
that baseline changes, the follow-up's stored analysis is stale
(:func:`backend.services.photos.stale_analyses`) and the job replaces it.
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any

from backend.extensions import db
from backend.jobs import JobContext, JobError, PermanentJobError, job_handler
from backend.models.clinical import Patient
from backend.models.photos import Photo, PhotoAnalysis, PhotoMeasurement, PhotoOverlay
from backend.services import webhooks
from backend.services.courses import lock_course
from backend.services.photos import (
    ANALYSE_JOB,
    enqueue_stale_reanalysis,
    find_analysis,
    in_baseline_milestone,
    registration_baseline,
    stored_quality,
)
from backend.services.repeatability import enqueue_recompute_when_paired
from backend.storage import ObjectNotFound, current_storage
from backend.unit_of_work import after_transaction
from imaging.catalogue import ALL_SKIN
from imaging.errors import ImageError
from imaging.version import ALGORITHM_VERSION

log = logging.getLogger(__name__)

#: Region name of measures over all skin of the face.
ALL_SKIN_REGION = ALL_SKIN.key


def analysis_prefix(photo: Photo, version: str) -> str:
    """Storage prefix of one version's derived files of a photo."""
    return f"{photo.prefix}analysis/{version.replace('+', '_')}/"


def flatten_measures(measures: dict[str, Any] | None, prefix: str = "") -> dict[str, float | None]:
    """Numeric leaves of a nested measure dict as ``{"dotted.name": value}``.

    Parameters
    ----------
    measures : dict or None
        One entry of imaging's ``metrics``/``regions`` (JSON-safe: NaN already None).
    prefix : str
        Dotted path of the enclosing dict.

    Returns
    -------
    dict
        Float values (bools and strings are not measures and are skipped); None kept for
        measures that could not be computed.
    """
    flat: dict[str, float | None] = {}
    for name, value in (measures or {}).items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten_measures(value, path + "."))
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            flat[path] = None if value is None else float(value)
    return flat


def measurement_rows(metrics: dict | None, regions: dict | None) -> list[PhotoMeasurement]:
    """One :class:`PhotoMeasurement` per region and measure (``all_skin`` for ``metrics``)."""
    rows = []
    for region, measures in [(ALL_SKIN_REGION, metrics), *sorted((regions or {}).items())]:
        for measure, value in sorted(flatten_measures(measures).items()):
            rows.append(PhotoMeasurement(region=region, measure=measure, value=value))
    return rows


def _delete_when_committed(keys: list[str], committed: bool) -> None:
    """Delete a replaced analysis's stored files once the replacing transaction committed."""
    if committed:
        storage = current_storage()
        for key in keys:
            storage.delete(key)


def read_object(key: str) -> bytes:
    """All bytes of a stored object."""
    with current_storage().open(key) as stream:
        return stream.read()


def baseline_reference_for(baseline: Photo | None):
    """The reference a follow-up is registered to, with the baseline photo's id.

    Parameters
    ----------
    baseline : Photo or None
        The follow-up's :func:`~backend.services.photos.registration_baseline`.

    Returns
    -------
    (BaselineReference or None, UUID or None)
        ``(None, None)`` without a baseline (a baseline photo itself, unassigned photos, while
        the course has no usable baseline). The stored reference of the baseline's analysis is
        used when present; otherwise it is computed from the baseline bytes.
    """
    from imaging.analysis import BaselineReference, baseline_reference_from

    if baseline is None:
        return None, None
    stored = find_analysis(baseline.id, ALGORITHM_VERSION)
    if stored is not None and stored.baseline_reference_key:
        try:
            return BaselineReference.from_bytes(read_object(stored.baseline_reference_key)), baseline.id
        except (ObjectNotFound, ValueError):
            pass  # recomputed below
    try:
        return baseline_reference_from(read_object(baseline.storage_key)), baseline.id
    except (ValueError, ImageError):
        return None, None  # no face in the baseline: measure unregistered


@job_handler(ANALYSE_JOB)
def analyse_photo(ctx: JobContext) -> str | None:
    """Job: analyse one photo with the current algorithm and store results and overlays.

    Payload: ``photo_id`` (str), ``algorithm_version`` (str, must be the running version).
    A stored analysis of that version is kept unless it is registered to another baseline than
    the one that counts now (:func:`backend.services.photos.registration_baseline`): then it is
    replaced. A baseline's analysis enqueues this job for the follow-ups that became stale.

    Returns
    -------
    str
        The analysis id (the job's ``result_ref``).

    Raises
    ------
    PermanentJobError
        The photo is gone or deleted, its bytes cannot be decoded, or the job was made for
        another algorithm version.
    JobError
        The stored bytes are missing (retried: storage may be briefly unavailable), or the
        course baseline changed while the photo was analysed (retried against the new one).
    """
    from imaging.analysis import analyze, baseline_reference_from

    version = str(ctx.payload.get("algorithm_version", ALGORITHM_VERSION))
    if version != ALGORITHM_VERSION:
        raise PermanentJobError(f"job is for algorithm {version}, this worker runs {ALGORITHM_VERSION}")
    photo_id = uuid.UUID(str(ctx.payload["photo_id"]))
    photo = db.session.get(Photo, photo_id)
    if photo is None or photo.deleted_at is not None or photo.storage_key is None:
        raise PermanentJobError("photo was deleted")
    target = registration_baseline(photo)
    target_id = target.id if target is not None else None
    existing = find_analysis(photo_id, version)
    if existing is not None and existing.baseline_photo_id == target_id:
        return str(existing.id)  # done, against the baseline that counts now
    try:
        data = read_object(photo.storage_key)
    except ObjectNotFound:
        raise JobError("stored photo bytes not found") from None
    reference, baseline_photo_id = baseline_reference_for(target)
    is_baseline = in_baseline_milestone(photo)
    prefix = analysis_prefix(photo, version)
    course_id = photo.course_id
    db.session.commit()  # end the read transaction before minutes of computing

    try:
        # The stored bytes carry no EXIF camera (sanitised): the photo's device says which camera.
        result = analyze(data, baseline=reference, want_overlays=True,
                         camera=(photo.device, None) if photo.device else None)
    except ImageError as error:
        raise PermanentJobError(f"photo cannot be analysed: {error.code}") from None
    storage = current_storage()
    written: list[str] = []
    overlay_rows = []
    for name, png in sorted(result.overlays.items()):
        stored = storage.put(f"{prefix}{name}.png", png, "image/png")
        written.append(stored.key)
        overlay_rows.append(PhotoOverlay(name=name, storage_key=stored.key, size_bytes=stored.size))
    reference_key = None
    if is_baseline and result.canonical is not None:
        reference_key = storage.put(f"{prefix}baseline_reference.png",
                                    baseline_reference_from(result).to_bytes(), "image/png").key
        written.append(reference_key)

    if course_id is not None:
        # Until this commits, a baseline change waits to look for stale analyses, and then sees
        # this one; what the check below reads is read after the lock.
        lock_course(course_id)
    photo = db.session.get(Photo, photo_id)
    if photo is None or photo.deleted_at is not None:
        for key in written:  # deleted while we computed: leave nothing behind
            storage.delete(key)
        raise PermanentJobError("photo was deleted")
    current = registration_baseline(photo)
    if (current.id if current is not None else None) != target_id:
        # The baseline changed while we computed, and its trigger may have seen no analysis of
        # this photo to replace: measure again against the new one (the retry overwrites our files).
        raise JobError("the course baseline changed during the analysis")
    replaced = find_analysis(photo_id, version)
    if replaced is not None:
        # One analysis per (photo, version): the stale row goes in this transaction, before the
        # new one is inserted, so readers see the old analysis until the commit and the new one
        # after it. Its files this run did not overwrite (a before/after with a baseline that no
        # longer counts) go once the commit succeeded: a failed one leaves the old row its files.
        after_transaction(functools.partial(
            _delete_when_committed, [key for key in [o.storage_key for o in replaced.overlays]
                                     + [replaced.baseline_reference_key] if key is not None and key not in written]))
        db.session.delete(replaced)
        db.session.flush()
    summary = result.to_dict()
    analysis = PhotoAnalysis(
        id=uuid.uuid4(), photo_id=photo_id, algorithm_version=version, baseline_photo_id=baseline_photo_id,
        quality=stored_quality(summary["quality"]),
        summary={k: v for k, v in summary.items() if k not in ("metrics", "regions", "quality")},
        face_found=result.metrics is not None, baseline_reference_key=reference_key,
        measurements=measurement_rows(result.metrics, result.regions), overlays=overlay_rows,
    )
    db.session.add(analysis)
    enqueue_recompute_when_paired(photo, version, replaced=replaced.id if replaced is not None else None)
    if is_baseline:
        # Follow-ups analysed before this baseline (or registered to another) are now stale.
        enqueue_stale_reanalysis(photo.milestone.course, photo.view)
    webhooks.emit("photo.analysed", db.session.get(Patient, photo.patient_id).clinic_id,
                  {"photo_id": photo.id, "patient_id": photo.patient_id, "course_id": photo.course_id})
    log.info("analysed photo %s with %s in %.0f ms%s", photo_id, version, summary["timings_ms"].get("total", 0.0),
             f", replacing analysis {replaced.id}" if replaced is not None else "")
    return str(analysis.id)
