"""Photo intake and life cycle: sanitise, gate, store, assign to a milestone, supersede, delete.

Intake order (nothing half-written on failure):

1. decode the upload at gate scale (a refusal by the decoder, :class:`imaging.errors.ImageError`,
   becomes :class:`~backend.errors.ImageRefused`) and sanitise it (:func:`imaging.sanitise.sanitise_photo`: no GPS,
   serial or comments, orientation applied);
2. run the quality gate on the decoded copy (with the course baseline's face geometry for a
   follow-up);
3. write the sanitised bytes under a fresh key (the new photo id's prefix);
4. add the photo row, supersede earlier photos of the same slot, complete the milestone and
   enqueue ``analyse_photo`` in the caller's transaction.

If that transaction does not commit, the file of step 3 is removed once the unit of work has
ended (:func:`backend.unit_of_work.after_transaction`). Removing bytes (delete, consent withdrawal) marks rows first and enqueues a
``purge_photo_files`` job in the same transaction, so the removal is never lost.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import select

from backend import audit
from backend.database import DATABASE_UNAVAILABLE_ERRORS
from backend.errors import ConsentRequired, ImageRefused, NotFound, UnsupportedImage, ValidationFailed
from backend.extensions import db, now
from backend.jobs import Job, JobContext, PermanentJobError, enqueue, job_handler, requeue_done
from backend.models.accounts import User
from backend.models.clinical import Milestone, Patient, TreatmentCourse
from backend.models.photos import Photo, PhotoAnalysis, PhotoOverlay, PhotoUpload
from backend.services import webhooks
from backend.services.courses import lock_course
from backend.services.milestones import clear_milestone_completion, mark_milestone_completed
from backend.storage import ObjectNotFound, PresignedUpload, current_storage
from backend.unit_of_work import after_transaction
from imaging.errors import ImageError
from imaging.version import ALGORITHM_VERSION
from schemas.photos import PHOTO_VIEWS

log = logging.getLogger(__name__)

#: Consent scope that photos need.
PHOTO_CONSENT_SCOPE = "clinical_photo"
#: Job kinds of this module and of :mod:`backend.services.analysis`.
ANALYSE_JOB = "analyse_photo"
PURGE_JOB = "purge_photo_files"
#: File name extension of stored photos by sniffed format.
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "heif": "heic"}


# ------------------------------------------------------------------ refusals

def refuse_image(error: ImageError) -> NoReturn:
    """Raise the domain error for an image the decoder refused, with the imaging ``code``.

    ``unsupported_format`` (not an image we read) is :class:`UnsupportedImage`; every other
    refusal (bomb, greyscale, truncated ...) is :class:`ImageRefused`.
    """
    refusal = UnsupportedImage if error.code == "unsupported_format" else ImageRefused
    raise refusal(error.message, title="Photo refused", slug=f"image-{error.code.replace('_', '-')}",
                  code=error.code) from None


# ------------------------------------------------------------------ capture time and milestones

@dataclass(frozen=True)
class CaptureTime:
    """When a photo was taken.

    Attributes
    ----------
    at : datetime
        UTC-aware instant.
    local_date : date
        Calendar date where it was taken (milestone windows are dates).
    source : str
        ``app``, ``exif`` or ``upload``.
    """

    at: dt.datetime
    local_date: dt.date
    source: str


def resolve_capture_time(app_time: dt.datetime | None, exif_time: dt.datetime | None,
                         upload_time: dt.datetime) -> CaptureTime:
    """Pick the capture time: from the app, else EXIF, else the upload time.

    Parameters
    ----------
    app_time : datetime or None
        Timezone-aware time the app sent.
    exif_time : datetime or None
        EXIF DateTimeOriginal; naive (camera wall clock) unless EXIF had an offset. A naive
        value keeps its calendar date and is stored as if it were UTC (the offset is unknown).
    upload_time : datetime
        Timezone-aware time of the upload.
    """
    if app_time is not None:
        return CaptureTime(app_time.astimezone(dt.timezone.utc), app_time.date(), "app")
    if exif_time is not None:
        aware = exif_time if exif_time.tzinfo is not None else exif_time.replace(tzinfo=dt.timezone.utc)
        return CaptureTime(aware.astimezone(dt.timezone.utc), exif_time.date(), "exif")
    return CaptureTime(upload_time.astimezone(dt.timezone.utc), upload_time.date(), "upload")


def baseline_milestone(course: TreatmentCourse) -> Milestone | None:
    """The course's first milestone (smallest day offset): the reference visit."""
    return min(course.milestones, key=lambda m: m.day_offset, default=None)


