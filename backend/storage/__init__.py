"""Object storage for photos and derived files, behind one interface.

Two backends implement :class:`Storage`:

* :class:`backend.storage.local.LocalStorage` - a directory on local disk
  (``STORAGE_URL=file:///abs/path`` or empty for ``<instance>/photos``);
* :class:`backend.storage.s3.S3Storage` - an S3-compatible bucket
  (``STORAGE_URL=s3://bucket/prefix``, endpoint from ``S3_ENDPOINT_URL``).

Keys are relative POSIX paths made of safe segments (see :func:`validate_key`);
both backends refuse anything else, so no key can escape its root or prefix.
Metadata about objects (owner, content type, capture time) lives in the
database, not in storage: storage keeps bytes only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from flask import Flask

#: Bytes read per chunk when streaming; 1 MiB keeps memory flat for 12 MP photos.
CHUNK_BYTES = 1024 * 1024
#: Longest accepted key (S3 allows 1024 bytes; leave room for a prefix).
MAX_KEY_LENGTH = 512
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


class StorageError(Exception):
    """Base class of storage failures."""


class InvalidKey(StorageError, ValueError):
    """A key is not a safe relative path (traversal, empty segment, odd characters)."""


class ObjectNotFound(StorageError, KeyError):
    """No object is stored under the key."""


class ObjectTooLarge(StorageError):
    """The data exceeded the size limit given to :meth:`Storage.put`; nothing was stored."""


class ObjectExists(StorageError):
    """A write-once put found an object already stored under the key."""


@dataclass(frozen=True)
class StoredObject:
    """What was written by :meth:`Storage.put`.

    Attributes
    ----------
    key : str
        The object's key.
    size : int
        Length in bytes, >= 0.
    sha256 : str
        Lower-case hex SHA-256 of the bytes (64 characters).
    """

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectStat:
    """Size and modification time of a stored object.

    Attributes
    ----------
    key : str
        The object's key.
    size : int
        Length in bytes, >= 0.
    modified_at : datetime.datetime
        Last modification, timezone-aware UTC.
    """

    key: str
    size: int
    modified_at: dt.datetime


@dataclass(frozen=True)
class PresignedUpload:
    """A direct upload the client performs itself.

    The client sends ``method`` to ``url`` with exactly ``headers`` and a body
    of the declared size; anything else is refused (by our route for local
    disk, by the signature for S3).

    Attributes
    ----------
    url : str
        Absolute URL to send the bytes to.
    method : str
        HTTP method, always ``"PUT"``.
    headers : dict[str, str]
        Headers the client must send verbatim (Content-Type, Content-Length,
        If-None-Match).
    expires_at : datetime.datetime
        When the URL stops working, timezone-aware UTC.
    """

    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form ``{url, method, headers, expires_at}``."""
        return {
            "url": self.url,
            "method": self.method,
            "headers": dict(self.headers),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@runtime_checkable
class Storage(Protocol):
    """The operations every storage backend provides.

    All methods take keys checked by :func:`validate_key` and raise
    :class:`InvalidKey` for unsafe ones.
    """

    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
        overwrite: bool = True,
    ) -> StoredObject:
        """Store ``data`` under ``key`` atomically (readers see old or new bytes, never a part).

        Raises :class:`ObjectTooLarge` when more than ``max_bytes`` arrive and
        :class:`ObjectExists` when ``overwrite`` is false and the key is taken.
        """
        ...

    def open(self, key: str) -> IO[bytes]:
        """Return a readable binary stream of the object (close it after use)."""
        ...

    def stat(self, key: str) -> ObjectStat:
        """Return size and modification time; :class:`ObjectNotFound` if absent."""
        ...

    def exists(self, key: str) -> bool:
        """Return whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield every key starting with ``prefix``, in lexicographic order."""
        ...

    def presign_put(
        self, key: str, content_type: str, size_bytes: int, expires_s: int
    ) -> PresignedUpload:
        """Sign a one-time direct upload of exactly ``size_bytes`` of ``content_type``."""
        ...


def validate_key(key: str) -> str:
    """Check that a storage key is a safe relative path.

    Parameters
    ----------
    key : str
        Slash-separated segments; each segment 1-128 characters of
        ``[A-Za-z0-9._-]`` and not starting with a dot (so ``.``, ``..`` and
        hidden temp names are impossible). At most ``MAX_KEY_LENGTH`` characters.

    Returns
    -------
    str
        The key, unchanged.

    Raises
    ------
    InvalidKey
        If the key is empty, absolute, too long, or has an unsafe segment.
    """
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey("storage key must be a non-empty string of at most 512 characters")
    if not all(_KEY_SEGMENT.match(segment) for segment in key.split("/")):
        raise InvalidKey("storage key must be relative segments of [A-Za-z0-9._-] not starting with '.'")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a key prefix for :meth:`Storage.iter_keys`.

    Parameters
    ----------
    prefix : str
        Empty, or a key (see :func:`validate_key`) optionally ending in ``/``;
        the last segment may be partial.

    Returns
    -------
    str
        The prefix, unchanged.
    """
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def iter_chunks(data: bytes | IO[bytes], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Yield ``data`` in chunks of at most ``chunk_bytes`` bytes.

    Parameters
    ----------
    data : bytes or binary file-like
        The whole payload, or a stream read until EOF.
    chunk_bytes : int
        Maximum chunk length, > 0.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), chunk_bytes):
            yield bytes(view[start : start + chunk_bytes])
        return
    while chunk := data.read(chunk_bytes):
        yield chunk


class DigestingReader:
    """A read-only stream that hashes and counts what passes through, enforcing a limit.

    Used by both backends so that ``put`` returns the SHA-256 and size of
    exactly the bytes stored, and stops as soon as ``max_bytes`` is exceeded.

    Parameters
    ----------
    data : bytes or binary file-like
        Source of the bytes.
    max_bytes : int or None
        Largest accepted total length in bytes; ``None`` for no limit.
    """

    def __init__(self, data: bytes | IO[bytes], max_bytes: int | None = None) -> None:
        self._chunks = iter_chunks(data)
        self._pending = b""
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        """Return up to ``n`` bytes (all remaining when ``n < 0``); ``b""`` at EOF."""
        while n < 0 or len(self._pending) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._account(chunk)
            self._pending += chunk
        if n < 0:
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def _account(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise ObjectTooLarge(f"object exceeds the limit of {self._max_bytes} bytes")
        self._hash.update(chunk)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes read so far."""
        return self._hash.hexdigest()


