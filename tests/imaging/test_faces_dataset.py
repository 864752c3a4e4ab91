"""The real-face development and validation set (imaging/testing/faces.py, FACES.md).

Manifest tests need no network. The data tests fetch what is missing (``make test`` has
already done it through ``make faces``; then they only hash and decode ~9 MB of images).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from imaging.testing import faces

PORTRAITS = faces.portraits()
ANNOTATED = [e for e in faces.images() if e.eye_right is not None]
SMILES = {"smile_teeth", "smile_closed"}


# --- manifest -----------------------------------------------------------------------------


def test_ids_unique_and_kinds_known():
    ids = [e.id for e in faces.images()]
    assert len(ids) == len(set(ids))
    assert {e.kind for e in faces.images()} <= set(faces.KINDS)
    for kind in faces.KINDS:
        assert faces.images(kind), f"no {kind} in the set"


def test_every_archive_is_pinned_and_used():
    m = faces.manifest()
    used = {e.archive for e in m.images}
    assert used == set(m.archives)
    for archive in m.archives.values():
        assert archive.registry in {"pypi", "npm", "installed"}
        assert archive.version and archive.package
        if archive.registry != "installed":
            assert archive.filename and len(archive.sha256) == 64 and archive.size > 0
    # Installed archives are pins of requirements.txt, so they cannot drift silently.
    requirements = (Path(faces.REPO_ROOT) / "requirements.txt").read_text().lower()
    for archive in m.archives.values():
        if archive.registry == "installed":
            assert f"{archive.package.lower()}=={archive.version}" in requirements


def test_every_image_has_checksum_licence_and_source():
    for e in faces.images():
        assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0, e.id
        assert e.bytes > 0 and e.width > 0 and e.height > 0, e.id
        assert e.licence and e.licence_note.strip() and e.source.strip(), e.id


def test_more_than_one_source():
    m = faces.manifest()
    registries = {m.archives[e.archive].registry for e in PORTRAITS}
    packages = {m.archives[e.archive].package for e in PORTRAITS}
    assert {"pypi", "npm"} <= registries
    assert len(packages) >= 5


def test_portraits_cover_the_issue_attributes():
    assert len(PORTRAITS) >= 12
    assert {e.sex for e in PORTRAITS} == {"female", "male"}
    assert any(e.beard for e in PORTRAITS)
    assert any(e.glasses for e in PORTRAITS)
    expressions = {e.expression for e in PORTRAITS}
    assert "neutral" in expressions and expressions & SMILES
    backgrounds = Counter(e.background for e in PORTRAITS)
    assert backgrounds.keys() >= {"plain", "coloured_plain", "cluttered", "coloured_cluttered"}
    assert len({e.lighting for e in PORTRAITS}) >= 5
    assert {e.fitzpatrick for e in PORTRAITS} >= {1, 2, 3, 4, 5, 6}
    # Distinct people, not photos: several photos of one person count once.
    assert len({e.person for e in PORTRAITS}) >= 12


def test_at_least_three_people_of_fitzpatrick_v_vi():
    """The issue's requirement: at least 3 people of types V-VI, measurable, from more than one source."""
    assert len(faces.fitzpatrick_v_vi_people()) >= 3
    dark = [e for e in PORTRAITS if e.fitzpatrick >= 5]
    assert len({e.person for e in dark}) >= 3, "V-VI people among the measurable portraits"
    assert len({faces.manifest().archives[e.archive].package for e in dark}) >= 2
    assert any(e.fitzpatrick == 6 for e in dark)
    assert sum(e.iod >= 80 for e in dark) >= 2


def test_crop_entries_are_consistent():
    """A crop entry is one person cut out of a photo that is also listed whole (e.g. as a group)."""
    crops = [e for e in faces.images() if e.crop is not None]
    assert crops
    for e in crops:
        x, y, w, h = e.crop
        assert x >= 0 and y >= 0 and (w, h) == (e.width, e.height), e.id
        assert e.kind in {"portrait", "hard_case"}, e.id
        whole = [o for o in faces.images() if o.crop is None and o.sha256 == e.sha256]
        assert whole, f"{e.id}: its source photo is not listed whole"
        assert x + w <= whole[0].width and y + h <= whole[0].height, e.id


def test_same_person_links_are_symmetric():
    m = faces.manifest()
    for e in m.images:
        for other in e.same_person:
            assert m.get(other).person == e.person
            assert e.id in m.get(other).same_person


def test_expression_pairs_are_one_person_neutral_then_smiling():
    pairs = faces.expression_pairs()
    assert pairs
    for neutral, smiling in pairs:
        assert neutral.person == smiling.person
        assert neutral.expression == "neutral" and smiling.expression in SMILES


