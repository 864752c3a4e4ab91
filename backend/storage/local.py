"""Storage on local disk, under one root directory."""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from backend.storage import (
    CHUNK_BYTES,
    DigestingReader,
    InvalidKey,
    ObjectExists,
    ObjectNotFound,
    ObjectStat,
    PresignedUpload,
    StorageError,
    StoredObject,
    validate_key,
    validate_prefix,
)
from backend.storage.signed_upload import UploadGrant, sign_grant

_TEMP_PREFIX = ".upload-"


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename inside it survives a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    """Objects as files below ``root``; key ``a/b.jpg`` is the file ``root/a/b.jpg``.

    Writes go to a hidden temporary file in the target directory, are
    fsynced, then renamed into place (atomic on POSIX), and the directory is
    fsynced. Hidden names start with a dot, which :func:`validate_key` never
    allows, so temporary files can never be read or listed as objects.

    Parameters
    ----------
    root : str or pathlib.Path
        Directory holding the objects; created if missing.
    signing_key : bytes or None
        HMAC key for direct-upload grants; ``None`` disables :meth:`presign_put`.
    upload_url : callable or None
        Maps a grant token to the absolute URL of the upload route
        (``backend/blueprints/uploads_local.py``).
    clock : callable or None
        Returns the current UTC time for grant expiry; default the system clock.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        signing_key: bytes | None = None,
        upload_url: Callable[[str], str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.signing_key = signing_key
        self._upload_url = upload_url
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        """Map a key to its file, refusing anything that resolves outside the root."""
        validate_key(key)
        path = (self.root / key).resolve()
        # Symlinks planted inside the root could still point outside it.
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKey("storage key resolves outside the storage root")
        return path

    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
        overwrite: bool = True,
    ) -> StoredObject:
        """Store bytes atomically; see :meth:`backend.storage.Storage.put`.

        ``content_type`` is not kept on disk: the database records it.
        """
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not overwrite and target.exists():
            raise ObjectExists(f"an object is already stored under {key!r}")
        reader = DigestingReader(data, max_bytes)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as temp_file:
                while chunk := reader.read(CHUNK_BYTES):
                    temp_file.write(chunk)
                temp_file.flush()
                os.fsync(temp_file.fileno())
            if overwrite:
                os.replace(temp_name, target)
            else:
                # link() fails if the target exists, so two racing write-once puts cannot both win.
                try:
                    os.link(temp_name, target)
                except FileExistsError:
                    raise ObjectExists(f"an object is already stored under {key!r}") from None
                os.unlink(temp_name)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return StoredObject(key=key, size=reader.size, sha256=reader.sha256)

    def open(self, key: str) -> IO[bytes]:
        """Return the object's file opened for binary reading."""
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def stat(self, key: str) -> ObjectStat:
        """Return the object's size and modification time."""
        path = self._path(key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not path.is_file():
            raise ObjectNotFound(key)
        return ObjectStat(
            key=key,
            size=info.st_size,
            modified_at=dt.datetime.fromtimestamp(info.st_mtime, tz=dt.timezone.utc),
        )

    def exists(self, key: str) -> bool:
        """Return whether a file is stored under ``key``."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file and any directories it leaves empty; missing is fine."""
        path = self._path(key)
        if path.is_dir():
            raise StorageError(f"{key!r} is a directory of keys, not an object")
        path.unlink(missing_ok=True)
        parent = path.parent
        # Prune emptied directories: their names may carry patient ids.
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield keys starting with ``prefix`` in lexicographic order."""
        validate_prefix(prefix)
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            relative_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if relative_dir == "." else f"{relative_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def presign_put(self, key: str, content_type: str, size_bytes: int, expires_s: int) -> PresignedUpload:
        """Sign a one-time upload to the local upload route.

        Parameters
        ----------
        key : str
            Target key; must not exist when the upload arrives.
        content_type : str
            The Content-Type the client must send.
        size_bytes : int
            Exact body length in bytes, >= 1.
        expires_s : int
            Lifetime of the URL in seconds, >= 1.
        """
        if self.signing_key is None or self._upload_url is None:
            raise StorageError("direct uploads need a signing key and an upload route")
        validate_key(key)
        if size_bytes < 1 or expires_s < 1:
            raise ValueError("size_bytes and expires_s must be positive")
        expires_at = math.ceil(self._clock().timestamp()) + expires_s
        grant = UploadGrant(key=key, content_type=content_type, size_bytes=size_bytes, expires_at=expires_at)
        return PresignedUpload(
            url=self._upload_url(sign_grant(self.signing_key, grant)),
            method="PUT",
            headers={"Content-Type": content_type, "Content-Length": str(size_bytes), "If-None-Match": "*"},
            expires_at=grant.expires_at_datetime(),
        )
