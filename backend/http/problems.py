"""RFC 9457 problem details for every error response.

Services raise domain errors (:mod:`backend.errors`), which :data:`DOMAIN_ERROR_STATUS`
maps to statuses here, in one place. Views raise werkzeug ``HTTPException``\\ s or call
:func:`problem` for what is about HTTP itself (a missing body, a bad header). flask-smorest's
own errors (validation 422, malformed JSON 400) and Flask-Limiter's 429 go through the same
handler, and unhandled exceptions become a 500 problem that reveals nothing about internals.
"""

from __future__ import annotations

import http
import logging
import traceback
from collections.abc import Mapping
from typing import Any, NoReturn

from flask import Flask, Response, g, json, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException, InternalServerError

from backend.database import DATABASE_UNAVAILABLE_ERRORS, database_unavailable
from backend.errors import (
    Conflict,
    DomainError,
    Forbidden,
    ImageRefused,
    InvalidRequest,
    NotFound,
    SignInRateLimited,
    Unauthenticated,
    UnsupportedImage,
    ValidationFailed,
)
from schemas.common import ProblemSchema

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:skintrack:problem:"

log = logging.getLogger(__name__)


class ProblemError(HTTPException):
    """An HTTP error carrying problem-details members.

    Raised by :func:`problem`; rendered by :func:`handle_http_exception`.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.title = title
        self.type_ = type_
        self.extra_headers = dict(headers or {})
        self.extensions = dict(extensions or {})


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> NoReturn:
    """Abort the request with a problem+json response.

    Parameters
    ----------
    status : int
        HTTP status, 400..599.
    detail : str
        Human-readable explanation of this occurrence (no health data, no secrets).
    title : str, optional
        Summary of the problem type; defaults to the HTTP status phrase.
    type_ : str, optional
        A slug such as ``"idempotency-key-reused"`` (becomes
        ``urn:skintrack:problem:<slug>``) or a full URI; default ``about:blank``.
    headers : mapping, optional
        Extra response headers (e.g. ``Retry-After``).
    **extensions
        Extra members of the problem object (e.g. ``errors={field: [messages]}``).

    Raises
    ------
    ProblemError
        Always.
    """
    raise ProblemError(status, detail, title=title, type_=type_, headers=headers, extensions=extensions)


def _problem_type(type_: str | None) -> str:
    if not type_:
        return "about:blank"
    return type_ if ":" in type_ else PROBLEM_TYPE_PREFIX + type_


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow/webargs messages into ``{dotted.field: [messages]}``.

    Parameters
    ----------
    messages : dict | list | str
        As marshmallow's ``ValidationError.messages``; webargs nests them under
        the location (``json``, ``query`` ...), which is dropped.
    prefix : str
        Path of the enclosing field.
    """
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for field, texts in flatten_errors(value, path).items():
                flat.setdefault(field, []).extend(texts)
        return flat
    if isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "_schema": list(messages)}
        flat = {}
        for item in messages:
            for field, texts in flatten_errors(item, prefix).items():
                flat.setdefault(field, []).extend(texts)
        return flat
    return {prefix or "_schema": [str(messages)]}


def _webargs_errors(data: Mapping[str, Any]) -> dict[str, list[str]]:
    messages = data.get("errors", data.get("messages"))
    if not isinstance(messages, Mapping):
        return flatten_errors(messages) if messages else {}
    # webargs keys messages by location: {"json": {...}, "query": {...}}; a
    # list directly under a location is about the whole body (e.g. bad JSON).
    flat: dict[str, list[str]] = {}
    for location, location_messages in messages.items():
        prefix = "" if isinstance(location_messages, Mapping) else f"_{location}"
        for field, texts in flatten_errors(location_messages, prefix).items():
            flat.setdefault(field, []).extend(texts)
    return flat


def problem_response(
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    type_: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """Build a problem+json :class:`flask.Response` (for handlers outside views)."""
    phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": _problem_type(type_),
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
        "instance": request.path,
    }
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    for name, value in (extensions or {}).items():
        if name not in body:
            body[name] = value
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


#: Headers of an HTTPException that describe the error rather than the body.
_PASSTHROUGH_HEADERS = {"allow", "retry-after", "www-authenticate"}


