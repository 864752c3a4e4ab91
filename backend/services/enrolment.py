"""Enrolment: a clinician invites a patient, who redeems the invitation to create a login.

An invitation carries two secrets, both one-time and expiring together:

- a *code* for typing: 12 Crockford base32 characters (60 random bits) shown as
  ``XXXX-XXXX-XXXX``. Typing mistakes are forgiven: case, spaces, dashes, and the
  look-alikes I/L (read as 1) and O (read as 0). With the enrolment endpoint rate-limited
  per address, guessing a live code is hopeless (2^60 codes).
- a *link token* for an enrolment link: 32 random bytes, base64url.

Only keyed hashes (HMAC-SHA-256 with the app's ``SECRET_KEY``) are stored, so a copy of
the database does not let anyone redeem (or brute-force offline) an outstanding code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from flask import current_app
from sqlalchemy import select, update

from backend.auth.passwords import hash_password
from backend.errors import Conflict, InvalidRequest
from backend.extensions import db
from backend.models.accounts import User, normalise_email
from backend.models.clinical import Invitation, Patient
from backend.services import insert_or_conflict
from backend.services.links import public_url
from backend.services.patients import CROCKFORD_ALPHABET, random_crockford

CODE_LENGTH = 12
CODE_GROUP = 4
LINK_TOKEN_BYTES = 32

#: Typing mistakes mapped to the Crockford character they stand for.
_LOOKALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})


#: Where the patient app reads an enrolment link token: the URL fragment, which browsers never
#: send to a server (no access log, proxy or Referer header sees the token).
APP_ENROL_FRAGMENT = "enrol="


def invitation_link(token: str) -> str:
    """The patient app's URL carrying an invitation's link token (what the QR code encodes).

    Parameters
    ----------
    token : str
        The link token of :func:`create_invitation` (base64url, safe in a URL as it is).
    """
    return public_url(f"/app/#{APP_ENROL_FRAGMENT}{token}")


def invitation_qr_svg(token: str) -> str:
    """A standalone SVG document of a QR code of :func:`invitation_link` (dark on white,
    with its quiet zone), to show on screen or print."""
    import io

    import segno

    buffer = io.BytesIO()
    segno.make(invitation_link(token), error="m").save(
        buffer, kind="svg", scale=4, xmldecl=False, light="#fff", title="skintrack app enrolment link")
    return buffer.getvalue().decode()


def format_code(raw: str) -> str:
    """Group a code for display: ``ABCDEFGHJKMN`` -> ``ABCD-EFGH-JKMN``."""
    return "-".join(raw[i:i + CODE_GROUP] for i in range(0, len(raw), CODE_GROUP))


def normalise_code(typed: str) -> str | None:
    """The canonical form of a typed code, or None if it cannot be one.

    Parameters
    ----------
    typed : str
        As typed: any case, with spaces or dashes, I/L/O look-alikes.

    Returns
    -------
    str or None
        12 upper-case Crockford characters, or None.
    """
    compact = "".join(typed.split()).replace("-", "").upper().translate(_LOOKALIKES)
    if len(compact) != CODE_LENGTH or any(ch not in CROCKFORD_ALPHABET for ch in compact):
        return None
    return compact


def secret_hash(kind: str, value: str) -> str:
    """Hex HMAC-SHA-256 of an invitation secret, keyed with the app's secret key.

    Parameters
    ----------
    kind : {"code", "token"}
        Domain separation, so a code can never match a token hash.
    value : str
        Canonical code or the token.
    """
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def create_invitation(
    patient: Patient, created_by: User, *, expires_in_days: int, now: dt.datetime
) -> tuple[Invitation, str, str]:
    """Create a one-time invitation for a patient who has no login yet.

    Older unused invitations of the patient are revoked, so only the latest code works.

    Returns
    -------
    (Invitation, str, str)
        The row, the display code (``XXXX-XXXX-XXXX``) and the link token - the secrets
        are returned only here.

    Raises
    ------
    Conflict
        The patient is already enrolled.
    """
    if patient.user_id is not None:
        raise Conflict(errors={"_schema": ["This patient already has a login."]}, slug="already-enrolled")
    db.session.execute(
        update(Invitation)
        .where(Invitation.patient_id == patient.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    code = random_crockford(CODE_LENGTH)
    token = secrets.token_urlsafe(LINK_TOKEN_BYTES)
    invitation = Invitation(
        patient_id=patient.id,
        code_hash=secret_hash("code", code),
        token_hash=secret_hash("token", token),
        expires_at=now + dt.timedelta(days=expires_in_days),
        created_by_user_id=created_by.id,
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation, format_code(code), token


def _invalid(detail: str) -> InvalidRequest:
    return InvalidRequest(errors={"_schema": [detail]}, slug="invitation-invalid")


def redeem_invitation(
    *, code: str | None, token: str | None, email: str, password: str, now: dt.datetime
) -> tuple[User, Patient]:
    """Create the patient's login from an invitation and use the invitation up.

    Parameters
    ----------
    code, token : str or None
        Exactly one is given (the schema checks).
    email : str
        The login email (normalised here).
    password : str
        The new password (hashed with the platform's Argon2id hasher).
    now : datetime.datetime
        UTC-aware current time.

    Returns
    -------
    (User, Patient)

    Raises
    ------
    InvalidRequest, Conflict
        400 ``invitation-invalid``: unknown, expired, revoked or already used (one answer
        for all, so nothing is learned by probing); 409 ``email-taken``.
    """
    if code is not None:
        canonical = normalise_code(code)
        if canonical is None:
            raise _invalid("This invitation is invalid, expired or already used.")
        lookup = Invitation.code_hash == secret_hash("code", canonical)
    else:
        lookup = Invitation.token_hash == secret_hash("token", token or "")
    invitation = db.session.execute(select(Invitation).where(lookup)).scalar_one_or_none()
    if (
        invitation is None
        or invitation.used_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
    ):
        raise _invalid("This invitation is invalid, expired or already used.")
    patient = db.session.get(Patient, invitation.patient_id)
    if patient.user_id is not None:
        raise _invalid("This invitation is invalid, expired or already used.")
    normalised = normalise_email(email)
    email_taken = {"email": ["An account with this email exists."]}
    if db.session.execute(select(User.id).where(User.email == normalised)).first() is not None:
        raise Conflict(errors=email_taken, slug="email-taken")
    # Conditional update: of two concurrent redemptions only one matches "unused".
    claimed = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise _invalid("This invitation is invalid, expired or already used.")
    user = User(
        email=normalised,
        role="patient",
        clinic_id=patient.clinic_id,
        display_name=patient.full_name,
        password_hash=hash_password(password),
    )
    insert_or_conflict(user, Conflict(errors=email_taken, slug="email-taken"))
    patient.user_id = user.id
    invitation.used_by_user_id = user.id
    db.session.flush()
    return user, patient