def assign_milestone(course: TreatmentCourse, capture_date: dt.date,
                     requested: Milestone | None = None) -> tuple[Milestone | None, bool]:
    """Find the milestone of a capture date.

    Parameters
    ----------
    course : TreatmentCourse
    capture_date : date
        Local calendar date of capture.
    requested : Milestone or None
        The milestone the app named (already checked to belong to ``course``).

    Returns
    -------
    (Milestone or None, bool)
        The requested milestone, else the one whose window (inclusive) contains the date;
        and ``out_of_window``: True when the date is outside that milestone's window (or
        outside every window, in which case the milestone is None).
    """
    if requested is not None:
        window = requested.window
        return requested, not window.opens <= capture_date <= window.closes
    for milestone in course.milestones:
        window = milestone.window
        if window.opens <= capture_date <= window.closes:
            return milestone, False
    return None, True


#: Why a photo does not count for its slot (course, milestone, view), in the order the rule asks.
NOT_COUNTING_REASONS = ("deleted", "superseded", "repeat", "unusable", "out_of_window")


@dataclass(frozen=True)
class PhotoStanding:
    """Whether one photo counts for its slot (course, milestone and view), and if not, why.

    Attributes
    ----------
    counts : bool
        This photo gives the slot's value (milestone completion, series, charts, export).
    reason : str or None
        One of :data:`NOT_COUNTING_REASONS` when it does not count: ``deleted``; ``superseded``
        (a usable retake replaced it, or a newer counting photo of the slot exists);
        ``repeat`` (a repeat capture of another photo: it measures noise, never the visit);
        ``unusable`` (the quality gate refused it); ``out_of_window`` (no milestone, or taken
        outside its window).
    """

    counts: bool
    reason: str | None = None

    @property
    def listed(self) -> bool:
        """Shown to readers as left out (with its reason): not deleted and not replaced by a retake."""
        return not self.counts and self.reason not in ("deleted", "superseded")


def photo_standings(photos: Iterable[Photo]) -> dict[uuid.UUID, PhotoStanding]:
    """Which photo counts: THE rule, used by upload, schedule, progress, charts and export.

    Per slot (course, milestone, view) the newest (``created_at``, then id) photo that is not
    deleted, not superseded, not a repeat capture, usable and in its milestone's window counts;
    every other photo gets the first reason of :data:`NOT_COUNTING_REASONS` that applies. A retake
    supersedes the slot's earlier photos only when it would count itself (:func:`supersedes_slot`),
    so an unusable retake never erases a usable measurement: it is kept and listed as unusable.

    Parameters
    ----------
    photos : iterable of Photo
        Give every photo of the slots asked about (:func:`slot_photos`): a slot's answer depends
        on its other photos.
    """
    standings: dict[uuid.UUID, PhotoStanding] = {}
    candidates: dict[tuple, list[Photo]] = {}
    for photo in photos:
        reason = _not_counting_reason(photo)
        if reason is None:
            candidates.setdefault((photo.course_id, photo.milestone_id, photo.view), []).append(photo)
        else:
            standings[photo.id] = PhotoStanding(False, reason)
    for slot in candidates.values():
        newest = max(slot, key=lambda p: (p.created_at, str(p.id)))
        for photo in slot:
            standings[photo.id] = PhotoStanding(True) if photo is newest else PhotoStanding(False, "superseded")
    return standings


def _not_counting_reason(photo: Photo) -> str | None:
    """The reason a photo cannot count whatever else is in its slot, or None."""
    if photo.deleted_at is not None:
        return "deleted"
    if photo.superseded_by_id is not None:
        return "superseded"
    if photo.repeat_of_id is not None:
        return "repeat"
    if not photo.usable:
        return "unusable"
    if photo.out_of_window or photo.milestone_id is None:
        return "out_of_window"
    return None


def supersedes_slot(photo: Photo) -> bool:
    """A new photo replaces its slot's earlier photos only when it would count itself (a usable,
    in-window retake that is not a repeat capture)."""
    return _not_counting_reason(photo) is None


def slot_photos(course_id: uuid.UUID, milestone_id: uuid.UUID | None, view: str) -> list[Photo]:
    """Every photo of one slot (course, milestone, view), deleted and superseded ones included."""
    if milestone_id is None:
        return []
    return list(db.session.scalars(
        select(Photo).where(Photo.course_id == course_id, Photo.milestone_id == milestone_id, Photo.view == view)
    ))


