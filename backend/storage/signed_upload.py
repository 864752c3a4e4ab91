"""Signed direct-upload grants for local-disk storage.

A grant says "PUT exactly ``size_bytes`` bytes of ``content_type`` to
``key`` before ``expires_at``". It travels in the upload URL as an
itsdangerous token (HMAC-SHA256 over the JSON of all four fields), so the
upload route needs no database row to check it, and changing any field
breaks the signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from backend.storage import InvalidKey, validate_key

_SALT = "skintrack.storage.signed-upload.v1"


class UploadGrantInvalid(Exception):
    """The token is forged, tampered with, or malformed."""


class UploadGrantExpired(Exception):
    """The token was valid but its expiry time has passed."""


@dataclass(frozen=True)
class UploadGrant:
    """Permission to upload one object.

    Attributes
    ----------
    key : str
        Storage key the bytes go to.
    content_type : str
        The only Content-Type accepted.
    size_bytes : int
        Exact body length in bytes, >= 1.
    expires_at : int
        Expiry as Unix time in whole seconds (UTC).
    """

    key: str
    content_type: str
    size_bytes: int
    expires_at: int

    def expires_at_datetime(self) -> dt.datetime:
        """Return the expiry as a timezone-aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.expires_at, tz=dt.timezone.utc)


def derive_signing_key(secret_key: str | bytes) -> bytes:
    """Derive the upload-signing key from the app's ``SECRET_KEY``.

    A separate key per purpose means an upload token can never be replayed
    as a session or JWT signature and vice versa.

    Parameters
    ----------
    secret_key : str or bytes
        The application secret.

    Returns
    -------
    bytes
        32-byte HMAC-SHA256 key.
    """
    raw = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hmac.new(raw, _SALT.encode(), hashlib.sha256).digest()


def _serializer(signing_key: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(signing_key, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def sign_grant(signing_key: bytes, grant: UploadGrant) -> str:
    """Return a URL-safe token carrying ``grant`` under an HMAC-SHA256 signature.

    Parameters
    ----------
    signing_key : bytes
        Key from :func:`derive_signing_key`.
    grant : UploadGrant
        What the holder may upload.

    Returns
    -------
    str
        Token of characters ``[A-Za-z0-9_.-]``.
    """
    validate_key(grant.key)
    payload = [grant.key, grant.content_type, grant.size_bytes, grant.expires_at]
    return _serializer(signing_key).dumps(payload)


def verify_grant(signing_key: bytes, token: str, now: dt.datetime) -> UploadGrant:
    """Check a token's signature and expiry and return its grant.

    Parameters
    ----------
    signing_key : bytes
        Key from :func:`derive_signing_key`.
    token : str
        Token from :func:`sign_grant`.
    now : datetime.datetime
        Current time, timezone-aware.

    Returns
    -------
    UploadGrant
        The verified grant.

    Raises
    ------
    UploadGrantInvalid
        Bad signature or malformed payload.
    UploadGrantExpired
        ``now`` is at or past the grant's expiry.
    """
    try:
        payload = _serializer(signing_key).loads(token)
    except BadSignature as exc:
        raise UploadGrantInvalid("upload token signature is invalid") from exc
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or not isinstance(payload[0], str)
        or not isinstance(payload[1], str)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload[2:])
    ):
        raise UploadGrantInvalid("upload token payload is malformed")
    grant = UploadGrant(*payload)
    try:
        validate_key(grant.key)
    except InvalidKey as exc:
        raise UploadGrantInvalid("upload token names an invalid key") from exc
    if now.timestamp() >= grant.expires_at:
        raise UploadGrantExpired("upload token has expired")
    return grant
