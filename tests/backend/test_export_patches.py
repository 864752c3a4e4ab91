"""Region patches in the study export: consent decides, no eyes, no metadata, checksummed."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import uuid
import zipfile
from types import SimpleNamespace

import numpy as np
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.pool import NullPool

from backend.extensions import db
from backend.migrations import downgrade, upgrade
from backend.models.photos import Photo
from backend.storage import current_storage
from imaging.patches import NEUTRAL_GREY, PATCH_REGIONS, photo_region_patches
from imaging.regions import LOWER_FACE_STRETCH_LIMITS, TEMPLATE_MOUTH_Y, LowerFace, region_template
from tests.backend.export_helpers import (
    build_study_world,
    codes_of,
    export_zip,
    read_csv,
    set_consent,
    set_privacy_floor,
)
from tests.backend.photo_helpers import phone_jpeg

#: Canonical eye line (y, px) and the eye zones' vertical semi-axis (imaging.regions): the eyes
#: occupy y in [342, 426] of the canonical frame.
EYE_LINE_Y = 384
EYE_HALF_HEIGHT = 42
#: PNG chunks a pixels-only image needs; anything else (eXIf, tEXt, iTXt, zTXt, tIME, iCCP) is metadata.
PIXEL_CHUNKS = {b"IHDR", b"IDAT", b"IEND"}


def png_chunk_types(data: bytes) -> list[bytes]:
    """Chunk types of a PNG file in order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        types.append(data[offset + 4:offset + 8])
        offset += 12 + length
    return types


def store_real_photos(app: Flask, patient_id: uuid.UUID) -> int:
    """Give every photo of the patient the bytes of a real phone JPEG (EXIF with GPS, orientation)."""
    with app.app_context():
        photos = list(db.session.scalars(select(Photo).where(Photo.patient_id == patient_id)))
        for photo in photos:
            key = f"{photo.prefix}original.jpg"
            current_storage().put(key, phone_jpeg(), "image/jpeg")
            photo.storage_key = key
        db.session.commit()
        return len(photos)


def patch_world(app: Flask, client: FlaskClient) -> SimpleNamespace:
    """The export test's study; three consenting patients have real photos, two of them patch consent."""
    w = build_study_world(app, client)
    set_privacy_floor(client, w.study_id, w.headers["admin_a"], min_k=1)
    w.with_photos = w.consenting[:3]
    for patient_id in w.with_photos:
        assert store_real_photos(app, patient_id) == 2  # baseline and 1_month
    w.patch_consenting = w.with_photos[:2]
    for patient_id in w.patch_consenting:
        set_consent(app, w.patients[patient_id], "grant", w.clinician_a, scope="research_region_patches")
    return w


def patch_names(archive: zipfile.ZipFile) -> set[str]:
    return {name for name in archive.namelist() if name.startswith("patches/")}


