"""Helpers of the clinical tests: the factory courses' baseline date and problem assertions.

The clinical fixtures (``clock``, ``world``, ``headers_of``) are in ``tests/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from werkzeug.test import TestResponse

PROBLEM = "application/problem+json"
#: Baseline date of factory-made courses (the ``clock`` fixture's day).
BASELINE = dt.date(2026, 3, 1)


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
