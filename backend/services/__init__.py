"""Domain services: the rules behind the API, independent of HTTP.

Views call these functions; they add rows to the current session and never commit (the request
commits once, see ``backend.unit_of_work``). They refuse by raising the domain errors of
:mod:`backend.errors`; nothing here knows about HTTP.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from backend.errors import Conflict
from backend.extensions import db


def apply_changes(row: object, changes: dict[str, object]) -> list[str]:
    """Set validated attribute changes on a model row.

    Parameters
    ----------
    row : object
        A mapped model instance.
    changes : dict
        Attribute name -> new value (already validated).

    Returns
    -------
    list of str
        Names whose value actually changed (for the audit log: names, never values).
    """
    changed = [name for name, value in changes.items() if getattr(row, name) != value]
    for name in changed:
        setattr(row, name, changes[name])
    return changed


def insert_or_conflict(row: object, conflict: Conflict) -> None:
    """Insert a row; a unique-constraint race raises ``conflict``.

    Services check uniqueness before inserting, but two concurrent requests can both pass
    the check (PostgreSQL, read committed); the constraint then stops the second. The
    insert runs in a savepoint, so the request's transaction stays usable.

    Parameters
    ----------
    row : object
        A new mapped instance.
    conflict : Conflict
        What to raise if the insert conflicts.
    """
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        raise conflict from None