def counting_photo(course_id: uuid.UUID, milestone_id: uuid.UUID | None, view: str) -> Photo | None:
    """The photo that counts for a slot (:func:`photo_standings`), or None."""
    standings = photo_standings(photos := slot_photos(course_id, milestone_id, view))
    return next((p for p in photos if standings[p.id].counts), None)


def counting_photo_ids(photos: Sequence[Photo]) -> set[uuid.UUID]:
    """Ids among ``photos`` that count for their slot (:func:`photo_standings` over whole slots)."""
    slots = {(p.course_id, p.milestone_id, p.view) for p in photos if p.milestone_id is not None}
    counted: set[uuid.UUID] = set()
    for course_id, milestone_id, view in slots:
        standings = photo_standings(slot_photos(course_id, milestone_id, view))
        counted.update(photo_id for photo_id, standing in standings.items() if standing.counts)
    return counted & {p.id for p in photos}


def course_baseline_photo(course: TreatmentCourse, view: str) -> Photo | None:
    """The course's baseline photo for ``view``: the photo counting for the baseline milestone."""
    milestone = baseline_milestone(course)
    return counting_photo(course.id, milestone.id, view) if milestone is not None else None


# ------------------------------------------------------------------ the baseline a follow-up registers to

def find_analysis(photo_id: uuid.UUID, version: str) -> PhotoAnalysis | None:
    """The stored analysis of a photo by one algorithm version, if any."""
    return db.session.scalar(
        select(PhotoAnalysis).where(PhotoAnalysis.photo_id == photo_id, PhotoAnalysis.algorithm_version == version)
    )


def in_baseline_milestone(photo: Photo) -> bool:
    """The photo belongs to its course's baseline milestone (it is registered to nothing)."""
    milestone = photo.milestone
    return milestone is not None and milestone.id == baseline_milestone(milestone.course).id


def registration_target(course: TreatmentCourse, view: str) -> Photo | None:
    """The photo that follow-ups of a course and view are registered to now, or None.

    The course baseline (:func:`course_baseline_photo`), unless its analysis by the current
    algorithm found no face: then there is nothing to register to and follow-ups are measured
    unregistered. A baseline not analysed yet, or analysed as a follow-up before a new schedule
    made it the baseline (no stored reference), is a target: its reference is computed from its bytes.
    """
    baseline = course_baseline_photo(course, view)
    if baseline is None or baseline.storage_key is None:
        return None
    analysis = find_analysis(baseline.id, ALGORITHM_VERSION)
    if analysis is not None and not analysis.face_found:
        return None
    return baseline


def registration_baseline(photo: Photo) -> Photo | None:
    """The baseline photo this photo's analysis is registered to now (:func:`registration_target`);
    None for a photo of the baseline milestone and for one without a milestone."""
    if photo.milestone is None or in_baseline_milestone(photo):
        return None
    return registration_target(photo.milestone.course, photo.view)


def stale_analyses(course: TreatmentCourse, view: str) -> list[tuple[Photo, PhotoAnalysis]]:
    """Analysed photos of a course and view registered to another baseline than the one now: THE rule.

    A photo's analysis by the current algorithm records the baseline photo it was registered to
    (``baseline_photo_id``, None when there was none). It is stale when that differs from
    :func:`registration_baseline`: a follow-up analysed before the baseline was uploaded, or
    registered to a baseline since superseded by a retake, deleted, or found to have no face; and a
    photo a new schedule moved into the baseline milestone (registered to nothing now, and its
    analysis holds no baseline reference). Photos without a current analysis are left to their
    pending job (it registers to the baseline of its time); deleted ones have nothing to analyse.

    Returns
    -------
    list of (Photo, PhotoAnalysis)
        Each stale photo with its stale analysis, oldest upload first.
    """
    if baseline_milestone(course) is None:
        return []
    target = registration_target(course, view)
    rows = db.session.execute(
        select(Photo, PhotoAnalysis).join(PhotoAnalysis, PhotoAnalysis.photo_id == Photo.id)
        .where(Photo.course_id == course.id, Photo.view == view, Photo.milestone_id.is_not(None),
               Photo.deleted_at.is_(None), Photo.storage_key.is_not(None),
               PhotoAnalysis.algorithm_version == ALGORITHM_VERSION)
        .order_by(Photo.created_at, Photo.id)
    ).all()
    target_id = target.id if target is not None else None
    return [(photo, analysis) for photo, analysis in rows
            if analysis.baseline_photo_id != (None if in_baseline_milestone(photo) else target_id)]


