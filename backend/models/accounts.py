"""Clinics, users, refresh-token families and login attempts."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin, utcnow


class Role(str, enum.Enum):
    """What a user may do. Stored as its string value."""

    PATIENT = "patient"
    CLINICIAN = "clinician"
    RESEARCHER = "researcher"
    ADMIN = "admin"


ROLE_VALUES: tuple[str, ...] = tuple(role.value for role in Role)


def normalise_email(email: str) -> str:
    """Return the canonical form of an email address used for uniqueness and lookup.

    Parameters
    ----------
    email : str
        Address as typed by a person.

    Returns
    -------
    str
        Stripped and lower-cased, so ``Ana@X.org`` and ``ana@x.org`` are one account.
    """
    return email.strip().lower()


class Clinic(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A tenant: every user and patient record belongs to exactly one clinic."""

    __tablename__ = "clinics"

    name: Mapped[str] = mapped_column(String(200))
    #: True for the seeded "Demo clinic (not real patients)".
    is_demo: Mapped[bool] = mapped_column(default=False)

    users: Mapped[list[User]] = relationship(back_populates="clinic")


class User(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A person who signs in: patient, clinician, researcher or clinic admin."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('patient', 'clinician', 'researcher', 'admin')", name="role_known"
        ),
        # Emails are stored normalised (see normalise_email), so a plain unique
        # constraint makes them unique case-insensitively.
        CheckConstraint("email = lower(email)", name="email_normalised"),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    #: Argon2id encoded hash; None means the account cannot sign in with a password yet.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    clinic: Mapped[Clinic] = relationship(back_populates="users")


class RefreshTokenFamily(UUIDPrimaryKeyMixin, Base):
    """One sign-in: all refresh tokens obtained from it by rotation.

    Revoking the family (logout, or reuse of a rotated token) ends the sign-in,
    including its outstanding access tokens.
    """

    __tablename__ = "refresh_token_families"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: Why: "logout", "reuse-detected", "deactivated".
    revoked_reason: Mapped[str | None] = mapped_column(String(40), default=None)


class RefreshToken(UUIDPrimaryKeyMixin, Base):
    """One opaque refresh token; only its SHA-256 is stored."""

    __tablename__ = "refresh_tokens"

    family_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("refresh_token_families.id", ondelete="CASCADE"), index=True
    )
    #: Hex SHA-256 of the token string.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    #: Set when the token was exchanged; presenting it again is reuse.
    rotated_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    family: Mapped[RefreshTokenFamily] = relationship()


class LoginAttempt(UUIDPrimaryKeyMixin, Base):
    """A password login attempt, counted for rate limiting across processes.

    The attempted email is stored only as a SHA-256 key: people sometimes type
    a password into the email field, and failures for unknown accounts count too.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_account_key_at", "account_key", "at"),
        Index("ix_login_attempts_client_address_at", "client_address", "at"),
    )

    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    account_key: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool]
