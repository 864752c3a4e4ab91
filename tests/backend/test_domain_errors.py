"""Domain errors: every class has a status in the one mapping table and renders as problem+json."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from backend import errors
from backend.http.problems import DOMAIN_ERROR_STATUS, domain_error_status
from tests.environment import BASE_TEST_CONFIG

PROBLEM = "application/problem+json"

#: One instance of every domain error class and the problem it must be answered with:
#: (status, type slug, title, detail, extra members).
CASES: list[tuple[errors.DomainError, int, str, str, str, dict[str, Any]]] = [
    (errors.DomainError(errors={"x": ["bad"]}), 422, "rule-violation", "Unprocessable Entity", "bad",
     {"errors": {"x": ["bad"]}}),
    (errors.ValidationFailed(errors={"a": ["one", "two"], "b": ["three"]}, slug="invalid-course-design"), 422,
     "invalid-course-design", "Unprocessable Entity", "one; two; three",
     {"errors": {"a": ["one", "two"], "b": ["three"]}}),
    (errors.InvalidRequest(errors={"_schema": ["The invitation is not valid."]}, slug="invitation-invalid"), 400,
     "invitation-invalid", "Bad Request", "The invitation is not valid.",
     {"errors": {"_schema": ["The invitation is not valid."]}}),
    (errors.NotFound("course"), 404, "not-found", "Not Found", "No such course.", {}),
    (errors.Forbidden("Only patients have their own record."), 403, "forbidden", "Forbidden",
     "Only patients have their own record.", {}),
    (errors.Conflict(errors={"version": ["already granted"]}, slug="consent-already-granted"), 409,
     "consent-already-granted", "Conflict", "already granted", {"errors": {"version": ["already granted"]}}),
    (errors.ConsentRequired("The patient has not granted consent to clinical photos.", title="Consent required"),
     409, "consent-required", "Consent required", "The patient has not granted consent to clinical photos.", {}),
    (errors.ImageRefused("The image is greyscale.", title="Photo refused", slug="image-greyscale-image",
                         code="greyscale_image"), 422, "image-greyscale-image", "Photo refused",
     "The image is greyscale.", {"code": "greyscale_image"}),
    (errors.UnsupportedImage("Not an image.", title="Photo refused", slug="image-unsupported-format",
                             code="unsupported_format"), 415, "image-unsupported-format", "Photo refused",
     "Not an image.", {"code": "unsupported_format"}),
    (errors.Unauthenticated("The refresh token is invalid, expired or revoked.", slug="invalid-refresh-token"), 401,
     "invalid-refresh-token", "Unauthorized", "The refresh token is invalid, expired or revoked.", {}),
    (errors.RefreshTokenReused(), 401, "refresh-token-reused", "Unauthorized",
     "This refresh token was already used; the sign-in has been ended.", {}),
    (errors.SignInRefused(), 401, "invalid-credentials", "Unauthorized", "Email or password is wrong.", {}),
    (errors.SignInRateLimited(42), 429, "login-rate-limited", "Too Many Requests",
     "Too many failed sign-ins; retry after 42 seconds.", {"retry_after": 42}),
]


def domain_error_classes() -> set[type[errors.DomainError]]:
    return {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.DomainError)}


def test_every_domain_error_class_has_a_status_and_a_case():
    assert set(DOMAIN_ERROR_STATUS) <= domain_error_classes()
    assert {type(error) for error, *_ in CASES} == domain_error_classes()
    for error, status, *_ in CASES:
        assert domain_error_status(error) == status, type(error).__name__


@pytest.fixture
def raising_app(tmp_path):
    """A separate app with a route that raises the case's error (the shared app already serves)."""
    from backend import create_app

    application = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"})
    raised: dict[str, errors.DomainError] = {}

    @application.get("/api/v1/test-domain-error")
    def raise_domain_error():
        raise raised["error"]

    application.config["RAISED"] = raised
    return application


@pytest.mark.parametrize(("error", "status", "slug", "title", "detail", "members"), CASES,
                         ids=lambda value: type(value).__name__ if isinstance(value, errors.DomainError) else "")
def test_domain_error_is_answered_with_its_problem(raising_app, error, status, slug, title, detail, members):
    raising_app.config["RAISED"]["error"] = error
    response = raising_app.test_client().get("/api/v1/test-domain-error")
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"] == f"urn:skintrack:problem:{slug}"
    assert (body["status"], body["title"], body["detail"]) == (status, title, detail)
    assert body["instance"] == "/api/v1/test-domain-error"
    assert {k: v for k, v in body.items() if k not in {"type", "title", "status", "detail", "instance",
                                                       "request_id"}} == members
    if "retry_after" in members:
        assert response.headers["Retry-After"] == str(members["retry_after"])
    else:
        assert "Retry-After" not in response.headers


def test_only_refusals_that_must_be_recorded_keep_the_changes_before_them():
    assert {cls for cls in domain_error_classes() if cls.keeps_changes} == {errors.SignInRefused,
                                                                           errors.RefreshTokenReused}
