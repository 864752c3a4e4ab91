"""Backup and restore of the database and the photo store: ``flask backup`` / ``flask restore``.

A backup is a directory (no pg_dump needed, works the same on SQLite and PostgreSQL)::

    manifest.json          format, time, schema revision, row counts, objects with size and SHA-256
    tables/<table>.jsonl   one JSON object per row, every table of the models
    objects/<key>          every object of the photo store, under its storage key

The database is read in one transaction, so the rows are one consistent snapshot; objects are
copied afterwards, and every object a row references is required to be present (a backup
taken beside live traffic may also hold a few objects no row references - restore skips
nothing, and ``flask check-integrity`` reports them as orphans once their grace period ends).
Restore goes into an *empty* instance: the schema is migrated to the backup's revision, the
rows are inserted in dependency order, and each object is written and its SHA-256 checked.
``SECRET_KEY`` is not part of a backup (it is a secret, keep it with the deployment's
secrets): without the same key, existing sign-ins end, which is all.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from flask import current_app
from sqlalchemy import Table, func, select, text

from backend import migrations
from backend.extensions import db
from backend.models.base import Base
from backend.storage import CHUNK_BYTES, Storage, current_storage, validate_key

#: Version of the backup directory layout.
BACKUP_FORMAT = 1
MANIFEST_NAME = "manifest.json"


class BackupError(click.ClickException):
    """A backup cannot be written or restored (the message says why)."""


# ------------------------------------------------------------------ value encoding

def encode_value(value: Any) -> Any:
    """A JSON-ready form of one column value; non-JSON types become ``{"$<type>": text}``."""
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    return value


_DECODERS = {
    "$uuid": uuid.UUID, "$datetime": dt.datetime.fromisoformat, "$date": dt.date.fromisoformat,
    "$bytes": base64.b64decode, "$decimal": decimal.Decimal,
}


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, dict) and len(value) == 1:
        (tag, content), = value.items()
        if tag in _DECODERS:
            return _DECODERS[tag](content)
    return value


# ------------------------------------------------------------------ backup

def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _object_path(root: Path, key: str) -> Path:
    return root / "objects" / validate_key(key)  # validated keys cannot leave the directory


def write_backup(target: Path, storage: Storage | None = None) -> dict[str, Any]:
    """Write a backup of the current app's database and photo store into ``target``.

    Parameters
    ----------
    target : pathlib.Path
        A directory that does not exist yet or is empty.
    storage : Storage, optional
        Default the app's photo store.

    Returns
    -------
    dict
        The manifest (also written to ``target/manifest.json``).
    """
    storage = storage if storage is not None else current_storage()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    (target / "tables").mkdir(parents=True, exist_ok=True)
    url, options = current_app.config["SQLALCHEMY_DATABASE_URI"], current_app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    revision = migrations.current_revision(url, options)
    counts: dict[str, int] = {}
    with db.engine.connect() as conn:
        with conn.begin():  # one snapshot of every table
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            for table in _tables():
                order = list(table.primary_key.columns) or list(table.columns)
                with (target / "tables" / f"{table.name}.jsonl").open("w", encoding="utf-8") as out:
                    count = 0
                    for row in conn.execute(select(table).order_by(*order)).mappings():
                        out.write(json.dumps({k: encode_value(v) for k, v in row.items()}, sort_keys=True) + "\n")
                        count += 1
                counts[table.name] = count
    objects = []
    for key in storage.iter_keys(""):
        path = _object_path(target, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with storage.open(key) as source, path.open("wb") as out:
            while chunk := source.read(CHUNK_BYTES):
                out.write(chunk)
        objects.append({"key": key, "size": path.stat().st_size, "sha256": _sha256_file(path)})
    manifest = {
        "format": BACKUP_FORMAT, "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "schema_revision": revision, "rows": counts, "objects": objects,
    }
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return manifest


# ------------------------------------------------------------------ restore

def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a backup directory, checked for format."""
    try:
        manifest = json.loads((source / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BackupError(f"{source} holds no readable {MANIFEST_NAME}: {type(error).__name__}") from None
    if manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"unsupported backup format {manifest.get('format')!r}")
    return manifest


def _rows(source: Path, table: Table) -> Iterator[dict[str, Any]]:
    path = source / "tables" / f"{table.name}.jsonl"
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            yield {k: decode_value(v) for k, v in json.loads(line).items()}


def _self_references(table: Table) -> list[str]:
    """Columns of ``table`` that point at rows of the same table (filled in a second pass)."""
    return [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]


def restore_backup(source: Path, storage: Storage | None = None, batch_rows: int = 500) -> dict[str, int]:
    """Restore a backup into the current app's empty database and photo store.

    The schema is upgraded to the backup's revision first; every table must then be empty
    (restore never merges). Objects are written before the rows commit, so a failed restore
    can be repeated after emptying the instance.

    Returns
    -------
    dict of str to int
        Rows inserted per table, and ``objects``.
    """
    storage = storage if storage is not None else current_storage()
    manifest = read_manifest(source)
    url, options = current_app.config["SQLALCHEMY_DATABASE_URI"], current_app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    migrations.upgrade(url, options, manifest["schema_revision"] or "head")
    session = db.session
    for table in _tables():
        if session.scalar(select(func.count()).select_from(table)):
            raise BackupError(f"the target database is not empty (table {table.name} has rows)")
    if next(iter(storage.iter_keys("")), None) is not None:
        raise BackupError("the target photo store is not empty")

    for entry in manifest["objects"]:
        path = _object_path(source, entry["key"])
        if _sha256_file(path) != entry["sha256"]:
            raise BackupError(f"object {entry['key']} does not match its checksum in the manifest")
        with path.open("rb") as data:
            stored = storage.put(entry["key"], data, "application/octet-stream")
        if stored.sha256 != entry["sha256"]:
            raise BackupError(f"object {entry['key']} was not stored intact")

    # Every primary key is a UUID or, for the audit chain, an explicit seq: no sequences to move.
    counts: dict[str, int] = {}
    try:
        for table in _tables():
            deferred = _self_references(table)
            pending_links: list[tuple[dict[str, Any], dict[str, Any]]] = []
            batch: list[dict[str, Any]] = []
            count = 0
            for row in _rows(source, table):
                if deferred:
                    links = {name: row[name] for name in deferred if row.get(name) is not None}
                    if links:
                        pending_links.append(({c.name: row[c.name] for c in table.primary_key.columns}, links))
                        row = {**row, **{name: None for name in links}}
                batch.append(row)
                count += 1
                if len(batch) >= batch_rows:
                    session.execute(table.insert(), batch)
                    batch = []
            if batch:
                session.execute(table.insert(), batch)
            for key, links in pending_links:
                condition = [table.c[name] == value for name, value in key.items()]
                session.execute(table.update().where(*condition).values(**links))
            counts[table.name] = count
        session.commit()
    except BaseException:
        session.rollback()
        raise
    expected = manifest["rows"]
    if {name: counts.get(name, 0) for name in expected} != expected:
        raise BackupError("restored row counts differ from the manifest")
    counts["objects"] = len(manifest["objects"])
    return counts
