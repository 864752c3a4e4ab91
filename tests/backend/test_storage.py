"""Storage backends: the same behaviour on local disk and on a real S3-compatible server."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from backend.storage import (
    InvalidKey,
    ObjectExists,
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    digest_object,
    storage_from_url,
)
from backend.storage.local import LocalStorage
from backend.storage.s3 import S3Storage
from tests.s3server import running_s3_server

CREDENTIALS = {"access_key_id": "test-access", "secret_access_key": "test-secret", "region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    with running_s3_server(tmp_path_factory.mktemp("s3data")) as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return storage_from_url(f"file://{tmp_path / 'photos'}")
    server = request.getfixturevalue("s3_server")
    # A fresh prefix per test keeps tests independent inside one bucket.
    return storage_from_url(
        f"s3://photos/run-{uuid.uuid4().hex}",
        endpoint_url=server.endpoint_url,
        create_bucket=True,
        **CREDENTIALS,
    )


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes of ``size`` length."""
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


def read_all(storage: Storage, key: str) -> bytes:
    with storage.open(key) as stream:
        return stream.read()


def test_storage_from_url_picks_backend(tmp_path, s3_server):
    assert isinstance(storage_from_url(f"file://{tmp_path}"), LocalStorage)
    assert isinstance(storage_from_url("", default_root=str(tmp_path / "d")), LocalStorage)
    s3 = storage_from_url("s3://photos/a/b", endpoint_url=s3_server.endpoint_url, **CREDENTIALS)
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("photos", "a/b")
    for bad in ("ftp://host/x", "s3:///nobucket", "file://relative/dir"):
        with pytest.raises(ValueError):
            storage_from_url(bad)


def test_put_bytes_then_read_stat_exists(storage):
    data = payload(70_000)
    stored = storage.put("patients/p1/photo.jpg", data, "image/jpeg")
    assert stored.key == "patients/p1/photo.jpg"
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(storage, "patients/p1/photo.jpg") == data
    assert storage.stat("patients/p1/photo.jpg").size == len(data)
    assert storage.exists("patients/p1/photo.jpg")
    assert not storage.exists("patients/p1/other.jpg")
    assert digest_object(storage, "patients/p1/photo.jpg") == stored


def test_put_stream_and_overwrite_replaces(storage):
    storage.put("k/a.bin", io.BytesIO(payload(3_000_000, seed=1)), "application/octet-stream")
    second = payload(1234, seed=2)
    stored = storage.put("k/a.bin", io.BytesIO(second), "application/octet-stream")
    assert stored.size == 1234
    assert read_all(storage, "k/a.bin") == second


def test_empty_object(storage):
    stored = storage.put("empty.bin", b"", "application/octet-stream")
    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert read_all(storage, "empty.bin") == b""


def test_write_once_put_refuses_existing_key(storage):
    storage.put("once.jpg", b"first", "image/jpeg", overwrite=False)
    with pytest.raises(ObjectExists):
        storage.put("once.jpg", b"second", "image/jpeg", overwrite=False)
    assert read_all(storage, "once.jpg") == b"first"


def test_size_limit_stores_nothing(storage):
    with pytest.raises(ObjectTooLarge):
        storage.put("big.jpg", io.BytesIO(payload(2_500_000)), "image/jpeg", max_bytes=2_000_000)
    assert not storage.exists("big.jpg")
    assert list(storage.iter_keys()) == []
    # Exactly at the limit is accepted.
    assert storage.put("ok.jpg", payload(100), "image/jpeg", max_bytes=100).size == 100


def test_missing_objects(storage):
    with pytest.raises(ObjectNotFound):
        storage.open("nope/missing.jpg")
    with pytest.raises(ObjectNotFound):
        storage.stat("nope/missing.jpg")
    storage.delete("nope/missing.jpg")  # idempotent: no error


def test_delete_is_idempotent(storage):
    storage.put("d/x.jpg", b"abc", "image/jpeg")
    storage.delete("d/x.jpg")
    storage.delete("d/x.jpg")
    assert not storage.exists("d/x.jpg")
    assert list(storage.iter_keys("d/")) == []


