"""Domain errors: what the rules refuse, independent of HTTP.

Services (and the sign-in rule in :mod:`backend.auth`) raise these; they never build responses.
One table in :mod:`backend.http.problems` (``DOMAIN_ERROR_STATUS``) maps each class to an HTTP
status and renders the error as problem+json; the dashboard renders the sign-in errors as its
login page.

Every error carries what the problem body shows:

``slug``
    The problem type (``urn:skintrack:problem:<slug>``); each class has a default.
``detail``
    One sentence for the caller (no health data, no secrets); by default the field messages
    joined with ``"; "``.
``title``
    Summary of the problem type; None means the HTTP status phrase.
``errors``
    Messages by field (``_schema`` for the whole object), as in validation problems; None when
    the error is not about fields.
``extensions``
    Further members of the problem body (e.g. the imaging ``code`` of a refused photo).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every refusal by a domain rule.

    Attributes
    ----------
    keeps_changes : bool
        Class attribute. True when what the request wrote before the refusal must be stored
        anyway (a failed sign-in is counted by the login rate limit); the unit of work then
        commits instead of rolling back.
    """

    default_slug: ClassVar[str] = "rule-violation"
    keeps_changes: ClassVar[bool] = False

    def __init__(self, detail: str | None = None, *, slug: str | None = None, title: str | None = None,
                 errors: Mapping[str, list[str]] | None = None, **extensions: Any) -> None:
        self.errors = dict(errors) if errors is not None else None
        self.detail = detail if detail is not None else "; ".join(
            message for messages in (self.errors or {}).values() for message in messages)
        super().__init__(self.detail)
        self.slug = slug or self.default_slug
        self.title = title
        self.extensions = extensions


class InvalidRequest(DomainError):
    """The request cannot be acted on as given (e.g. an unknown or used invitation)."""


class ValidationFailed(DomainError):
    """Well-formed input that breaks a domain rule (field errors say which)."""


class NotFound(DomainError):
    """The object does not exist *or* the caller may not see it: one answer for both."""

    default_slug = "not-found"

    def __init__(self, object_type: str) -> None:
        super().__init__(f"No such {object_type}.")
        self.object_type = object_type


class Forbidden(DomainError):
    """The caller's role may never do this."""

    default_slug = "forbidden"


class Conflict(DomainError):
    """The request conflicts with stored state (a duplicate, a concurrent change, a state)."""


class ConsentRequired(Conflict):
    """The patient has not granted the consent this needs."""

    default_slug = "consent-required"


class ImageRefused(DomainError):
    """An image the decoder read but refuses (bomb, greyscale, truncated ...); ``code`` says why."""


class UnsupportedImage(ImageRefused):
    """Not an image format we read."""


class Unauthenticated(DomainError):
    """No acceptable credentials."""

    default_slug = "unauthenticated"


class SignInRefused(Unauthenticated):
    """Wrong email or password, an inactive account, or a role that may not use this way in.

    The failed attempt and its audit row are stored (the login rate limit counts them).
    """

    default_slug = "invalid-credentials"
    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("Email or password is wrong.")


class RefreshTokenReused(Unauthenticated):
    """A rotated refresh token was presented again: its whole sign-in has been ended.

    The revocation and its audit row are stored.
    """

    default_slug = "refresh-token-reused"
    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("This refresh token was already used; the sign-in has been ended.")


class SignInRateLimited(DomainError):
    """Too many failed sign-ins of this account or from this address; retry after ``retry_after`` s."""

    default_slug = "login-rate-limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed sign-ins; retry after {retry_after} seconds.", retry_after=retry_after)
        self.retry_after = retry_after
