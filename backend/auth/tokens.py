"""Access tokens (JWT, HS256) and rotating refresh tokens (opaque, stored hashed).

A sign-in creates a :class:`RefreshTokenFamily`. Each refresh marks the
presented token rotated and issues a new one in the same family. Presenting a
rotated token again means it leaked (or a client bug): the family is revoked,
which also invalidates the family's access tokens (see ``backend.auth``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

import jwt
from flask import current_app
from sqlalchemy import delete, or_, select, update

from backend.extensions import db, now
from backend.models.accounts import RefreshToken, RefreshTokenFamily, User

ACCESS_TOKEN_ALGORITHM = "HS256"


class TokenError(Exception):
    """A token is missing, malformed, expired or revoked (answer 401)."""


def hash_refresh_token(token: str) -> str:
    """Hex SHA-256 of a refresh token: what the database stores.

    The token has 256 random bits, so a fast hash suffices (no salt/argon2 needed).
    """
    return hashlib.sha256(token.encode()).hexdigest()


def encode_access_token(user: User, family_id: uuid.UUID) -> str:
    """Sign an access token for ``user`` belonging to sign-in ``family_id``.

    Claims: ``sub`` (user id), ``role``, ``clinic`` (clinic id), ``fam``
    (refresh family id), ``jti`` (random id), ``iat`` and ``exp`` (Unix seconds).
    """
    issued = now()
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "clinic": str(user.clinic_id) if user.clinic_id else None,
        "fam": str(family_id),
        "jti": uuid.uuid4().hex,
        "iat": int(issued.timestamp()),
        "exp": int(issued.timestamp()) + current_app.config["ACCESS_TOKEN_TTL"],
        "typ": "access",
    }
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ACCESS_TOKEN_ALGORITHM)


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature, type and expiry of an access token and return its claims.

    Expiry is checked against :func:`backend.extensions.now` (injectable clock).

    Raises
    ------
    TokenError
        If the token is invalid or expired.
    """
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[ACCESS_TOKEN_ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "exp", "fam", "jti"]},
        )
    except jwt.InvalidTokenError:
        raise TokenError("invalid access token") from None
    if claims.get("typ") != "access":
        raise TokenError("not an access token")
    if not isinstance(claims["exp"], int) or claims["exp"] <= now().timestamp():
        raise TokenError("access token expired")
    return claims


def _new_refresh_token(family: RefreshTokenFamily) -> str:
    token = secrets.token_urlsafe(32)
    issued = now()
    db.session.add(
        RefreshToken(
            family=family,
            token_hash=hash_refresh_token(token),
            issued_at=issued,
            expires_at=issued + dt.timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL"]),
        )
    )
    return token


def _token_pair(user: User, family: RefreshTokenFamily, refresh_token: str) -> dict[str, Any]:
    return {
        "access_token": encode_access_token(user, family.id),
        "token_type": "Bearer",
        "expires_in": current_app.config["ACCESS_TOKEN_TTL"],
        "refresh_token": refresh_token,
        "refresh_expires_in": current_app.config["REFRESH_TOKEN_TTL"],
    }


def issue_token_pair(user: User) -> dict[str, Any]:
    """Start a new sign-in for ``user``: a new family, refresh token and access token.

    Rows are added to the current session; the caller's transaction commits them.

    Returns
    -------
    dict
        ``access_token``, ``token_type`` ("Bearer"), ``expires_in`` (s),
        ``refresh_token``, ``refresh_expires_in`` (s) - the ``TokenPairSchema``.
    """
    family = RefreshTokenFamily(id=uuid.uuid4(), user_id=user.id, created_at=now())
    db.session.add(family)
    return _token_pair(user, family, _new_refresh_token(family))


def revoke_family(family_id: uuid.UUID, reason: str) -> None:
    """Revoke a sign-in (idempotent); the caller commits."""
    db.session.execute(
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
        .values(revoked_at=now(), revoked_reason=reason)
    )


def revoke_all_families(user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None) -> None:
    """Revoke every sign-in of a user except ``keep`` (deactivation, password change).

    The caller commits.
    """
    stmt = (
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None))
        .values(revoked_at=now(), revoked_reason=reason)
    )
    if keep is not None:
        stmt = stmt.where(RefreshTokenFamily.id != keep)
    db.session.execute(stmt)


def family_is_active(family_id: uuid.UUID) -> bool:
    """True when the sign-in exists and is not revoked."""
    revoked_at = db.session.execute(
        select(RefreshTokenFamily.revoked_at).where(RefreshTokenFamily.id == family_id)
    ).one_or_none()
    return revoked_at is not None and revoked_at[0] is None


class RefreshReuseDetected(TokenError):
    """A rotated refresh token was presented again; its family has been revoked."""

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__("refresh token reuse")
        self.user_id = user_id


def rotate_refresh_token(token: str) -> tuple[User, dict[str, Any]]:
    """Exchange a refresh token for a new pair in the same family.

    The old token is marked rotated with a conditional UPDATE, so of two
    concurrent refreshes with one token only one succeeds; the other counts as
    reuse. The caller commits (also when :class:`RefreshReuseDetected` is
    raised: the revocation must persist).

    Raises
    ------
    RefreshReuseDetected
        If the token had already been rotated (family revoked).
    TokenError
        If the token is unknown, expired, revoked, or its user is inactive.
    """
    row = db.session.execute(
        select(RefreshToken, RefreshTokenFamily, User)
        .join(RefreshTokenFamily, RefreshToken.family_id == RefreshTokenFamily.id)
        .join(User, RefreshTokenFamily.user_id == User.id)
        .where(RefreshToken.token_hash == hash_refresh_token(token))
    ).one_or_none()
    if row is None:
        raise TokenError("unknown refresh token")
    refresh, family, user = row
    if family.revoked_at is not None:
        raise TokenError("refresh token revoked")
    current = now()
    if refresh.rotated_at is not None:
        revoke_family(family.id, "reuse-detected")
        raise RefreshReuseDetected(user.id)
    if refresh.expires_at <= current:
        raise TokenError("refresh token expired")
    if not user.is_active:
        raise TokenError("account deactivated")
    claimed = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == refresh.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=current)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        revoke_family(family.id, "reuse-detected")
        raise RefreshReuseDetected(user.id)
    return user, _token_pair(user, family, _new_refresh_token(family))


def prune_dead_families() -> int:
    """Delete sign-ins that can never be used again, with their tokens; caller commits.

    Dead: revoked, or every refresh token expired (access tokens never outlive
    the refresh token issued with them). A deleted family's leftover access
    tokens fail like revoked ones (``family_is_active`` is False).

    Returns
    -------
    int
        Families deleted.
    """
    live = select(RefreshToken.family_id).where(RefreshToken.expires_at > now())
    dead = select(RefreshTokenFamily.id).where(
        or_(RefreshTokenFamily.revoked_at.is_not(None), RefreshTokenFamily.id.not_in(live))
    )
    dead_ids = list(db.session.scalars(dead))
    if not dead_ids:
        return 0
    for chunk_start in range(0, len(dead_ids), 500):
        chunk = dead_ids[chunk_start:chunk_start + 500]
        db.session.execute(delete(RefreshToken).where(RefreshToken.family_id.in_(chunk)))
        db.session.execute(delete(RefreshTokenFamily).where(RefreshTokenFamily.id.in_(chunk)))
    return len(dead_ids)
