"""Re-analysis (``flask --app backend reanalyse``): analyse photos that lack a result of the current
algorithm version (analysed by an older one, or whose analysis failed for good).

Older results are kept (one :class:`PhotoAnalysis` per photo and version); the dashboard and
exports compare results within one version only. ``flask --app backend reanalyse-follow-ups``
replaces current results of follow-ups registered to another baseline than the one that counts
now (:func:`backend.services.photos.stale_analyses`), e.g. stored before the baseline arrived.
"""

from __future__ import annotations

import uuid

from flask import Flask
from sqlalchemy import select

from backend.extensions import db
from backend.jobs import requeue_failed
from backend.jobs.runner import make_worker_id, runner_for_app
from backend.models.clinical import TreatmentCourse
from backend.models.jobs import Job
from backend.models.photos import Photo, PhotoAnalysis
from backend.services.photos import enqueue_analysis, enqueue_stale_reanalysis
from imaging.version import ALGORITHM_VERSION


def photos_needing_analysis(version: str = ALGORITHM_VERSION) -> list[Photo]:
    """Stored (not deleted) photos without an analysis by ``version``, oldest first."""
    analysed = select(PhotoAnalysis.photo_id).where(PhotoAnalysis.algorithm_version == version)
    return list(db.session.scalars(
        select(Photo)
        .where(Photo.deleted_at.is_(None), Photo.storage_key.is_not(None), Photo.id.not_in(analysed))
        .order_by(Photo.created_at, Photo.id)
    ))


def enqueue_reanalysis(version: str = ALGORITHM_VERSION) -> tuple[list[uuid.UUID], int]:
    """Enqueue ``analyse_photo`` for every photo lacking a ``version`` analysis; commit.

    A photo whose analysis job had failed for good (attempts used up, e.g. while storage was
    down) gets that job back with fresh attempts: otherwise it would never be analysed.

    Returns
    -------
    (list of UUID, int)
        The job ids (existing jobs for the same photo and version are reused) and how many of
        them were failed jobs queued again.
    """
    photos = photos_needing_analysis(version)
    job_ids, retried = [], 0
    for photo in photos:
        job = enqueue_analysis(photo)
        retried += requeue_failed(job)
        photo.analysis_job_id = job.id
        job_ids.append(job.id)
    db.session.commit()
    return job_ids, retried


def enqueue_stale_follow_ups() -> tuple[list[uuid.UUID], int]:
    """Enqueue re-analysis of every stale follow-up of every clinic's courses; commit.

    For rows stored before follow-ups were re-analysed when their baseline changed; afterwards
    this finds nothing. A re-analysis job that had failed for good gets fresh attempts.

    Returns
    -------
    (list of UUID, int)
        The job ids and how many of them were failed jobs queued again.
    """
    slots = db.session.execute(
        select(Photo.course_id, Photo.view).where(Photo.deleted_at.is_(None), Photo.milestone_id.is_not(None))
        .distinct().order_by(Photo.course_id, Photo.view)
    ).all()
    job_ids, retried = [], 0
    for course_id, view in slots:
        for job in enqueue_stale_reanalysis(db.session.get(TreatmentCourse, course_id), view):
            retried += requeue_failed(job)
            job_ids.append(job.id)
        db.session.commit()  # one course's lock at a time (backend.services.courses.lock_course)
    return job_ids, retried


def run_here(app: Flask, job_ids: list[uuid.UUID]) -> dict[str, int]:
    """Run these analysis jobs in this process (instead of the workers); count their outcomes.

    Returns
    -------
    dict of str to int
        Jobs per final status, e.g. ``{"done": 3, "failed": 1}``.
    """
    runner = runner_for_app(app, make_worker_id("reanalyse"))
    for job_id in job_ids:
        runner.run_one(job_id)  # None when a worker (or the inline backend) already ran it
    db.session.expire_all()
    statuses = db.session.scalars(select(Job.status).where(Job.id.in_(job_ids))).all()
    return {status: statuses.count(status) for status in sorted(set(statuses))}
