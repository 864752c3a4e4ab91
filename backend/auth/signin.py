"""The sign-in rule: one :func:`authenticate` for every way in (the API login, the dashboard).

Login rate limits (per account and per client address, counted in the database), the password
check in constant-ish time, the rehash when the Argon2 parameters changed, the last sign-in
time and the audit entries (``auth.login``, ``auth.login_failed``) all happen here, so each way
in only decides what to hand out afterwards (a token pair, a session cookie).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import select

from backend import audit
from backend.auth.passwords import hash_password, needs_rehash, verify_password
from backend.auth.ratelimit import login_retry_after, record_login_attempt
from backend.errors import SignInRateLimited, SignInRefused
from backend.extensions import db, now
from backend.models.accounts import User, normalise_email

log = logging.getLogger(__name__)


def authenticate(email: str, password: str, client_address: str, *, roles: Collection[str] | None = None,
                 channel: str | None = None) -> User:
    """Check one sign-in attempt and record it (in the caller's unit of work).

    Parameters
    ----------
    email, password : str
        As typed (the email is normalised here).
    client_address : str
        The caller's address, for the per-address limit and the audit row.
    roles : collection of str, optional
        Roles that may sign in this way; another role is refused like a wrong password.
    channel : str, optional
        Named in the audit rows' details (e.g. ``"dashboard"``); the API names none.

    Returns
    -------
    User
        The signed-in user (password rehashed if needed, ``last_login_at`` set).

    Raises
    ------
    SignInRateLimited
        Too many recent failures of this account or from this address (nothing recorded).
    SignInRefused
        Unknown email, wrong password, inactive account or a role not in ``roles``: one answer
        for all. The failed attempt and its audit row are kept (the error keeps changes).
    """
    email = normalise_email(email)
    wait = login_retry_after(email, client_address)
    if wait is not None:
        log.info("login rate limited")
        raise SignInRateLimited(wait)
    details = {"channel": channel} if channel is not None else {}
    user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    may_sign_in = user is not None and user.is_active and (roles is None or user.role in roles)
    if not verify_password(user.password_hash if may_sign_in else None, password):
        record_login_attempt(email, client_address, succeeded=False)
        audit.record("auth.login_failed", "user", user.id if user else None, actor=None,
                     clinic_id=user.clinic_id if user else None, **details)
        raise SignInRefused()
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now()
    record_login_attempt(email, client_address, succeeded=True)
    audit.record("auth.login", "user", user.id, actor=user, **details)
    return user
