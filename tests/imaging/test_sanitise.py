"""Sanitising: the stored copy has upright pixels, its colour profile, and no private metadata."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from imaging.decode import decode_image
from imaging.errors import ImageError
from imaging.sanitise import orientation_only_exif, sanitise_photo, strip_jpeg_metadata
from imaging.testing import synthetic
from tests.hardening.hostile_files import jpeg_segment, with_segments_after_soi

SECRETS = (synthetic.SECRET_SERIAL.encode(), synthetic.SECRET_COMMENT.encode(), b"Jane Roe", b"SN-SKINTRACK")


@pytest.fixture(scope="module")
def small_rgb(medium_photo):
    return cv2.resize(medium_photo.rgb, (300, 400), interpolation=cv2.INTER_AREA)


def _assert_clean(data: bytes, orientation: int | None = None) -> Image.Image:
    """No secret strings anywhere in the bytes, and no EXIF/GPS/comment/XMP when parsed; with
    ``orientation``, an EXIF holding exactly that one tag."""
    for secret in SECRETS:
        assert secret not in data
    assert b"http://ns.adobe.com/xap" not in data and b"xmpmeta" not in data
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    if orientation is None:
        assert b"Exif\x00\x00" not in data and "exif" not in image.info
    else:
        assert data.count(b"Exif\x00\x00") == 1 and dict(exif) == {0x0112: orientation}
        assert not exif.get_ifd(0x8769) and not exif.get_ifd(0x8825)  # no Exif or GPS sub-IFD
        assert image.info["exif"] == orientation_only_exif(orientation)[4:]
    assert 0x8825 not in exif and not exif.get_ifd(0x8825)  # GPS IFD
    assert 0xA431 not in exif.get_ifd(0x8769) and 0x927C not in exif.get_ifd(0x8769)  # serial, MakerNote
    assert 0x010E not in exif and 0x9286 not in exif.get_ifd(0x8769)  # ImageDescription, UserComment
    assert not image.info.get("comment") and "xmp" not in image.info
    assert not any(k.lower() in ("comment", "description") for k in getattr(image, "text", {}) or {})
    return image


def test_input_really_contains_the_secrets(small_rgb):
    data = synthetic.to_jpeg(small_rgb)
    for secret in SECRETS:
        assert secret in data
    gps = Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    assert gps[2] == synthetic.SECRET_GPS


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_jpeg_is_stripped_losslessly_keeping_only_its_orientation(small_rgb, orientation):
    data = synthetic.to_jpeg(small_rgb, quality=95, orientation=orientation)
    out = sanitise_photo(data)
    assert (out.format, out.content_type, out.width, out.height, out.reencoded) == ("jpeg", "image/jpeg", 300, 400, False)
    image = _assert_clean(out.data, orientation)
    assert image.size == ((400, 300) if orientation in (6, 8) else (300, 400))  # stored as the phone stored it
    # The compressed scan was copied: the same pixels as the upload, shown upright.
    assert np.array_equal(decode_image(out.data).rgb, decode_image(data).rgb)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(out.data))).convert("RGB"))
    assert np.abs(upright.astype(int) - small_rgb.astype(int)).mean() < 3.0


@pytest.mark.parametrize("orientation", [1, 6])
def test_header_segments_are_rebuilt_without_thumbnails_or_free_text(small_rgb, orientation):
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.34)}
    exif[0x010E] = "Jane Roe home"
    thumbnail = io.BytesIO()
    Image.fromarray(small_rgb[::8, ::8].copy()).save(thumbnail, "JPEG", exif=exif)
    upload = synthetic.to_jpeg(small_rgb, quality=90, orientation=orientation)
    jfif = b"JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x02\x01" + b"\x10" * 6 + b"Jane Roe"  # 2x1 thumbnail + text
    hostile = (jpeg_segment(0xE0, jfif) + jpeg_segment(0xE0, b"JFXX\x00\x10" + thumbnail.getvalue())
               + jpeg_segment(0xE0, b"OWNER: Jane Roe, 12 Acacia Ave\x00")
               + jpeg_segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + b"Jane Roe serial SN-123"))
    data = with_segments_after_soi(upload, hostile)
    out = sanitise_photo(data)
    assert out.reencoded is False and b"Jane Roe" not in out.data and thumbnail.getvalue() not in out.data
    assert out.data.count(b"\xff\xd8") == 1  # no embedded thumbnail JPEG at all
    image = _assert_clean(out.data, None if orientation == 1 else orientation)
    assert "jfif_version" in image.info and image.info["adobe_transform"] == 1
    assert out.data[2:4] == b"\xff\xe0"  # JFIF APP0 stays first; the orientation EXIF follows it
    assert np.array_equal(decode_image(out.data).rgb, decode_image(upload).rgb)


def test_sanitise_reuses_the_callers_decode(small_rgb, monkeypatch):
    import imaging.decode

    data = synthetic.to_jpeg(small_rgb, orientation=6)
    expected = sanitise_photo(data)
    decoded = decode_image(data, min_long_side=256)
    monkeypatch.setattr(imaging.decode, "decode_image", lambda *a, **k: pytest.fail("decoded again"))
    assert sanitise_photo(data, decoded) == expected


def test_orientation_only_exif_is_refused_for_unknown_values():
    with pytest.raises(ValueError):
        orientation_only_exif(9)


def test_upright_jpeg_is_stripped_losslessly(small_rgb):
    data = synthetic.to_jpeg(small_rgb, orientation=1)
    out = sanitise_photo(data)
    assert out.reencoded is False
    _assert_clean(out.data)
    # Identical pixels: the compressed scan was copied, not re-encoded.
    assert np.array_equal(decode_image(out.data).rgb, decode_image(data).rgb)


def test_icc_profile_is_kept(small_rgb):
    icc = synthetic.display_p3_icc_profile()
    for data in (synthetic.to_jpeg(small_rgb, orientation=1, icc_profile=icc),
                 synthetic.to_jpeg(small_rgb, orientation=6, icc_profile=icc),
                 synthetic.to_png(small_rgb, icc_profile=icc, with_private_metadata=True)):
        out = sanitise_photo(data)
        assert Image.open(io.BytesIO(out.data)).info.get("icc_profile") == icc


def test_png_text_and_exif_chunks_are_removed_pixels_unchanged(small_rgb):
    data = synthetic.to_png(small_rgb, with_private_metadata=True)
    assert b"tEXt" in data or b"iTXt" in data
    out = sanitise_photo(data)
    assert out.format == "png" and out.reencoded is False
    _assert_clean(out.data)
    assert b"tEXt" not in out.data and b"eXIf" not in out.data
    assert np.array_equal(decode_image(out.data).rgb, small_rgb)


def test_rotated_png_stays_lossless(small_rgb):
    out = sanitise_photo(synthetic.to_png(small_rgb, orientation=6, with_private_metadata=True))
    assert (out.format, out.width, out.height, out.reencoded) == ("png", 300, 400, True)
    _assert_clean(out.data)
    assert np.array_equal(decode_image(out.data).rgb, small_rgb)


def test_heic_and_webp_become_clean_jpeg(small_rgb):
    heic = synthetic.to_heic(cv2.resize(small_rgb, (120, 160), interpolation=cv2.INTER_AREA), orientation=6)
    assert b"Jane Roe" in heic
    for data, size in ((heic, (120, 160)), (synthetic.to_webp(small_rgb, orientation=6), (300, 400))):
        out = sanitise_photo(data)
        assert (out.format, (out.width, out.height)) == ("jpeg", size)
        _assert_clean(out.data)


def test_trailer_after_end_of_image_is_dropped(small_rgb):
    data = synthetic.to_jpeg(small_rgb, orientation=1) + b"SEFT" + synthetic.SECRET_SERIAL.encode()
    out = strip_jpeg_metadata(data)
    assert out.endswith(b"\xff\xd9") and synthetic.SECRET_SERIAL.encode() not in out


def test_refused_inputs_raise_image_error(small_rgb):
    with pytest.raises(ImageError) as info:
        sanitise_photo(synthetic.to_jpeg(small_rgb)[:3000])
    assert info.value.code == "truncated_image"
    with pytest.raises(ImageError):
        sanitise_photo(b"<html>not a photo</html>")