@pytest.mark.parametrize("entry", ANNOTATED, ids=lambda e: e.id)
def test_eye_annotations_are_plausible(entry):
    (rx, ry), (lx, ly) = entry.eye_right, entry.eye_left
    bx, by, bw, bh = entry.face_box
    assert 0 <= bx and 0 <= by and bx + bw <= entry.width and by + bh <= entry.height
    for x, y in (entry.eye_right, entry.eye_left):
        assert bx < x < bx + bw and by < y < by + bh
    assert rx < lx, "the subject's right eye is on the image's left"
    assert math.isclose(faces.eye_distance(entry), entry.iod, abs_tol=0.06)
    roll_limit = 25 if entry.kind == "portrait" else 45  # hard cases may be tilted on purpose
    assert abs(math.degrees(math.atan2(ly - ry, lx - rx))) < roll_limit, "eye line rolled too far"
    assert 0.3 < entry.iod / bw < 0.7
    # Eyes sit in the upper half of the face box.
    assert by + 0.15 * bh < (ry + ly) / 2 < by + 0.5 * bh


def test_portraits_have_measurable_annotations():
    for e in PORTRAITS:
        assert e.eye_right and e.eye_left and e.face_box, e.id
        assert e.iod >= 40, e.id
        assert e.ita is not None and e.fitzpatrick is not None, e.id
    assert sum(e.iod >= 80 for e in PORTRAITS) >= 12


def test_no_image_committed():
    for folder in (Path(faces.__file__).parent, Path(__file__).parent):
        assert not [p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".mpo"}]


# --- data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fetched():
    faces.fetch()
    return faces


def test_fetched_images_verify(fetched):
    assert fetched.verify() == []


@pytest.mark.parametrize("entry", faces.images(), ids=lambda e: e.id)
def test_every_image_loads_with_recorded_shape(fetched, entry):
    rgb = fetched.load(entry.id)
    assert rgb.dtype == np.uint8 and rgb.shape == entry.shape
    assert rgb.std() > 10, "image is (nearly) constant"


def test_greyscale_and_rgba_sources_load_as_rgb(fetched):
    grey = fetched.load("glasses_greyscale").astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).mean() < 8  # toned black-and-white: no skin colour
    stock = fetched.load("bearded_laughing")  # RGBA PNG with a Display P3 profile
    assert stock.shape[2] == 3


def test_recorded_ita_follows_the_documented_method(fetched):
    """Recompute ITA on the annotated cheeks as the manifest's ita_method describes."""
    from skimage.color import rgb2lab

    for e in ANNOTATED:
        rgb = fetched.load(e.id)
        er, el = np.array(e.eye_right), np.array(e.eye_left)
        u = (el - er) / e.iod
        down = np.array([-u[1], u[0]])
        cheeks = []
        for eye, side in ((er, -1), (el, 1)):
            cx, cy = eye + down * 0.68 * e.iod + u * side * 0.05 * e.iod
            h = max(3, int(0.10 * e.iod))
            patch = rgb[int(cy - h):int(cy - h) + 2 * h, int(cx - h):int(cx - h) + 2 * h]
            cheeks.append(np.median(rgb2lab(patch.reshape(1, -1, 3) / 255.0)[0], axis=0))
        lum, _, b = np.mean(cheeks, axis=0)
        assert math.isclose(math.degrees(math.atan2(lum - 50, b)), e.ita, abs_tol=0.1), e.id


def test_crop_loads_as_part_of_its_source(fetched):
    for e in (e for e in fetched.images() if e.crop is not None):
        whole = next(o for o in fetched.images() if o.crop is None and o.sha256 == e.sha256)
        x, y, w, h = e.crop
        assert np.array_equal(fetched.load(e.id), fetched.load(whole.id)[y:y + h, x:x + w]), e.id


def test_archive_members_are_read_in_one_pass(tmp_path):
    import io
    import tarfile

    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in (("p/a.jpg", b"aaa"), ("p/b.png", b"bb"), ("p/c.txt", b"c")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert faces._read_members(archive, ["p/b.png", "p/a.jpg"]) == {"p/a.jpg": b"aaa", "p/b.png": b"bb"}
    with pytest.raises(faces.FacesError, match="no member p/zz.jpg"):
        faces._read_members(archive, ["p/a.jpg", "p/zz.jpg"])


def test_bad_checksum_names_the_file(tmp_path, monkeypatch):
    """A download whose SHA-256 differs is refused, and the message names the archive."""
    monkeypatch.setenv(faces.ENV_DIR, str(tmp_path / "cache"))
    impostor = tmp_path / "impostor.whl"
    impostor.write_bytes(b"not the archive")
    monkeypatch.setattr(faces, "_archive_url", lambda archive: impostor.as_uri())
    entry = faces.get("quokka")
    archive = faces.manifest().archives[entry.archive]
    with pytest.raises(faces.ChecksumError, match=archive.filename.replace(".", r"\.")):
        faces.fetch(image_ids=["quokka"])
    assert not (tmp_path / "cache" / "archives" / archive.filename).exists()
    assert not faces.path("quokka").exists()