def digest_object(storage: Storage, key: str) -> StoredObject:
    """Read a stored object through and return its size and SHA-256.

    Completing a direct (presigned) upload uses this to learn what the client
    actually stored before trusting it.

    Parameters
    ----------
    storage : Storage
        Backend holding the object.
    key : str
        The object's key.

    Returns
    -------
    StoredObject
        Key, size in bytes, hex SHA-256.
    """
    with storage.open(key) as stream:
        reader = DigestingReader(stream)
        while reader.read(CHUNK_BYTES):
            pass
    return StoredObject(key=key, size=reader.size, sha256=reader.sha256)


def storage_from_url(url: str | None, **settings: Any) -> Storage:
    """Build the storage backend a ``STORAGE_URL`` names.

    Parameters
    ----------
    url : str or None
        ``file:///absolute/dir``, a plain absolute directory path,
        ``s3://bucket`` or ``s3://bucket/prefix``. Empty or ``None`` uses
        ``settings["default_root"]`` on local disk.
    **settings
        Backend options. Local: ``default_root`` (path used for an empty
        URL), ``signing_key`` (bytes, signs direct-upload URLs),
        ``upload_url`` (callable token -> absolute URL of the upload route),
        ``clock`` (callable returning aware UTC now, for grant expiry).
        S3: ``endpoint_url``, ``region``, ``access_key_id``,
        ``secret_access_key`` (``None`` falls back to boto3's standard
        environment / credential chain), ``create_bucket`` (bool).

    Returns
    -------
    Storage
        A ready backend.

    Raises
    ------
    ValueError
        For an unknown scheme or an S3 URL without a bucket.
    """
    from backend.storage.s3 import S3Storage

    if not url:
        root = settings.get("default_root")
        if not root:
            raise ValueError("STORAGE_URL is empty and no default_root was given")
        return _local_storage(root, settings)
    parts = urlsplit(url)
    if parts.scheme in ("file", ""):
        path = unquote(parts.path) if parts.scheme == "file" else url
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ValueError("file storage URL must name an absolute directory, e.g. file:///srv/skintrack/photos")
        return _local_storage(path, settings)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError("s3 storage URL must name a bucket, e.g. s3://bucket/prefix")
        return S3Storage(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=settings.get("endpoint_url"),
            region=settings.get("region"),
            access_key_id=settings.get("access_key_id"),
            secret_access_key=settings.get("secret_access_key"),
            create_bucket=bool(settings.get("create_bucket", False)),
        )
    raise ValueError(f"unsupported STORAGE_URL scheme {parts.scheme!r}; use file:// or s3://")


def _local_storage(root: str, settings: Mapping[str, Any]) -> Storage:
    from backend.storage.local import LocalStorage

    return LocalStorage(
        root, signing_key=settings.get("signing_key"), upload_url=settings.get("upload_url"), clock=settings.get("clock")
    )


_EXTENSION_KEY = "skintrack.storage"


def init_storage(app: Flask) -> Storage:
    """Build the app's storage from its config and remember it on the app.

    Reads ``STORAGE_URL``, ``S3_ENDPOINT_URL``, ``S3_REGION``,
    ``S3_CREATE_BUCKET`` and ``SECRET_KEY``; the local backend signs direct
    uploads with a key derived from ``SECRET_KEY`` and points them at the
    ``uploads_local`` blueprint.

    Parameters
    ----------
    app : flask.Flask
        The application being created.

    Returns
    -------
    Storage
        The backend, also available as :func:`current_storage`.
    """
    import os

    from flask import url_for

    from backend.extensions import now
    from backend.storage.signed_upload import derive_signing_key

    def upload_url(token: str) -> str:
        return url_for("uploads_local.put_upload", token=token, _external=True)

    storage = storage_from_url(
        app.config.get("STORAGE_URL"),
        default_root=os.path.join(app.instance_path, "photos"),
        signing_key=derive_signing_key(app.config["SECRET_KEY"]),
        upload_url=upload_url,
        clock=now,
        endpoint_url=app.config.get("S3_ENDPOINT_URL") or None,
        region=app.config.get("S3_REGION") or None,
        create_bucket=app.config.get("S3_CREATE_BUCKET", False),
    )
    app.extensions[_EXTENSION_KEY] = storage
    return storage


def current_storage() -> Storage:
    """Return the storage of the current Flask app (set up by :func:`init_storage`)."""
    from flask import current_app

    return current_app.extensions[_EXTENSION_KEY]


__all__ = [
    "CHUNK_BYTES",
    "DigestingReader",
    "InvalidKey",
    "ObjectExists",
    "ObjectNotFound",
    "ObjectStat",
    "ObjectTooLarge",
    "PresignedUpload",
    "Storage",
    "StorageError",
    "StoredObject",
    "current_storage",
    "digest_object",
    "init_storage",
    "iter_chunks",
    "storage_from_url",
    "validate_key",
    "validate_prefix",
]
