"""Staff accounts of a clinic: create, find, deactivate and reactivate (the admin's rules).

The API (``blueprints/admin.py``) and the admin pages (``dashboard/admin.py``) both call these.
"""

from __future__ import annotations

import uuid
from typing import Any

from backend.auth.passwords import hash_password
from backend.auth.tokens import revoke_all_families
from backend.errors import Conflict, NotFound
from backend.extensions import db
from backend.models.accounts import User, normalise_email
from backend.services import insert_or_conflict


def create_user(admin: User, fields: dict[str, Any]) -> User:
    """Add a clinician, researcher or admin account to the admin's clinic.

    Parameters
    ----------
    admin : User
    fields : dict
        Validated ``UserCreateSchema`` data.

    Raises
    ------
    Conflict
        An account with this email exists (any clinic, any case).
    """
    user = User(id=uuid.uuid4(), email=normalise_email(fields["email"]), role=fields["role"],
                clinic_id=admin.clinic_id, display_name=fields.get("display_name", ""),
                password_hash=hash_password(fields["password"]))
    insert_or_conflict(user, Conflict("An account with this email already exists.", slug="email-taken",
                                      errors={"email": ["An account with this email already exists."]}))
    return user


def clinic_user(admin: User, user_id: uuid.UUID) -> User:
    """A user of the admin's clinic; another clinic's (or no) user is :class:`NotFound`."""
    user = db.session.get(User, user_id)
    if user is None or user.clinic_id != admin.clinic_id:
        raise NotFound("user in your clinic")
    return user


def set_active(admin: User, user: User, active: bool) -> bool:
    """Deactivate (its sign-ins end) or reactivate an account; True when the state changed.

    Raises
    ------
    Conflict
        The admin's own account (an admin cannot lock themselves out).
    """
    if user.id == admin.id:
        raise Conflict("You cannot change your own account's active state.", slug="self-deactivation")
    if user.is_active == active:
        return False
    user.is_active = active
    if not active:
        revoke_all_families(user.id, "deactivated")
    return True
