"""Login rate limits counted in the database (so they hold across gunicorn workers).

Failures are counted per account (SHA-256 of the normalised email, existing or
not) and per client address within a sliding window. A successful login resets
the account count (earlier failures stop counting), not the address count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence

from flask import current_app
from sqlalchemy import delete, func, select

from backend.extensions import db, now
from backend.models.accounts import LoginAttempt, normalise_email


def account_key(email: str) -> str:
    """Hex SHA-256 of the normalised email: the per-account counter key."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def retry_after_seconds(failure_times: Sequence[dt.datetime], max_failures: int,
                        window: dt.timedelta, current: dt.datetime) -> int | None:
    """Seconds until fewer than ``max_failures`` failures remain in the window.

    Parameters
    ----------
    failure_times : sequence of datetime
        Counted failures (any order), all within the window ending at ``current``.
    max_failures : int
        Allowed failures per window (> 0).
    window : timedelta
        Window length.
    current : datetime
        Now (UTC, aware).

    Returns
    -------
    int or None
        None when another attempt is allowed now; else whole seconds >= 1.
    """
    if len(failure_times) < max_failures:
        return None
    ordered = sorted(failure_times)
    # The attempt is allowed once all but max_failures - 1 failures aged out.
    release_at = ordered[len(ordered) - max_failures] + window
    return max(1, math.ceil((release_at - current).total_seconds()))


def _failure_times(*conditions) -> list[dt.datetime]:
    return list(db.session.scalars(
        select(LoginAttempt.at).where(LoginAttempt.succeeded.is_(False), *conditions)
    ))


def login_retry_after(email: str, client_address: str) -> int | None:
    """Seconds the caller must wait before another login attempt, or None if allowed."""
    config = current_app.config
    current = now()
    window = dt.timedelta(seconds=config["LOGIN_FAILURE_WINDOW"])
    since = current - window
    key = account_key(email)
    last_success = db.session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.account_key == key,
                                                LoginAttempt.succeeded.is_(True))
    )
    account_since = max(since, last_success) if last_success else since
    waits = [
        retry_after_seconds(
            _failure_times(LoginAttempt.account_key == key, LoginAttempt.at > account_since),
            config["LOGIN_MAX_FAILURES_PER_ACCOUNT"], window, current),
        retry_after_seconds(
            _failure_times(LoginAttempt.client_address == client_address, LoginAttempt.at > since),
            config["LOGIN_MAX_FAILURES_PER_ADDRESS"], window, current),
    ]
    waits = [w for w in waits if w is not None]
    return max(waits) if waits else None


def record_login_attempt(email: str, client_address: str, succeeded: bool) -> None:
    """Add a login attempt row to the current transaction."""
    db.session.add(LoginAttempt(at=now(), account_key=account_key(email),
                                client_address=client_address, succeeded=succeeded))


def prune_login_attempts() -> int:
    """Delete attempts older than the counting window (they no longer count); caller commits.

    Returns
    -------
    int
        Rows deleted.
    """
    cutoff = now() - dt.timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW"])
    return db.session.execute(delete(LoginAttempt).where(LoginAttempt.at <= cutoff)).rowcount