def enqueue_stale_reanalysis(course: TreatmentCourse, view: str) -> list[Job]:
    """Enqueue ``analyse_photo`` for every stale photo of a course and view (:func:`stale_analyses`).

    Call in the transaction of anything that changes the baseline follow-ups register to (a
    baseline's analysis stored, a baseline deleted, a new schedule); the job replaces the stale
    analysis. Only baselines call this, never a follow-up's analysis: no rounds follow. The
    baseline goes first: while the photo follow-ups are to register to is unanalysed or itself
    stale (analysed as a follow-up before a new schedule), only it is queued; its analysis, once
    stored, calls this again and each follow-up then reads its stored reference.

    Returns
    -------
    list of Job
        One per photo queued; the same job again while it has not replaced its analysis.
    """
    lock_course(course.id)  # an analysis job checking the old baseline commits first, and is seen
    target = registration_target(course, view)
    stale = stale_analyses(course, view)
    if target is not None:
        target_analysis = find_analysis(target.id, ALGORITHM_VERSION)
        if target_analysis is None:
            return []
        stale_target = [(photo, analysis) for photo, analysis in stale if photo.id == target.id]
        if stale_target:
            stale = stale_target
    jobs = []
    for photo, analysis in stale:
        job = enqueue_analysis(photo, replacing=analysis, target=None if in_baseline_milestone(photo) else target)
        photo.analysis_job_id = job.id
        jobs.append(job)
    if jobs:
        log.info("re-analysis of %d photo(s) of course %s (%s view) queued: their baseline changed",
                 len(jobs), course.id, view)
    return jobs


# ------------------------------------------------------------------ intake

