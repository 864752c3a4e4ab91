"""RFC 9457 problem details for every error response.

Views raise werkzeug ``HTTPException``\\ s or call :func:`problem`. flask-smorest's
own errors (validation 422, malformed JSON 400) and Flask-Limiter's 429 go
through the same handler, and unhandled exceptions become a 500 problem that
reveals nothing about internals.
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
from sqlalchemy import exc as sqlalchemy_errors
from werkzeug.exceptions import HTTPException, InternalServerError

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


#: Exception classes that MAY mean the database is unreachable; :func:`database_unavailable`
#: decides (an OperationalError is also raised for e.g. SQLite's "no such table").
DATABASE_UNAVAILABLE_ERRORS = (
    sqlalchemy_errors.OperationalError,
    sqlalchemy_errors.InterfaceError,  # connection already closed
    sqlalchemy_errors.DisconnectionError,
    sqlalchemy_errors.TimeoutError,  # no pooled connection freed in time
)
#: PostgreSQL SQLSTATEs of an unavailable server: connection exceptions (class 08), admin or
#: crash shutdown and "cannot connect now" (57P01-57P03), too many connections (53300).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300")
#: SQLite messages of a transient condition (another writer holds the lock).
_SQLITE_TRANSIENT = ("database is locked", "database table is locked")
#: Seconds a client is told to wait before retrying when the database cannot be reached.
DATABASE_RETRY_AFTER_S = 5


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now (a transient fault).

    True for a dropped or refused connection (SQLAlchemy marks the connection invalidated, or
    the driver reports no SQLSTATE / a connection-class one), an exhausted pool and a locked
    SQLite file; False for errors a retry would not fix (missing table, bad SQL).
    """
    if isinstance(error, (sqlalchemy_errors.DisconnectionError, sqlalchemy_errors.TimeoutError)):
        return True
    if not isinstance(error, sqlalchemy_errors.DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, sqlalchemy_errors.InterfaceError):
        return True
    if not isinstance(error, sqlalchemy_errors.OperationalError):
        return False
    original = error.orig
    if type(original).__module__.startswith("sqlite3"):
        return str(original).startswith(_SQLITE_TRANSIENT)
    sqlstate = getattr(original, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)


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
    app.register_error_handler(Exception, handle_unexpected_exception)
    for database_error in DATABASE_UNAVAILABLE_ERRORS:
        app.register_error_handler(database_error, handle_database_error)
