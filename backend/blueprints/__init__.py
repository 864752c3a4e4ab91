"""Registers every API blueprint under /api/v1 (each engineer adds their line)."""

from __future__ import annotations

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    """Register all blueprints on ``api`` (URL prefixes are set by each blueprint)."""
    from backend.blueprints.admin import blp as admin_blp
    from backend.blueprints.auth import blp as auth_blp

    api.register_blueprint(auth_blp)
    api.register_blueprint(admin_blp)
    from backend.blueprints.clinical import register_clinical
    register_clinical(api)
    from backend.blueprints.uploads_local import blp as uploads_local_blp
    api.register_blueprint(uploads_local_blp)
    from backend.blueprints.photos import blp as photos_blp
    api.register_blueprint(photos_blp)
    from backend.blueprints.progress import blp as progress_blp
    api.register_blueprint(progress_blp)
    from backend.blueprints.studies import blp as studies_blp
    api.register_blueprint(studies_blp)
    from backend.blueprints.webhooks import blp as webhooks_blp
    api.register_blueprint(webhooks_blp)
    from backend.blueprints.patient_app import blp as patient_app_blp
    api.register_blueprint(patient_app_blp)