@dataclass(frozen=True)
class CaptureMetadata:
    """What the app says about a photo (validated by ``schemas.photos.CaptureMetadataSchema``)."""

    course_id: uuid.UUID
    milestone_id: uuid.UUID | None = None
    captured_at: dt.datetime | None = None
    view: str = "front"
    make_up: bool | None = None
    device: str | None = None
    repeat_of_id: uuid.UUID | None = None
    capture_conditions: dict[str, Any] | None = None

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> CaptureMetadata:
        """Build from loaded schema data (extra keys such as ``size_bytes`` are ignored)."""
        return cls(**{name: args.get(name) for name in cls.__dataclass_fields__ if name in args})

    def to_json(self) -> dict[str, Any]:
        """JSON form (stored on a two-phase upload)."""
        return {
            "course_id": str(self.course_id),
            "milestone_id": str(self.milestone_id) if self.milestone_id else None,
            "captured_at": self.captured_at.isoformat() if self.captured_at else None,
            "view": self.view, "make_up": self.make_up, "device": self.device,
            "repeat_of_id": str(self.repeat_of_id) if self.repeat_of_id else None,
            "capture_conditions": self.capture_conditions,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaptureMetadata:
        """Inverse of :meth:`to_json`."""
        return cls(
            course_id=uuid.UUID(data["course_id"]),
            milestone_id=uuid.UUID(data["milestone_id"]) if data.get("milestone_id") else None,
            captured_at=dt.datetime.fromisoformat(data["captured_at"]) if data.get("captured_at") else None,
            view=data["view"], make_up=data.get("make_up"), device=data.get("device"),
            repeat_of_id=uuid.UUID(data["repeat_of_id"]) if data.get("repeat_of_id") else None,
            capture_conditions=data.get("capture_conditions"),
        )


def course_of_patient_or_404(patient: Patient, course_id: uuid.UUID) -> TreatmentCourse:
    """The patient's course with this id, else :class:`NotFound` (never another patient's)."""
    course = db.session.get(TreatmentCourse, course_id)
    if course is None or course.patient_id != patient.id:
        raise NotFound("course")
    return course


def require_photo_consent(patient: Patient) -> None:
    """:class:`ConsentRequired` unless the patient's clinical-photo consent is granted now."""
    from backend.services.patients import current_consent

    if not current_consent(patient, PHOTO_CONSENT_SCOPE):
        raise ConsentRequired("The patient has not granted consent to clinical photos.", title="Consent required")


def check_capture(patient: Patient, metadata: CaptureMetadata) -> tuple[TreatmentCourse, Milestone | None]:
    """Check consent, course, requested milestone and repeated photo before any bytes are processed.

    A repeat capture without a named milestone takes its original's milestone.
    """
    require_photo_consent(patient)
    course = course_of_patient_or_404(patient, metadata.course_id)
    requested = None
    if metadata.milestone_id is not None:
        requested = next((m for m in course.milestones if m.id == metadata.milestone_id), None)
        if requested is None:
            raise ValidationFailed("The milestone does not belong to this course.", slug="invalid-milestone",
                                   errors={"milestone_id": ["not a milestone of course_id"]})
    if metadata.repeat_of_id is not None:
        original = repeated_photo(patient, course, metadata)
        if requested is None and original.milestone_id is not None:
            requested = next(m for m in course.milestones if m.id == original.milestone_id)
    return course, requested


#: Longest time between a photo and its repeat capture.
REPEAT_WINDOW = dt.timedelta(minutes=30)


def _refuse_repeat(reason: str) -> NoReturn:
    raise ValidationFailed(f"This cannot be a repeat capture of that photo: {reason}.", slug="invalid-repeat",
                           title="Invalid repeat capture", errors={"repeat_of_id": [reason]})


def repeated_photo(patient: Patient, course: TreatmentCourse, metadata: CaptureMetadata) -> Photo:
    """The photo a repeat capture repeats, checked before any bytes are processed.

    Raises
    ------
    ValidationFailed
        (422, field ``repeat_of_id``) unless it is a photo of this patient and course, not deleted,
        not itself a repeat, without a repeat yet, of the same view and (when one is named) of
        the same milestone. The capture time is checked by :func:`check_repeat_timing`.
    """
    original = db.session.get(Photo, metadata.repeat_of_id)
    if original is None or original.patient_id != patient.id or original.course_id != course.id:
        _refuse_repeat("not a photo of this patient's course")
    if original.deleted_at is not None:
        _refuse_repeat("that photo was deleted")
    if original.repeat_of_id is not None:
        _refuse_repeat("that photo is itself a repeat capture")
    if original.view != metadata.view:
        _refuse_repeat(f"that photo is of the {original.view} view")
    if metadata.milestone_id is not None and metadata.milestone_id != original.milestone_id:
        _refuse_repeat("that photo belongs to another milestone")
    already = db.session.scalar(select(Photo.id).where(Photo.repeat_of_id == original.id).limit(1))
    if already is not None:
        _refuse_repeat("that photo already has a repeat capture")
    return original


def check_repeat_timing(original: Photo, milestone: Milestone | None, captured_at: dt.datetime) -> None:
    """A repeat capture is of its original's milestone and taken at most 30 minutes from it (422)."""
    if (milestone.id if milestone is not None else None) != original.milestone_id:
        _refuse_repeat("its capture date falls in another milestone")
    if abs(captured_at - original.captured_at) > REPEAT_WINDOW:
        _refuse_repeat(f"taken more than {int(REPEAT_WINDOW.total_seconds() // 60)} minutes from that photo")


def baseline_geometry_for(course: TreatmentCourse, milestone: Milestone | None, view: str):
    """Face geometry of the course baseline (for the follow-up framing checks), or None.

    None for a baseline photo itself, and while the baseline has not been analysed.
    """
    if milestone is None or milestone is baseline_milestone(course):
        return None
    baseline = course_baseline_photo(course, view)
    analysis = latest_analysis(baseline) if baseline is not None else None
    if analysis is None or analysis.baseline_reference_key is None:
        return None
    try:
        return _reference_geometry(analysis.id, analysis.baseline_reference_key)
    except (ObjectNotFound, ValueError):
        return None


@functools.lru_cache(maxsize=1024)
def _reference_geometry(analysis_id: uuid.UUID, key: str):
    """The face geometry in a stored baseline reference (text chunk only, no pixel decode).

    Kept per process: an analysis row and its reference object never change (a new analysis
    is a new row), so every follow-up upload of a course need not fetch the object again.
    Failures raise and are not kept.
    """
    from imaging.analysis import BaselineReference

    with current_storage().open(key) as stream:
        return BaselineReference.geometry_from_bytes(stream.read())


def latest_analysis(photo: Photo) -> PhotoAnalysis | None:
    """The photo's analysis by the current algorithm version, else its newest one."""
    if not photo.analyses:
        return None
    current = [a for a in photo.analyses if a.algorithm_version == ALGORITHM_VERSION]
    return current[-1] if current else photo.analyses[-1]


def exif_camera(decoded) -> str | None:
    """The camera named by the upload's EXIF (make and model; sanitising removes them from the
    stored file): recorded as the photo's ``device`` when the app sent none, because colour
    contrasts of photos from different cameras are not comparable without a chart."""
    name = " ".join(part.strip() for part in (decoded.camera_make, decoded.camera_model) if part and part.strip())
    return name[:64] or None


def stored_quality(quality: dict) -> dict:
    """The part of a quality report kept with a photo or an analysis: ``ok``, ``problems``,
    ``warnings`` (codes that leave the photo usable, e.g. ``smoothing_filter``) and
    ``texture_comparable`` (False when a smoothing filter erased the texture)."""
    return {"ok": quality["ok"], "problems": quality["problems"], "warnings": quality.get("warnings", []),
            "texture_comparable": quality.get("texture_comparable", True)}


def ingest_photo(patient: Patient, metadata: CaptureMetadata, data: bytes, uploader: User) -> Photo:
    """Sanitise, gate, store and register one uploaded photo (in the caller's transaction).

    Parameters
    ----------
    patient : Patient
        Already checked to be visible to ``uploader``.
    metadata : CaptureMetadata
    data : bytes
        The upload as received (any of JPEG, PNG, WebP, HEIC).
    uploader : User

    Returns
    -------
    Photo
        Flushed, with its ``analyse_photo`` job enqueued.

    Raises
    ------
    NotFound, ConsentRequired, ValidationFailed, ImageRefused
        The course, the consent, the milestone, the image.
    """
    from imaging.decode import decode_image
    from imaging.face import detect_face
    from imaging.quality import GATE_DECODE_LONG_SIDE, judge_photo
    from imaging.sanitise import sanitise_photo

    course, requested = check_capture(patient, metadata)
    try:
        decoded = decode_image(data, min_long_side=GATE_DECODE_LONG_SIDE)
        sanitised = sanitise_photo(data, decoded)
    except ImageError as error:
        refuse_image(error)
    capture = resolve_capture_time(metadata.captured_at, decoded.captured_at, now())
    milestone, out_of_window = assign_milestone(course, capture.local_date, requested)
    if metadata.repeat_of_id is not None:
        check_repeat_timing(db.session.get(Photo, metadata.repeat_of_id), milestone, capture.at)
    baseline_geometry = baseline_geometry_for(course, milestone, metadata.view)
    report = judge_photo(decoded, detect_face(decoded.rgb), baseline_geometry)
    quality = report.to_dict()

    photo = Photo(
        id=uuid.uuid4(), patient_id=patient.id, course_id=course.id,
        milestone_id=milestone.id if milestone is not None else None, out_of_window=out_of_window,
        view=metadata.view, captured_at=capture.at, capture_date=capture.local_date,
        capture_time_source=capture.source, make_up=metadata.make_up, device=metadata.device or exif_camera(decoded),
        capture_conditions=metadata.capture_conditions, uploaded_by_user_id=uploader.id, content_type=sanitised.content_type,
        image_format=sanitised.format, width=sanitised.width, height=sanitised.height,
        quality=stored_quality(quality), usable=bool(report.ok),
        repeat_of_id=metadata.repeat_of_id,
    )
    key = photo.prefix + "original." + EXTENSIONS[sanitised.format]
    # Written before the rows: if the transaction then does not commit, the file is removed.
    stored = current_storage().put(key, sanitised.data, sanitised.content_type, overwrite=False)
    after_transaction(functools.partial(_remove_file_unless_committed, photo.id, key))
    photo.storage_key, photo.size_bytes, photo.sha256 = key, stored.size, stored.sha256

    # Only a retake that counts replaces the slot's earlier photos (an unusable one is kept beside them).
    earlier_photos = _current_slot_photos(photo) if supersedes_slot(photo) else []
    db.session.add(photo)
    db.session.flush()  # the row must exist before others point at it
    for earlier in earlier_photos:
        earlier.superseded_by_id = photo.id
    if milestone is not None and photo_standings([photo])[photo.id].counts:
        mark_milestone_completed(milestone, via="photo", at=capture.at, source_id=photo.id)
    db.session.flush()
    # A new baseline re-analyses the follow-ups once its own analysis is stored (enqueued here).
    photo.analysis_job_id = enqueue_analysis(photo).id
    audit.record("photo.create", "photo", photo.id, patient_id=str(patient.id), usable=photo.usable)
    if not photo.usable:
        webhooks.emit("photo.refused", patient.clinic_id, {"photo_id": photo.id, "patient_id": patient.id,
                                                           "course_id": photo.course_id})
    return photo


def _current_slot_photos(photo: Photo) -> list[Photo]:
    """Photos of the same course, milestone and view that nothing supersedes yet."""
    if photo.milestone_id is None:
        return []
    return list(db.session.scalars(
        select(Photo).where(Photo.course_id == photo.course_id, Photo.milestone_id == photo.milestone_id,
                            Photo.view == photo.view, Photo.superseded_by_id.is_(None), Photo.id != photo.id)
    ))


def enqueue_analysis(photo: Photo, *, replacing: PhotoAnalysis | None = None, target: Photo | None = None) -> Job:
    """Enqueue ``analyse_photo`` for the current algorithm version (deduplicated).

    With ``replacing`` (a stale analysis of this version, :func:`stale_analyses`), deduplicated
    per stale analysis and the ``target`` it is to be registered to instead
    (:func:`registration_target`): the photo's first job is done, and a job that found its
    analysis up to date must not stand in for a later change of baseline.
    """
    dedupe_key = f"{photo.id}:{ALGORITHM_VERSION}"
    if replacing is not None:
        dedupe_key += f":{replacing.id}:{target.id if target is not None else 'none'}"
    job = enqueue(ANALYSE_JOB, {"photo_id": str(photo.id), "algorithm_version": ALGORITHM_VERSION},
                  dedupe_key=dedupe_key)
    if replacing is not None:
        # A done job of this key found the analysis up to date (the baseline had changed back
        # before it ran); the analysis is stale again now, so it must run again.
        requeue_done(job)
    return job


#: Lifetime of a two-phase upload's signed URL, seconds.
UPLOAD_URL_TTL_S = 900


def start_upload(patient: Patient, metadata: CaptureMetadata, size_bytes: int, content_type: str,
                 uploader: User) -> tuple[PhotoUpload, PresignedUpload]:
    """Start a two-phase upload: a pending row and a signed URL to PUT exactly ``size_bytes`` to.

    ``check_capture`` must have passed. The bytes arrive at the row's staging key; completing
    the upload ingests them like a direct upload.
    """
    upload = PhotoUpload(
        id=uuid.uuid4(), patient_id=patient.id, course_id=metadata.course_id, created_by_user_id=uploader.id,
        capture=metadata.to_json(), declared_size=size_bytes, declared_content_type=content_type,
        status="pending", expires_at=now() + dt.timedelta(seconds=UPLOAD_URL_TTL_S),
    )
    upload.staging_key = f"uploads/{upload.id}/object"
    signed = current_storage().presign_put(upload.staging_key, content_type, size_bytes, UPLOAD_URL_TTL_S)
    db.session.add(upload)
    return upload, signed


def delete_after_commit(key: str) -> None:
    """Remove a stored object once the unit of work has committed (a staged upload)."""

    def delete_if_committed(committed: bool) -> None:
        if committed:
            current_storage().delete(key)

    after_transaction(delete_if_committed)


def _remove_file_unless_committed(photo_id: uuid.UUID, key: str, committed: bool) -> None:
    """Delete a written photo file unless its row is in the database.

    Nothing to do after a commit. Otherwise the unit of work refused, failed, or lost to a
    concurrent idempotent retry (whose photo row has another id). When a failed commit leaves it
    unknown whether the row was stored (the database went away), the file is kept: deleting
    it could lose an accepted photo. It is then an unreferenced object that
    ``flask check-integrity --remove-orphans`` removes once older than its grace period. The
    request's own error is not masked.
    """
    if committed:
        return
    try:
        db.session.rollback()  # ends a failed transaction
        if db.session.get(Photo, photo_id) is None:
            current_storage().delete(key)
    except DATABASE_UNAVAILABLE_ERRORS as error:
        db.session.rollback()
        log.warning("database unavailable (%s): a written photo file left for check-integrity",
                    type(error).__name__)


# ------------------------------------------------------------------ removal

def delete_photo(photo: Photo, *, reason: str = "deleted") -> bool:
    """Mark a photo deleted and enqueue removal of its bytes and overlays.

    The row stays (with ``deleted_at`` and ``deletion_reason``); a milestone this photo
    completed is re-completed by another counting photo of the milestone or cleared. Follow-ups
    registered to it (a baseline) are re-analysed (:func:`enqueue_stale_reanalysis`).

    Returns
    -------
    bool
        False when the photo was already deleted.
    """
    if photo.course_id is not None:
        # Before deciding anything: a new schedule may be making this photo the baseline, or
        # another request deleting it. Before its row too: every trigger locks in that order.
        lock_course(photo.course_id)
    baseline = in_baseline_milestone(photo)
    if not _mark_deleted(photo, reason):
        return False
    if baseline:
        enqueue_stale_reanalysis(photo.milestone.course, photo.view)
    return True


def _mark_deleted(photo: Photo, reason: str) -> bool:
    """:func:`delete_photo` without re-analysing follow-ups."""
    if photo.deleted_at is not None:
        return False
    photo.deleted_at = now()
    photo.deletion_reason = reason
    photo.storage_key = None
    photo.usable = False
    for analysis in photo.analyses:
        analysis.baseline_reference_key = None
        for overlay in analysis.overlays:
            overlay.storage_key = None
    db.session.flush()
    milestone = photo.milestone
    if milestone is not None and milestone.completed_via == "photo" and milestone.completed_source_id == photo.id:
        clear_milestone_completion(milestone)
        counting = (counting_photo(photo.course_id, milestone.id, view) for view in PHOTO_VIEWS)
        replacement = next((other for other in counting if other is not None), None)
        if replacement is not None:
            mark_milestone_completed(milestone, via="photo", at=replacement.captured_at, source_id=replacement.id)
    enqueue(PURGE_JOB, {"photo_id": str(photo.id)}, dedupe_key=str(photo.id))
    forget_repeat_pair(photo)
    audit.record("photo.delete", "photo", photo.id, patient_id=str(photo.patient_id), reason=reason)
    return True


def forget_repeat_pair(photo: Photo) -> None:
    """A deleted photo of a repeat pair leaves the stored repeatability: recompute its version(s)."""
    from backend.services.repeatability import RECOMPUTE_JOB

    in_pair = photo.repeat_of_id is not None or db.session.scalar(
        select(Photo.id).where(Photo.repeat_of_id == photo.id).limit(1)) is not None
    if not in_pair:
        return
    for version in sorted({a.algorithm_version for a in photo.analyses}):
        enqueue(RECOMPUTE_JOB, {"algorithm_version": version, "photo_id": str(photo.id)},
                dedupe_key=f"deleted:{photo.id}:{version}")


def purge_patient_photos(patient_id: uuid.UUID) -> int:
    """Consent to clinical photos withdrawn: remove every photo's bytes and overlays.

    Also drops pending two-phase uploads (their staged bytes). Call in the transaction that
    records the withdrawal (``backend.services.patients.record_consent`` does).

    Returns
    -------
    int
        Number of photos newly marked deleted.
    """
    photos = db.session.scalars(
        select(Photo).where(Photo.patient_id == patient_id, Photo.deleted_at.is_(None))
    ).all()
    # Every photo of the patient goes: no follow-up is left to re-analyse against another baseline.
    purged = sum(_mark_deleted(photo, "consent_withdrawn") for photo in photos)
    uploads = db.session.scalars(
        select(PhotoUpload).where(PhotoUpload.patient_id == patient_id, PhotoUpload.status == "pending")
    ).all()
    for upload in uploads:
        current_storage().delete(upload.staging_key)
        db.session.delete(upload)
    return purged


@job_handler(PURGE_JOB)
def purge_photo_files(ctx: JobContext) -> str | None:
    """Job: delete every stored object under a deleted photo's prefix (idempotent)."""
    photo = db.session.get(Photo, uuid.UUID(str(ctx.payload["photo_id"])))
    if photo is None:
        raise PermanentJobError("photo not found")
    if photo.deleted_at is None:
        raise PermanentJobError("photo is not deleted")
    storage = current_storage()
    removed = 0
    for key in list(storage.iter_keys(photo.prefix)):
        storage.delete(key)
        removed += 1
    return f"removed {removed}"


def stored_keys(photos: Iterable[Photo]) -> list[str]:
    """Every storage key the rows of ``photos`` still reference (originals, overlays, references)."""
    keys: list[str] = []
    for photo in photos:
        if photo.storage_key:
            keys.append(photo.storage_key)
        for analysis in photo.analyses:
            if analysis.baseline_reference_key:
                keys.append(analysis.baseline_reference_key)
            keys.extend(o.storage_key for o in analysis.overlays if o.storage_key)
    return keys


def overlay_of(photo: Photo, name: str) -> PhotoOverlay | None:
    """The named overlay of the photo's latest analysis, if stored."""
    analysis = latest_analysis(photo)
    if analysis is None:
        return None
    return next((o for o in analysis.overlays if o.name == name and o.storage_key), None)

