"""The phone's path end to end on the embedded default: SQLite, local disk, in-process jobs.

Through the Flask test client with the ``inline`` job backend (each analysis runs right after
its upload commits); see ``test_production_stack.py`` for the same path through gunicorn,
Celery, PostgreSQL, Redis and S3-compatible storage.
"""

from __future__ import annotations

from imaging.testing import synthetic
from tests import factories
from tests.e2e.phone_path import flask_transport, walk_phone_path


def test_phone_path_embedded(app, client):
    clinic = factories.make_clinic(app, "Embedded Clinic")
    clinician = factories.make_user(app, "clinician", clinic)
    result = walk_phone_path(flask_transport(client), (clinician.email, factories.DEFAULT_PASSWORD))
    for stored in result.downloads.values():
        assert synthetic.SECRET_SERIAL.encode() not in stored
        assert synthetic.SECRET_COMMENT.encode() not in stored
