"""Keyset (cursor) pagination with a stable order and opaque cursors.

Views take :class:`schemas.common.CursorArgsSchema` query arguments and return
``{"items": items, "next_cursor": cursor}`` documented by
:func:`schemas.common.page_schema`::

    @blp.arguments(CursorArgsSchema, location="query")
    @blp.response(200, page_schema(PatientSchema))
    def list_patients(args):
        items, next_cursor = paginate(
            select(Patient).where(...), (Patient.created_at, Patient.id), args)
        return {"items": items, "next_cursor": next_cursor}
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from backend.extensions import db
from backend.http.problems import problem
from schemas.common import DEFAULT_PAGE_LIMIT, decode_cursor, encode_cursor


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _from_json(column: InstrumentedAttribute[Any], value: Any) -> Any:
    python_type = column.type.python_type
    if python_type is dt.datetime:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp in cursor")
        return parsed
    if python_type is uuid.UUID:
        return uuid.UUID(value)
    if not isinstance(value, python_type):
        raise ValueError("cursor value has the wrong type")
    return value


def _after(order_columns: Sequence[InstrumentedAttribute[Any]], values: Sequence[Any], descending: bool):
    """SQL condition "row comes after ``values``" in the (lexicographic) order.

    Written as an OR of ANDs rather than a row-value comparison so it means
    the same on every backend.
    """
    alternatives = []
    for position, column in enumerate(order_columns):
        equal_prefix = [order_columns[i] == values[i] for i in range(position)]
        beyond = column < values[position] if descending else column > values[position]
        alternatives.append(and_(*equal_prefix, beyond))
    return or_(*alternatives)


def paginate(
    select_stmt: Select[Any],
    order_columns: Sequence[InstrumentedAttribute[Any]],
    args: Mapping[str, Any],
    *,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """Return one page of a single-entity select and the cursor of the next.

    Parameters
    ----------
    select_stmt : Select
        ``select(Model).where(...)`` without ORDER BY or LIMIT.
    order_columns : sequence of mapped attributes
        Sort key, unique in combination, e.g. ``(Model.created_at, Model.id)``.
    args : mapping
        Loaded :class:`~schemas.common.CursorArgsSchema`: ``limit`` (1..100) and
        ``cursor`` (str or None).
    descending : bool
        Newest first when True.

    Returns
    -------
    items : list
        At most ``limit`` model instances.
    next_cursor : str or None
        Opaque cursor after the last item, None on the last page.
    """
    limit = args.get("limit", DEFAULT_PAGE_LIMIT)
    stmt = select_stmt.order_by(*(c.desc() if descending else c.asc() for c in order_columns))
    cursor = args.get("cursor")
    if cursor:
        try:
            raw = decode_cursor(cursor)
            if len(raw) != len(order_columns):
                raise ValueError("cursor does not fit this list")
            values = [_from_json(c, v) for c, v in zip(order_columns, raw, strict=True)]
        except (ValueError, TypeError):
            problem(422, "The cursor is not valid for this list.", errors={"cursor": ["Invalid cursor."]})
        stmt = stmt.where(_after(order_columns, values, descending))
    rows = list(db.session.scalars(stmt.limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    items = rows[:limit]
    last = items[-1]
    return items, encode_cursor([_to_json(getattr(last, c.key)) for c in order_columns])
