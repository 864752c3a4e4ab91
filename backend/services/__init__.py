"""Domain services: the rules behind the API, independent of HTTP.

Views call these functions; they add rows to the current session and never commit (the request
commits once, see ``backend.http.idempotency``).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from backend.extensions import db


class RuleViolation(ValueError):
    """A request that is well-formed but breaks a domain rule.

    Attributes
    ----------
    errors : dict of str to list of str
        Messages by field (``_schema`` for the whole object), as in validation problems.
    status : int
        422 when the input itself is unacceptable, 409 when it conflicts with stored state.
    type_ : str
        Problem type slug, e.g. ``"consent-not-granted"``.
    """

    def __init__(self, errors: dict[str, list[str]], *, status: int = 422, type_: str = "rule-violation"):
        super().__init__("; ".join(message for messages in errors.values() for message in messages))
        self.errors = errors
        self.status = status
        self.type_ = type_


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


def insert_or_conflict(row: object, errors: dict[str, list[str]], type_: str) -> None:
    """Insert a row; a unique-constraint race becomes a 409 :class:`RuleViolation`.

    Services check uniqueness before inserting, but two concurrent requests can both pass
    the check (PostgreSQL, read committed); the constraint then stops the second. The
    insert runs in a savepoint, so the request's transaction stays usable.

    Parameters
    ----------
    row : object
        A new mapped instance.
    errors : dict of str to list of str
        The problem's field errors if the insert conflicts.
    type_ : str
        The problem type slug.
    """
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        raise RuleViolation(errors, status=409, type_=type_) from None
