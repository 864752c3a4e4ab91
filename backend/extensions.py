"""Extension singletons (bound to an app in :func:`backend.create_app`) and the clock."""

from __future__ import annotations

import datetime as dt
import sqlite3

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from backend.http.problems import ProblemApi
from backend.models.base import Base, utcnow

db = SQLAlchemy(model_class=Base)
api = ProblemApi()
# Limits and storage come from RATELIMIT_* config keys (see backend.config).
limiter = Limiter(key_func=get_remote_address)

#: Milliseconds a SQLite connection waits for the write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def now(app: Flask | None = None) -> dt.datetime:
    """Return the current UTC time, from ``app.config["CLOCK"]`` when set: the app's one clock.

    Tests inject a clock there so time-dependent rules (token expiry, login
    rate limits, job retries) are tested without sleeping.

    Parameters
    ----------
    app : Flask, optional
        Whose clock; default the current app. Job workers pass theirs (``functools.partial``),
        so a test that swaps the clock mid-run is seen at every call.

    Returns
    -------
    datetime.datetime
        Timezone-aware UTC.
    """
    clock = (app if app is not None else current_app).config.get("CLOCK")
    return clock() if clock is not None else utcnow()


@event.listens_for(Engine, "connect")
def _configure_sqlite_connection(dbapi_connection, connection_record) -> None:
    """WAL, busy timeout and foreign keys on every SQLite connection.

    Transactions are begun by ``_begin_sqlite_immediately`` instead of the
    driver, which would otherwise defer BEGIN until the first write.
    """
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _begin_sqlite_immediately(connection: Connection) -> None:
    """Take SQLite's write lock at BEGIN.

    A deferred transaction that reads and then writes (audit chain, idempotency,
    token rotation do) fails with SQLITE_BUSY when another writer committed in
    between, and busy_timeout cannot help; BEGIN IMMEDIATE waits up front instead.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