def test_patches_only_for_patch_consent_skin_only_and_without_metadata(app: Flask, client: FlaskClient) -> None:
    w = patch_world(app, client)
    default = export_zip(client, w, k=1)
    assert patch_names(default) == set()
    assert json.loads(default.read("manifest.json"))["region_patches"] is None

    archive = export_zip(client, w, k=1, region_patches=True)
    codes = {pid: row.code for pid, row in codes_of(app, list(w.patients)).items()}
    released = {row["participant_id"] for row in read_csv(archive, "participants.csv")}
    assert {codes[p] for p in w.with_photos} <= released
    expected = {f"patches/{codes[p]}/{milestone}_{region}.png"
                for p in w.patch_consenting for milestone in ("baseline", "1_month") for region in PATCH_REGIONS}
    assert patch_names(archive) == expected

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["parameters"]["region_patches"] is True
    assert manifest["region_patches"] == {
        "regions": list(PATCH_REGIONS), "files": len(expected), "participants_with_patches": 2,
        "participants_skipped_for_consent": len(released) - 2, "photos_without_face": 0, "photos_undecodable": 0}
    for name in expected:
        data = archive.read(name)
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert not any(code in json.dumps(manifest["region_patches"]) for code in released)

    # The same patches computed from the photo give the canonical boxes: skin below the eyes
    # (cheeks) or above them (forehead), within the region template, grey outside the mask.
    reference = photo_region_patches(phone_jpeg())
    assert set(reference) == set(PATCH_REGIONS)
    for name in expected:
        region = next(r for r in PATCH_REGIONS if name.endswith(f"_{r}.png"))
        patch = reference[region]
        data = archive.read(name)
        assert data == patch.png
        assert set(png_chunk_types(data)) <= PIXEL_CHUNKS
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.mode == "RGB" and not image.getexif() and not image.info
        pixels = np.asarray(image)
        x0, y0, x1, y1 = patch.box
        assert pixels.shape == (y1 - y0, x1 - x0, 3)
        # The template, stretched below the eye line to the face's mouth (within the limits).
        shortest, longest = (region_template(region, LowerFace.at(EYE_LINE_Y + s * (TEMPLATE_MOUTH_Y - EYE_LINE_Y)))
                             for s in LOWER_FACE_STRETCH_LIMITS)
        assert shortest[:, 0].min() - 1 <= x0 and x1 <= shortest[:, 0].max() + 2
        assert shortest[:, 1].min() - 1 <= y0 and y1 <= longest[:, 1].max() + 2
        if region == "forehead":
            assert y1 <= EYE_LINE_Y - EYE_HALF_HEIGHT
        else:
            assert y0 >= EYE_LINE_Y + EYE_HALF_HEIGHT
        grey = np.all(pixels == NEUTRAL_GREY, axis=2)
        assert 0.05 < grey.mean() < 0.6  # the polygon's corners are grey, most of the crop is skin
        assert pixels[~grey].std() > 1.0  # real skin texture, not a flat fill


def test_withdrawing_patch_consent_removes_patches_from_the_next_export(app: Flask, client: FlaskClient) -> None:
    w = patch_world(app, client)
    first = export_zip(client, w, k=1, region_patches=True)
    codes = {pid: row.code for pid, row in codes_of(app, w.patch_consenting).items()}
    kept, withdrawn = w.patch_consenting
    assert {name.split("/")[1] for name in patch_names(first)} == {codes[kept], codes[withdrawn]}

    set_consent(app, w.patients[withdrawn], "withdraw", w.clinician_a, scope="research_region_patches")
    second = export_zip(client, w, k=1, region_patches=True)
    assert {name.split("/")[1] for name in patch_names(second)} == {codes[kept]}
    # Still a participant (research consent stands): only the patches go.
    assert codes[withdrawn] in {row["participant_id"] for row in read_csv(second, "participants.csv")}
    manifest = json.loads(second.read("manifest.json"))
    assert manifest["region_patches"]["participants_with_patches"] == 1
    assert manifest["region_patches"]["files"] == 2 * len(PATCH_REGIONS)


def test_region_patches_option_must_be_a_boolean(app: Flask, client: FlaskClient) -> None:
    w = build_study_world(app, client)
    response = client.post(f"/api/v1/studies/{w.study_id}/exports", headers=w.headers["researcher"],
                           json={"region_patches": "everything"})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "region_patches" in response.get_json()["errors"]


def scope_check_text(url: str, options: dict) -> str:
    """SQL text of the consent_events scope CHECK constraint as the database reports it."""
    engine = create_engine(url, poolclass=NullPool, **options)
    try:
        with engine.connect() as conn:
            checks = inspect(conn).get_check_constraints("consent_events")
    finally:
        engine.dispose()
    return next(c["sqltext"] for c in checks if c["name"] == "ck_consent_events_scope_known")


def test_migration_0006_widens_and_restores_the_scope_check(empty_database) -> None:
    url, options = empty_database
    upgrade(url, options, "0006_region_patch_consent")
    assert "research_region_patches" in scope_check_text(url, options)
    downgrade(url, options, "0005_studies")
    text = scope_check_text(url, options)
    assert "research" in text and "research_region_patches" not in text
