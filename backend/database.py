"""What a database error means: the database is unreachable for now, or something else.

The HTTP layer answers the first with 503 and ``Retry-After``; the photo intake keeps the files
of a request whose commit it cannot confirm (see ``backend.services.photos``).
"""

from __future__ import annotations

from sqlalchemy import exc as sqlalchemy_errors

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
