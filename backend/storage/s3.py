"""Storage in an S3-compatible bucket, via boto3."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from backend.storage import (
    DigestingReader,
    ObjectExists,
    ObjectNotFound,
    ObjectStat,
    PresignedUpload,
    StorageError,
    StoredObject,
    validate_key,
    validate_prefix,
)

#: Objects of at least this size go up as a multipart upload, in parts of this size.
MULTIPART_THRESHOLD_BYTES = 8 * 1024 * 1024
#: S3's smallest allowed part (all but the last).
MIN_PART_BYTES = 5 * 1024 * 1024
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION_CODES = {"412", "PreconditionFailed", "ConditionalRequestConflict"}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Storage:
    """Objects in ``bucket`` under ``prefix``; key ``a/b.jpg`` is ``<prefix>/a/b.jpg``.

    Parameters
    ----------
    bucket : str
        Bucket name.
    prefix : str
        Key prefix inside the bucket without leading/trailing slashes; may be empty.
    endpoint_url : str or None
        S3-compatible endpoint (``S3_ENDPOINT_URL``); ``None`` means AWS.
    region : str or None
        Signing region (``S3_REGION``); ``None`` uses boto3's default chain.
    access_key_id, secret_access_key : str or None
        Credentials; ``None`` uses boto3's standard chain (``AWS_ACCESS_KEY_ID``...).
    create_bucket : bool
        Create the bucket if missing (for development and tests).
    multipart_threshold : int
        Objects of at least this many bytes are uploaded in parts.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        create_bucket: bool = False,
        multipart_threshold: int = MULTIPART_THRESHOLD_BYTES,
    ) -> None:
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self._client_options = dict(
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                signature_version="s3v4",
                # Path-style works on every S3-compatible server; AWS still accepts it.
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                # Optional checksums add headers some S3-compatible servers reject.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._client = None
        self._client_pid: int | None = None
        # S3 refuses parts below 5 MiB (except the last), so the threshold is also the part size.
        self._part_bytes = max(multipart_threshold, MIN_PART_BYTES)
        if create_bucket:
            self._ensure_bucket()

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @property
    def client(self):
        """This process's boto3 S3 client, made on first use in each process.

        A client keeps HTTP connections open in a pool. A Celery prefork worker (or gunicorn with
        ``--preload``) creates the app and its storage before forking; children sharing an open
        socket write their requests on it at the same time and read each other's replies (seen:
        an analysis read an empty photo, an overlay went missing). So a process that did not make
        the client makes its own; threads of one process share it (boto3 clients are thread-safe;
        each is made from a session of its own, since boto3's default session is not, and two
        threads racing here only make one client too many).
        """
        pid = os.getpid()
        if self._client_pid != pid:
            self._client = boto3.session.Session().client("s3", **self._client_options)
            self._client_pid = pid
        return self._client

    def _ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in _NOT_FOUND_CODES | {"NoSuchBucket"}:
                raise
            self.client.create_bucket(Bucket=self.bucket)

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
        overwrite: bool = True,
    ) -> StoredObject:
        """Upload in one PUT or, from ``multipart_threshold`` bytes on, in parts.

        S3 makes an object visible only when its upload completes, so the
        write is atomic; a failed or too-large upload is aborted and leaves
        nothing behind. Write-once puts send ``If-None-Match: *``.
        """
        object_key = self._object_key(key)
        reader = DigestingReader(data, max_bytes)
        conditional: dict[str, Any] = {} if overwrite else {"IfNoneMatch": "*"}
        try:
            first = reader.read(self._part_bytes)
            if len(first) < self._part_bytes:
                self.client.put_object(
                    Bucket=self.bucket, Key=object_key, Body=first, ContentType=content_type, **conditional
                )
            else:
                self._put_multipart(object_key, first, reader, content_type, conditional)
        except ClientError as exc:
            if _error_code(exc) in _PRECONDITION_CODES:
                raise ObjectExists(f"an object is already stored under {key!r}") from None
            raise StorageError(f"S3 put failed: {_error_code(exc)}") from exc
        return StoredObject(key=key, size=reader.size, sha256=reader.sha256)

    def _put_multipart(
        self, object_key: str, first: bytes, reader: DigestingReader, content_type: str, conditional: dict[str, Any]
    ) -> None:
        """Upload ``first`` and the rest of ``reader`` as parts, aborting on any failure."""
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=object_key, ContentType=content_type
        )["UploadId"]
        try:
            parts = []
            chunk = first
            while chunk:
                number = len(parts) + 1
                etag = self.client.upload_part(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id, PartNumber=number, Body=chunk
                )["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
                chunk = reader.read(self._part_bytes)
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **conditional,
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload_id)
            raise

    def open(self, key: str) -> IO[bytes]:
        """Return the object's streaming HTTP body (read it in chunks, then close)."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"]
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from None
            raise StorageError(f"S3 get failed: {_error_code(exc)}") from exc

    def stat(self, key: str) -> ObjectStat:
        """Return size and modification time from a HEAD request."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from None
            raise StorageError(f"S3 head failed: {_error_code(exc)}") from exc
        modified: dt.datetime = head["LastModified"]
        return ObjectStat(key=key, size=int(head["ContentLength"]), modified_at=modified.astimezone(dt.timezone.utc))

    def exists(self, key: str) -> bool:
        """Return whether the object exists (HEAD request)."""
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Delete the object; S3 answers success for missing keys too."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                return
            raise StorageError(f"S3 delete failed: {_error_code(exc)}") from exc

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield keys starting with ``prefix`` (S3 lists in lexicographic order)."""
        validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
            for entry in page.get("Contents", []):
                yield entry["Key"][len(base) :]

    def presign_put(self, key: str, content_type: str, size_bytes: int, expires_s: int) -> PresignedUpload:
        """Presign a PUT whose signature covers Content-Type, Content-Length and If-None-Match.

        A presigned PUT cannot carry a size range, so the exact size is
        signed: S3 rejects a body of any other length or type, and a second
        upload to the same key (If-None-Match: *).
        """
        object_key = self._object_key(key)
        if size_bytes < 1 or expires_s < 1:
            raise ValueError("size_bytes and expires_s must be positive")
        now = dt.datetime.now(dt.timezone.utc)
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": object_key,
                "ContentType": content_type,
                "ContentLength": size_bytes,
                "IfNoneMatch": "*",
            },
            ExpiresIn=expires_s,
            HttpMethod="PUT",
        )
        return PresignedUpload(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type, "Content-Length": str(size_bytes), "If-None-Match": "*"},
            expires_at=now + dt.timedelta(seconds=expires_s),
        )
