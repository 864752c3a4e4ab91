"""Fixtures of the clinical tests; import the ones a module uses (``from ... import *``).

The clock starts at noon UTC on 2026-03-01, the baseline date of factory-made courses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests import factories
from tests.backend.clock import FakeClock

__all__ = ["clock", "app_config", "world", "headers_of", "PROBLEM", "assert_problem"]

PROBLEM = "application/problem+json"
BASELINE = dt.date(2026, 3, 1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc))


@pytest.fixture
def app_config(app_config: dict[str, Any], clock: FakeClock) -> dict[str, Any]:
    return {**app_config, "CLOCK": clock}


@pytest.fixture
def world(app) -> Any:
    """See :func:`tests.factories.make_clinical_world`."""
    return factories.make_clinical_world(app)


@pytest.fixture
def headers_of(app, world) -> Callable[[str], dict[str, str]]:
    """``headers_of("clinician_a")``: bearer headers of a world user (cached per test)."""
    cache: dict[str, dict[str, str]] = {}

    def headers(name: str) -> dict[str, str]:
        if name not in cache:
            cache[name] = factories.auth_headers(app, getattr(world, name))
        return cache[name]

    return headers


def assert_problem(response: TestResponse, status: int, *, type_: str | None = None,
                   fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """Assert an RFC 9457 problem response and return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    if type_ is not None:
        assert body["type"] == f"urn:skintrack:problem:{type_}"
    for field in fields:
        assert field in body.get("errors", {}), body
    return body
