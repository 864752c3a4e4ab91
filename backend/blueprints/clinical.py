"""The clinical blueprints, registered together."""

from __future__ import annotations

from flask_smorest import Api

from backend.blueprints import assessments, courses, enrolment, patients

#: Every clinical blueprint (the authorisation matrix test covers all their routes).
CLINICAL_BLUEPRINTS = (patients.blp, courses.blp, assessments.blp, enrolment.blp)


def register_clinical(api: Api) -> None:
    """Register the clinical blueprints on ``api``."""
    for blueprint in CLINICAL_BLUEPRINTS:
        api.register_blueprint(blueprint)
