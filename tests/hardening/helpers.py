"""Shared helpers of the hardening tests: what the system holds, and the integrity check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from click.testing import Result
from flask import Flask
from sqlalchemy import func, select

from backend.extensions import db
from backend.models.jobs import Job
from backend.models.photos import Photo, PhotoAnalysis, PhotoUpload
from backend.ops.integrity import IntegrityReport, check_integrity
from backend.storage import current_storage


@dataclass(frozen=True)
class Holdings:
    """Row counts of the photo tables and every storage key, at one moment."""

    photos: int
    uploads: int
    analyses: int
    jobs: int
    keys: tuple[str, ...]


def holdings(app: Flask) -> Holdings:
    """What the database and the photo store hold right now."""
    with app.app_context():
        def count(model: Any) -> int:
            return db.session.scalar(select(func.count()).select_from(model)) or 0

        snapshot = Holdings(count(Photo), count(PhotoUpload), count(PhotoAnalysis), count(Job),
                            tuple(current_storage().iter_keys("")))
        db.session.rollback()
        return snapshot


def integrity(app: Flask, **options: Any) -> IntegrityReport:
    """Run :func:`backend.ops.integrity.check_integrity` with no grace period (tests are not live traffic)."""
    with app.app_context():
        return check_integrity(grace_s=0, **options)


def run_check_integrity_cli(app: Flask, *args: str) -> Result:
    """``flask check-integrity --grace 0 ...`` through the app's real CLI."""
    return app.test_cli_runner().invoke(args=["check-integrity", "--grace", "0", *args])
