"""Contract fuzzing: schemathesis drives every operation of the OpenAPI spec through the WSGI app,
authenticated as each role, and requires zero server errors and responses that conform to the
spec (documented status, content type, body schema).

Path parameters are filled with real ids of a clinical world (so requests reach the views, not
only the 404s of random UUIDs); everything else is generated from the spec. Examples per
operation: ``SCHEMATHESIS_EXAMPLES`` (default 8), derandomised so CI runs are reproducible.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories
from tests.backend.photo_helpers import grant_photo_consent, phone_png, upload

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: The role's user in the clinical world.
ROLE_USERS = {"patient": "patient_user", "clinician": "clinician_a", "admin": "admin_a", "researcher": "researcher"}


def _known_ids(app, client, world, headers_of) -> dict[str, str]:
    grant_photo_consent(app, world.patient, world.clinician_a)
    photo = upload(client, headers_of("patient_user"), world.patient.id, phone_png(), content_type="image/png",
                   course_id=world.course.id).get_json()
    return {"patient_id": str(world.patient.id), "course_id": str(world.course.id), "photo_id": photo["id"],
            "user_id": str(world.clinician_a.id), "adverse_event_id": str(world.adverse_event.id),
            "clinic_id": str(world.clinic_a.id)}


@pytest.mark.parametrize("role", sorted(ROLE_USERS))
def test_api_conforms_to_its_spec_under_fuzzing(app, client, world, headers_of, database_backend, role):
    if database_backend != "sqlite":
        pytest.skip("the contract does not depend on the database; fuzzed on SQLite")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    known = _known_ids(app, client, world, headers_of)
    user = getattr(world, ROLE_USERS[role])
    failures: list[str] = []
    operations = 0
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        path_parameters = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}
        # Fresh tokens per operation: fuzzing logout or a password change must not blind the rest.
        headers = factories.auth_headers(app, user)

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(path_parameters=path_parameters))
        def fuzz(case: Any) -> None:  # called below, within this iteration of the loop
            try:
                statuses.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)  # noqa: B023
            except Exception as error:  # collected: one report of every failing operation
                failures.append(f"{operation.label}: {type(error).__name__}: {str(error)[:600]}")  # noqa: B023
                raise

        try:
            fuzz()
        except Exception:
            pass
    assert operations > 20 and len(statuses) >= operations
    assert any(200 <= status < 300 for status in statuses)  # not only refusals
    assert not failures, "\n\n".join(dict.fromkeys(failures))