def test_iter_keys_by_prefix_sorted(storage):
    keys = ["b/2.jpg", "a/1.jpg", "a/sub/3.png", "ab/4.jpg", "c.jpg"]
    for key in keys:
        storage.put(key, key.encode(), "image/jpeg")
    assert list(storage.iter_keys()) == sorted(keys)
    assert list(storage.iter_keys("a/")) == ["a/1.jpg", "a/sub/3.png"]
    assert list(storage.iter_keys("a")) == ["a/1.jpg", "a/sub/3.png", "ab/4.jpg"]
    assert list(storage.iter_keys("zzz/")) == []


UNSAFE_KEYS = [
    "",
    "/etc/passwd",
    "../outside.jpg",
    "a/../../outside.jpg",
    "a/./b.jpg",
    "a//b.jpg",
    "a/",
    ".hidden",
    "a/.upload-temp",
    "a\\b.jpg",
    "a b.jpg",
    "caf\u00e9.jpg",
    "x" * 600,
    "a/b\x00.jpg",
]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused(storage, key):
    with pytest.raises(InvalidKey):
        storage.put(key, b"x", "image/jpeg")
    with pytest.raises(InvalidKey):
        storage.open(key)
    with pytest.raises(InvalidKey):
        storage.delete(key)
    with pytest.raises(InvalidKey):
        storage.exists(key)


def test_local_traversal_never_touches_outside(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"secret")
    with pytest.raises(InvalidKey):
        storage.open("../outside.jpg")
    with pytest.raises(InvalidKey):
        storage.delete("../outside.jpg")
    assert outside.read_bytes() == b"secret"


def test_local_symlink_out_of_root_is_refused(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f.jpg").write_bytes(b"secret")
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "link")
    with pytest.raises(InvalidKey):
        storage.open("link/f.jpg")
    with pytest.raises(InvalidKey):
        storage.put("link/g.jpg", b"x", "image/jpeg")
    assert not (tmp_path / "elsewhere" / "g.jpg").exists()


