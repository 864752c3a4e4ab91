"""Schemas shared by every endpoint: RFC 9457 problems and cursor pagination."""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

#: Page size bounds of every list endpoint.
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 100


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details (media type ``application/problem+json``).

    Documentation only: error responses are built by ``backend.http.problems``.
    """

    type = fields.String(
        required=True,
        metadata={"description": "URI identifying the problem type; `about:blank` for plain HTTP "
                                 "statuses, `urn:skintrack:problem:<slug>` for specific ones."},
    )
    title = fields.String(required=True, metadata={"description": "Short summary of the problem type."})
    status = fields.Integer(required=True, metadata={"description": "HTTP status code."})
    detail = fields.String(metadata={"description": "Explanation of this occurrence."})
    instance = fields.String(metadata={"description": "Path of the request that failed."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Validation messages by field (dotted path for nested fields)."},
    )
    request_id = fields.String(metadata={"description": "Request id (also the X-Request-ID header)."})
    code = fields.String(metadata={"description": "For a refused image (photo upload, preview check): the imaging "
                                                  "error code, e.g. `greyscale_image`."})
    retry_after = fields.Integer(metadata={"description": "For 429: seconds until a retry may succeed."})


def encode_cursor(values: list[Any]) -> str:
    """Encode keyset values as an opaque, URL-safe cursor.

    Parameters
    ----------
    values : list
        JSON-serialisable values of the order columns of the last item of a page.

    Returns
    -------
    str
        base64url without padding.
    """
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> list[Any]:
    """Inverse of :func:`encode_cursor`.

    Raises
    ------
    ValueError
        If the cursor is not one this API issued.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
    if not isinstance(values, list) or not values:
        raise ValueError("invalid cursor")
    return values


def _validate_cursor(cursor: str) -> None:
    try:
        decode_cursor(cursor)
    except ValueError:
        raise ma.ValidationError("Not a cursor issued by this API.") from None


class CursorArgsSchema(ma.Schema):
    """Query arguments of every list endpoint."""

    limit = fields.Integer(
        load_default=DEFAULT_PAGE_LIMIT,
        validate=validate.Range(min=1, max=MAX_PAGE_LIMIT),
        metadata={"description": f"Items per page, 1..{MAX_PAGE_LIMIT}."},
    )
    cursor = fields.String(
        load_default=None,
        validate=[validate.Length(max=2000), _validate_cursor],
        metadata={"description": "`next_cursor` of the previous page; omit for the first page."},
    )


@cache
def page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """Return the page envelope schema ``{"items": [...], "next_cursor": str|null}``.

    Parameters
    ----------
    item_schema : type[marshmallow.Schema]
        Schema of one item. The same class always yields the same page class,
        so the OpenAPI spec holds one component per item type.
    """
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return ma.Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(
                required=True, allow_none=True,
                metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
            ),
        },
        name=name,
    )


#: Longest accepted ``Idempotency-Key`` header value.
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class IdempotencyKeyHeaderSchema(ma.Schema):
    """The optional ``Idempotency-Key`` request header of creating POSTs (documentation)."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=MAX_IDEMPOTENCY_KEY_LENGTH),
        metadata={"description": "Client-chosen unique key (e.g. a UUID). A retry with the same "
                                 "key and body replays the first response; the same key with a "
                                 "different body answers 422 `idempotency-key-reused`."},
    )
