"""Argon2id password hashing (argon2-cffi) with parameters from the app config."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

# Verified when an account does not exist, so response time does not reveal it.
_DUMMY_PASSWORD = "not-a-real-password"


def password_hasher() -> PasswordHasher:
    """Return an Argon2id hasher with the app's ``ARGON2_*`` parameters."""
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"],
        memory_cost=config["ARGON2_MEMORY_COST_KIB"],
        parallelism=config["ARGON2_PARALLELISM"],
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    """Hash a password.

    Parameters
    ----------
    password : str
        The plain password (never logged or stored).

    Returns
    -------
    str
        Encoded Argon2id hash (``$argon2id$v=19$m=...``), salt included.
    """
    return password_hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against a stored hash in constant-ish time.

    Parameters
    ----------
    password_hash : str or None
        Stored hash; None (no password set, or no such account) verifies a
        dummy hash and returns False so timing does not reveal which.
    password : str
        The candidate password.
    """
    hasher = password_hasher()
    if password_hash is None:
        try:
            hasher.verify(hasher.hash(_DUMMY_PASSWORD), password)
        except VerificationError:
            pass
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current config."""
    return password_hasher().check_needs_rehash(password_hash)