def handle_http_exception(error: HTTPException) -> Response:
    """Render any werkzeug/flask-smorest/Flask-Limiter HTTP error as problem+json."""
    status = error.code or 500
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() in _PASSTHROUGH_HEADERS
    }
    extensions: dict[str, Any] = {}
    title = type_ = None
    detail = error.description
    if isinstance(error, ProblemError):
        title, type_ = error.title, error.type_
        headers.update(error.extra_headers)
        extensions.update(error.extensions)
    data = getattr(error, "data", None)
    if isinstance(data, Mapping):
        # flask-smorest / webargs abort(): validation messages and headers.
        errors = _webargs_errors(data)
        if errors:
            extensions["errors"] = errors
            if status == 422:
                detail = "The request did not validate; see errors."
            elif status == 400:
                detail = "; ".join(text for texts in errors.values() for text in texts)
        headers.update(data.get("headers") or {})
        if isinstance(data.get("message"), str):
            detail = data["message"]
    if status == 429:
        retry_after = _retry_after_seconds(error, headers)
        headers["Retry-After"] = str(retry_after)
        extensions.setdefault("retry_after", retry_after)
        if "Too Many Requests" in (detail or "") or not detail:
            detail = f"Too many requests; retry after {retry_after} seconds."
    if status >= 500:
        detail = None  # never reveal internals
    return problem_response(
        status, detail=detail, title=title, type_=type_, headers=headers, extensions=extensions
    )


def _retry_after_seconds(error: HTTPException, headers: Mapping[str, str]) -> int:
    value = headers.get("Retry-After")
    if value is not None and str(value).isdigit():
        return max(1, int(value))
    # Flask-Limiter: RateLimitExceeded.limit holds the window that was exceeded.
    limit = getattr(getattr(error, "limit", None), "limit", None)
    if limit is not None:
        return max(1, int(limit.get_expiry()))
    return 60  # no better knowledge: one minute


#: Seconds a client is told to wait before retrying when the database cannot be reached.
DATABASE_RETRY_AFTER_S = 5


def handle_database_error(error: Exception) -> Response:
    """503 (retry later) when the database is unreachable; anything else is a 500.

    A restart of PostgreSQL, a broken connection or a pool exhausted for too long is
    transient: the client retries (with the same ``Idempotency-Key``, so nothing is created
    twice). Logged by class only: the message may hold SQL parameters.
    """
    if not database_unavailable(error):
        return handle_unexpected_exception(error)
    log.warning("database unavailable (%s) in request %s", type(error).__name__, g.get("request_id"))
    return problem_response(
        503,
        detail=f"The database is unavailable; retry after {DATABASE_RETRY_AFTER_S} seconds "
               "(with the same Idempotency-Key).",
        title="Service Unavailable", type_="database-unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        extensions={"retry_after": DATABASE_RETRY_AFTER_S},
    )


def handle_unexpected_exception(error: Exception) -> Response:
    """Log an unhandled exception (type and request id only) and answer 500."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    # The exception message may contain SQL parameters or user data: log the
    # class and the stack frames, not the message.
    log.error(
        "unhandled %s in request %s\n%s", type(error).__name__, g.get("request_id"),
        "".join(traceback.format_tb(error.__traceback__)),
    )
    return handle_http_exception(InternalServerError())


# ---------------------------------------------------------------- domain errors

#: HTTP status of each domain error class; an error takes the entry of its nearest listed class.
DOMAIN_ERROR_STATUS: Mapping[type[DomainError], int] = {
    DomainError: 422,
    ValidationFailed: 422,
    InvalidRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    UnsupportedImage: 415,
    ImageRefused: 422,
    SignInRateLimited: 429,
}


def domain_error_status(error: DomainError) -> int:
    """The HTTP status of a domain error (:data:`DOMAIN_ERROR_STATUS`)."""
    return next(DOMAIN_ERROR_STATUS[cls] for cls in type(error).__mro__ if cls in DOMAIN_ERROR_STATUS)


def domain_problem(error: DomainError) -> ProblemError:
    """The problem a domain error is answered with (status, type, title, detail, members).

    A ``retry_after`` member is also sent as the ``Retry-After`` header.
    """
    extensions = dict(error.extensions)
    if error.errors is not None:
        extensions["errors"] = error.errors
    retry_after = extensions.get("retry_after")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return ProblemError(domain_error_status(error), error.detail, title=error.title, type_=error.slug,
                        headers=headers, extensions=extensions)


def handle_domain_error(error: DomainError) -> Response:
    """Render a domain error as problem+json."""
    return handle_http_exception(domain_problem(error))


# ---------------------------------------------------------------- flask-smorest

class ProblemApi(Api):
    """flask-smorest ``Api`` whose errors and documented error responses are problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # Same as flask-smorest's, but with the problem media type.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:  # type: ignore[override]
        return handle_http_exception(error)


def register_error_handlers(app: Flask) -> None:
    """Route every error of ``app`` through the problem+json handlers."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected_exception)
    for database_error in DATABASE_UNAVAILABLE_ERRORS:
        app.register_error_handler(database_error, handle_database_error)