def test_local_failed_put_leaves_no_temp_file(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    storage.put("p/keep.jpg", b"old", "image/jpeg")
    with pytest.raises(ObjectTooLarge):
        storage.put("p/keep.jpg", io.BytesIO(payload(5000)), "image/jpeg", max_bytes=10)
    assert sorted(os.listdir(tmp_path / "root" / "p")) == ["keep.jpg"]
    assert (tmp_path / "root" / "p" / "keep.jpg").read_bytes() == b"old"


def test_local_delete_prunes_empty_directories(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    storage.put("patients/p1/milestones/m1/a.jpg", b"x", "image/jpeg")
    storage.put("patients/p2/b.jpg", b"y", "image/jpeg")
    storage.delete("patients/p1/milestones/m1/a.jpg")
    assert not (tmp_path / "root" / "patients" / "p1").exists()
    assert (tmp_path / "root" / "patients" / "p2" / "b.jpg").exists()


def s3_storage(server, **options) -> S3Storage:
    """A bucket prefix of its own on the test server."""
    return S3Storage("photos", f"t-{uuid.uuid4().hex}", endpoint_url=server.endpoint_url, create_bucket=True,
                     **CREDENTIALS, **options)


def test_s3_large_object_goes_up_in_parts(s3_server):
    storage = s3_storage(s3_server, multipart_threshold=5 * 1024 * 1024)
    operations: list[str] = []
    # Observe the real requests botocore sends (localbucket's ETags do not reveal parts).
    storage.client.meta.events.register("before-call.s3", lambda model, **_: operations.append(model.name))
    data = payload(11 * 1024 * 1024, seed=3)
    stored = storage.put("big/photo.heic", io.BytesIO(data), "image/heic")
    assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert operations == ["CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "CompleteMultipartUpload"]
    assert digest_object(storage, "big/photo.heic") == stored


def test_s3_too_large_multipart_is_aborted(s3_server):
    storage = s3_storage(s3_server, multipart_threshold=5 * 1024 * 1024)
    operations: list[str] = []
    storage.client.meta.events.register("before-call.s3", lambda model, **_: operations.append(model.name))
    with pytest.raises(ObjectTooLarge):
        storage.put("big/x.jpg", io.BytesIO(payload(12 * 1024 * 1024)), "image/jpeg", max_bytes=7 * 1024 * 1024)
    assert operations[0] == "CreateMultipartUpload" and operations[-1] == "AbortMultipartUpload"
    assert not storage.exists("big/x.jpg")
    uploads_dir = s3_server.data_root / ".localbucket-uploads"
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


def test_s3_presigned_put_signs_type_size_and_write_once(s3_server):
    # Local-disk direct uploads go through the Flask route: see test_uploads_local.py.
    storage = s3_storage(s3_server)
    data = payload(4321, seed=4)
    grant = storage.presign_put("direct/u1.jpg", "image/jpeg", len(data), expires_s=300)
    query = parse_qs(urlsplit(grant.url).query)
    # localbucket does not verify signatures, so check what a real S3 would enforce.
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host;if-none-match"]
    assert query["X-Amz-Expires"] == ["300"]
    assert grant.method == "PUT"
    assert grant.headers == {"Content-Type": "image/jpeg", "Content-Length": "4321", "If-None-Match": "*"}

    request = urllib.request.Request(grant.url, data=data, method="PUT", headers=grant.headers)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert digest_object(storage, "direct/u1.jpg").sha256 == hashlib.sha256(data).hexdigest()

    # Replaying the URL cannot replace the verified bytes.
    replay = urllib.request.Request(grant.url, data=payload(4321, seed=5), method="PUT", headers=grant.headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(replay)
    assert refused.value.code == 412
    assert read_all(storage, "direct/u1.jpg") == data


# ---------------------------------------------------------------- local direct uploads (Flask route)


class SteppingClock:
    """A clock the test moves by hand, for grant expiry."""

    def __init__(self) -> None:
        import datetime as dt

        self.moment = dt.datetime.now(dt.timezone.utc)

    def __call__(self):
        return self.moment

    def advance(self, seconds: float) -> None:
        import datetime as dt

        self.moment += dt.timedelta(seconds=seconds)


@pytest.fixture
def upload_clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def app_config(app_config, upload_clock):
    return {**app_config, "CLOCK": upload_clock}


def presign_local(app, key: str, content_type: str, size: int, expires_s: int = 300):
    from backend.storage import current_storage

    with app.test_request_context():
        return current_storage().presign_put(key, content_type, size, expires_s)


def upload_path(grant) -> str:
    parts = urlsplit(grant.url)
    assert parts.scheme == "http" and parts.path.startswith("/api/v1/uploads/local/")
    return parts.path


def assert_problem(response, status: int, type_slug: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    if type_slug:
        assert response.json["type"].endswith(type_slug)


def test_local_direct_upload_stores_once(app, client):
    from backend.storage import current_storage

    data = payload(50_000, seed=6)
    key = f"direct/{uuid.uuid4().hex}.jpg"
    grant = presign_local(app, key, "image/jpeg", len(data))
    assert grant.headers == {"Content-Type": "image/jpeg", "Content-Length": str(len(data)), "If-None-Match": "*"}
    response = client.put(upload_path(grant), data=data, headers=grant.headers)
    assert response.status_code == 204
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    with app.app_context():
        assert digest_object(current_storage(), key).sha256 == hashlib.sha256(data).hexdigest()

    replay = client.put(upload_path(grant), data=payload(50_000, seed=7), headers=grant.headers)
    assert_problem(replay, 412, "upload-already-stored")
    with app.app_context():
        assert read_all(current_storage(), key) == data


@pytest.mark.parametrize(
    ("body_size", "content_type", "status", "type_slug"),
    [
        (1001, "image/jpeg", 413, "upload-size-mismatch"),
        (999, "image/jpeg", 400, "upload-size-mismatch"),
        (1000, "image/png", 415, None),
        (1000, "text/plain", 415, None),
    ],
)
def test_local_direct_upload_enforces_the_grant(app, client, body_size, content_type, status, type_slug):
    from backend.storage import current_storage

    key = f"direct/{uuid.uuid4().hex}.jpg"
    grant = presign_local(app, key, "image/jpeg", 1000)
    response = client.put(upload_path(grant), data=payload(body_size),
                          headers={"Content-Type": content_type, "If-None-Match": "*"})
    assert_problem(response, status, type_slug)
    with app.app_context():
        assert not current_storage().exists(key)


def test_local_direct_upload_requires_content_length(app, client):
    grant = presign_local(app, f"direct/{uuid.uuid4().hex}.jpg", "image/jpeg", 10)

    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=upload_path(grant), method="PUT", data=b"0123456789",
                             headers={"Content-Type": "image/jpeg"}).get_environ()
    # A chunked request: no Content-Length, so the size cannot be checked before reading.
    del environ["CONTENT_LENGTH"]
    environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    assert_problem(client.open(environ), 411)


def test_local_direct_upload_refuses_tampered_and_expired_urls(app, client, upload_clock):
    from backend.storage import current_storage

    key = f"direct/{uuid.uuid4().hex}.jpg"
    grant = presign_local(app, key, "image/jpeg", 100, expires_s=60)
    path = upload_path(grant)
    token = path.rsplit("/", 1)[1]
    # Change one signature character (not the last: its low bits are base64 padding), then
    # present a never-expiring grant signed with a key other than the server's.
    position = len(path) - 10
    tampered = path[:position] + ("A" if path[position] != "A" else "B") + path[position + 1:]
    assert_problem(client.put(tampered, data=payload(100), headers=grant.headers), 403, "upload-url-invalid")
    from backend.storage.signed_upload import UploadGrant, sign_grant

    forged = sign_grant(b"not-the-server-key" * 2, UploadGrant(key, "image/jpeg", 100, 2**40))
    assert_problem(client.put(path.replace(token, forged), data=payload(100), headers=grant.headers),
                   403, "upload-url-invalid")

    upload_clock.advance(61)
    assert_problem(client.put(path, data=payload(100), headers=grant.headers), 403, "upload-url-expired")
    with app.app_context():
        assert not current_storage().exists(key)


def test_app_storage_configured_for_s3(s3_server, tmp_path, monkeypatch):
    from backend import create_app
    from backend.storage import current_storage

    # boto3's standard credential variables (localbucket accepts any credentials).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    application = create_app({
        "TESTING": True, "SECRET_KEY": "k" * 64, "JOB_BACKEND": "inline",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "STORAGE_URL": "s3://app-photos/clinic-a", "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "S3_REGION": "eu-west-1", "S3_CREATE_BUCKET": True,
    })
    with application.app_context():
        storage = current_storage()
        assert isinstance(storage, S3Storage) and (storage.bucket, storage.prefix) == ("app-photos", "clinic-a")
        storage.put("p/1.jpg", b"bytes", "image/jpeg")
        assert (s3_server.data_root / "app-photos" / "clinic-a" / "p" / "1.jpg").read_bytes() == b"bytes"
        grant = storage.presign_put("p/2.jpg", "image/jpeg", 5, 60)
        assert grant.url.startswith(f"{s3_server.endpoint_url}/app-photos/clinic-a/p/2.jpg?")
        assert "eu-west-1" in parse_qs(urlsplit(grant.url).query)["X-Amz-Credential"][0]


def _round_trips_in_a_forked_child(storage: S3Storage, tag: str, rounds: int, results) -> None:
    """Child process: write and read back ``rounds`` distinct objects; report the mismatches."""
    bad = 0
    for i in range(rounds):
        body = f"{tag}-{i}-".encode() * (200 + i)
        key = f"fork/{tag}/{i}.bin"
        try:
            storage.put(key, body, "application/octet-stream")
            with storage.open(key) as stream:
                bad += stream.read() != body
        except Exception:  # a reply meant for the other process can fail in any way
            bad += 1
    results.put((tag, bad))


def test_s3_storage_made_before_a_fork_gives_each_process_its_own_connections(s3_server):
    """A Celery prefork worker creates the app (and its storage, which may already have talked to
    the server: S3_CREATE_BUCKET) before forking its pool processes. Pooled HTTP connections shared
    across fork carry two processes' requests on one socket, each reading the other's replies (an
    analysis read an empty photo; an overlay went missing). Each process must use its own."""
    import multiprocessing

    storage = S3Storage("photos", f"t-{uuid.uuid4().hex}", endpoint_url=s3_server.endpoint_url, create_bucket=True,
                        **CREDENTIALS)
    storage.put("warm.bin", b"a pooled connection is open now", "application/octet-stream")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_round_trips_in_a_forked_child, args=(storage, tag, 150, results))
                for tag in ("a", "b")]
    for child in children:
        child.start()
    outcome = dict(results.get(timeout=120) for _ in children)
    for child in children:
        child.join(timeout=30)
    assert outcome == {"a": 0, "b": 0}
    # ... and the parent's own client still works.
    with storage.open("warm.bin") as stream:
        assert stream.read() == b"a pooled connection is open now"
