"""Test data factories. Each runs in its own app context and commits, like a
request would, and returns detached but fully loaded objects.

Account factories (platform); clinical appends patient/course factories below.
"""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask

from backend.auth.passwords import hash_password
from backend.auth.tokens import issue_token_pair
from backend.extensions import db
from backend.models.accounts import Clinic, User, normalise_email

#: Password of every factory-made user unless one is given.
DEFAULT_PASSWORD = "correct horse battery staple"

_sequence = itertools.count(1)


def _detach(obj: Any) -> Any:
    db.session.refresh(obj)
    db.session.expunge(obj)
    return obj


def make_clinic(app: Flask, name: str | None = None, *, is_demo: bool = False) -> Clinic:
    """Create and commit a clinic."""
    with app.app_context():
        clinic = Clinic(name=name or f"Clinic {next(_sequence)}", is_demo=is_demo)
        db.session.add(clinic)
        db.session.commit()
        return _detach(clinic)


def make_user(
    app: Flask,
    role: str,
    clinic: Clinic | None = None,
    *,
    email: str | None = None,
    password: str | None = DEFAULT_PASSWORD,
    is_active: bool = True,
    display_name: str = "",
) -> User:
    """Create and commit a user of ``role`` in ``clinic`` (a new clinic if None).

    ``password=None`` creates an account without a password.
    """
    if clinic is None:
        clinic = make_clinic(app)
    with app.app_context():
        user = User(
            email=normalise_email(email or f"{role}{next(_sequence)}@example.org"),
            role=role,
            clinic_id=clinic.id,
            display_name=display_name or role.title(),
            password_hash=hash_password(password) if password is not None else None,
            is_active=is_active,
        )
        db.session.add(user)
        db.session.commit()
        return _detach(user)


def issue_tokens(app: Flask, user: User) -> dict[str, Any]:
    """Issue a real token pair for ``user`` (as a login would) and commit it."""
    with app.app_context():
        pair = issue_token_pair(db.session.get(User, user.id))
        db.session.commit()
        return pair


def auth_headers(app: Flask, user: User) -> dict[str, str]:
    """``Authorization`` header with a freshly issued access token for ``user``."""
    return {"Authorization": f"Bearer {issue_tokens(app, user)['access_token']}"}
