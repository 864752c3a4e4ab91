"""The media-type gate: request bodies must be of a type the view accepts (JSON unless declared).

``create_app`` installs :func:`enforce_request_media_type` as a ``before_request`` hook; a view
that takes another body (a photo's bytes, a dashboard form) declares it with :func:`accepts`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import UnsupportedMediaType

JSON_MEDIA_TYPES = ("application/json",)


def accepts(*media_types: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare which request body media types a view accepts (default: JSON only).

    Example: ``@accepts("multipart/form-data")`` on a photo upload view.
    """
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view.accepted_media_types = tuple(media_types)  # type: ignore[attr-defined]
        return view
    return decorate


def _accepted_media_types(app: Flask) -> tuple[str, ...]:
    view = app.view_functions.get(request.endpoint or "")
    if view is None:
        return JSON_MEDIA_TYPES
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        view = getattr(view_class, request.method.lower(), view)
    return getattr(view, "accepted_media_types", JSON_MEDIA_TYPES)


def _is_json_media_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def enforce_request_media_type(app: Flask) -> None:
    """``before_request``: 415 when a request body has a media type the view does not accept."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
    if not has_body:
        return
    accepted = _accepted_media_types(app)
    mimetype = request.mimetype
    if mimetype in accepted or ("application/json" in accepted and _is_json_media_type(mimetype)):
        return
    raise UnsupportedMediaType(
        f"Request body must be {' or '.join(accepted)}, not {mimetype or 'untyped'}."
    )
