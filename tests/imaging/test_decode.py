"""Decoding: format sniffing, caps, orientation once, ICC, bit depth, refusals."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from imaging.decode import decode_image, open_image, sniff_format
from imaging.errors import ImageError
from imaging.testing import synthetic
from tests.hardening.hostile_files import (
    animated_png,
    cmyk_jpeg,
    jpeg_segment,
    png_bomb_header,
    with_segments_after_soi,
)


@pytest.fixture(scope="module")
def small_rgb(medium_photo):
    """A 300x400 upright photo with a marked top-left corner (to check orientation)."""
    rgb = cv2.resize(medium_photo.rgb, (300, 400), interpolation=cv2.INTER_AREA).copy()
    rgb[:40, :30] = (255, 0, 0)
    return rgb


def _assert_upright(decoded_rgb, expected):
    assert decoded_rgb.shape == expected.shape
    assert np.abs(decoded_rgb.astype(int) - expected.astype(int)).mean() < 4.0
    assert decoded_rgb[20, 15, 0] > 200 and decoded_rgb[20, 15, 2] < 60  # red corner still top-left


@pytest.mark.parametrize("orientation", [None, 1, 3, 6, 8])
def test_jpeg_orientation_is_applied_exactly_once(small_rgb, orientation):
    decoded = decode_image(synthetic.to_jpeg(small_rgb, quality=95, orientation=orientation))
    _assert_upright(decoded.rgb, small_rgb)
    assert decoded.format == "jpeg"
    assert decoded.original_size == (300, 400)


@pytest.mark.parametrize("subsampling, progressive", [(2, False), (0, False), (2, True)])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_full_resolution_jpeg_pixels_equal_pillows(small_rgb, subsampling, progressive, orientation):
    # The EXIF rotation is applied to the array with OpenCV (faster than Pillow's transpose);
    # measurements must not depend on that, so the pixels must be exactly Pillow's.
    from PIL import ImageOps

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(small_rgb).save(buffer, "JPEG", quality=90, subsampling=subsampling,
                                    progressive=progressive, exif=exif)
    data = buffer.getvalue()
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    decoded = decode_image(data)
    assert decoded.rgb.shape == reference.shape
    assert np.array_equal(decoded.rgb, reference)


@pytest.mark.parametrize("min_long_side", [None, 1000, 256])
def test_marker_injected_into_the_scan_is_refused_at_every_scale(medium_photo, min_long_side):
    # A stray table marker in the middle of the compressed data: libjpeg stops there. A
    # decoder that fills the rest with grey (OpenCV does) would hand half a face to analysis.
    data = bytearray(synthetic.to_jpeg(medium_photo.rgb, quality=90))
    middle = data.index(b"\xff\xda") + (len(data) - data.index(b"\xff\xda")) // 2
    data[middle:middle + 2] = b"\xff\xc4"
    with pytest.raises(ImageError) as info:
        decode_image(bytes(data), min_long_side=min_long_side)
    assert info.value.code == "corrupt_image"


@pytest.mark.parametrize("entry", [
    (2, 2, b"x\x00\x00\x00"),  # ASCII "x"
    (5, 1, b"\x00\x00\x00\x1a"),  # RATIONAL, value at offset 26
    (3, 1, b"\x00\x63\x00\x00"),  # SHORT 99: out of range
], ids=["text", "rational", "out of range"])
def test_malformed_orientation_tag_is_ignored_not_an_error(small_rgb, entry):
    import struct

    from imaging.sanitise import sanitise_photo

    kind, count, value = entry
    tiff = b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + struct.pack(">HHI", 0x0112, kind, count) + value + b"\x00" * 4
    payload = b"Exif\x00\x00" + tiff
    plain = synthetic.to_jpeg(small_rgb, quality=90, orientation=None, with_private_metadata=False)
    data = with_segments_after_soi(plain, jpeg_segment(0xE1, payload))
    assert np.array_equal(decode_image(data).rgb, decode_image(plain).rgb)  # shown as stored
    assert decode_image(data, min_long_side=100).original_size == (300, 400)
    sanitised = sanitise_photo(data)
    assert (sanitised.width, sanitised.height) == (300, 400) and b"Exif" not in sanitised.data


def test_jpeg_with_secondary_images_decodes_its_primary_and_is_stored_alone(small_rgb):
    # Ultra HDR / depth-map phone JPEGs carry an MPF index and further images after the first.
    from imaging.sanitise import sanitise_photo

    gain_map = Image.fromarray(small_rgb[::2, ::2, ::-1].copy())
    buffer = io.BytesIO()
    Image.fromarray(small_rgb).save(buffer, "MPO", save_all=True, append_images=[gain_map], quality=95)
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).n_frames == 2
    decoded = decode_image(data)
    assert decoded.format == "jpeg" and decoded.rgb.shape == small_rgb.shape
    assert np.abs(decoded.rgb.astype(int) - small_rgb.astype(int)).mean() < 3.0
    stored = sanitise_photo(data)
    with Image.open(io.BytesIO(stored.data)) as image:
        assert getattr(image, "n_frames", 1) == 1 and b"MPF\x00" not in stored.data
    assert np.array_equal(decode_image(stored.data).rgb, decoded.rgb)


def test_png_webp_heic_decode_upright(small_rgb):
    for data, fmt in [(synthetic.to_png(small_rgb, orientation=6), "png"),
                      (synthetic.to_webp(small_rgb, quality=95, orientation=8), "webp"),
                      (synthetic.to_heic(small_rgb, quality=90, orientation=6), "heif")]:
        decoded = decode_image(data)
        assert decoded.format == fmt
        _assert_upright(decoded.rgb, small_rgb)


def test_exif_capture_time_and_camera_but_no_serial(small_rgb):
    decoded = decode_image(synthetic.to_jpeg(small_rgb))
    assert decoded.captured_at == dt.datetime(2026, 11, 2, 9, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert (decoded.camera_make, decoded.camera_model) == ("SkinTrackCam", "Model T")
    assert synthetic.SECRET_SERIAL not in repr(decoded.__dict__.keys()) and not hasattr(decoded, "serial")
    naive = decode_image(synthetic.to_jpeg(small_rgb, captured_at=dt.datetime(2026, 1, 2, 3, 4, 5)))
    assert naive.captured_at == dt.datetime(2026, 1, 2, 3, 4, 5) and naive.captured_at.tzinfo is None
    assert decode_image(synthetic.to_png(small_rgb)).captured_at is None


def test_reduced_decode_of_phone_jpeg_keeps_orientation_and_reports_scale(phone_photo, phone_jpeg):
    decoded = decode_image(phone_jpeg, min_long_side=1000)
    assert decoded.rgb.shape == (1008, 756, 3)
    assert decoded.scale == pytest.approx(0.25)
    assert decoded.original_size == (3024, 4032)
    expected = cv2.resize(phone_photo.rgb, (756, 1008), interpolation=cv2.INTER_AREA)
    assert np.abs(decoded.rgb.astype(int) - expected.astype(int)).mean() < 4.0


def test_reduced_decode_of_png_area_downscales(small_rgb):
    decoded = decode_image(synthetic.to_png(small_rgb), min_long_side=200)
    assert decoded.rgb.shape == (200, 150, 3) and decoded.scale == pytest.approx(0.5)


def test_display_p3_profile_is_converted_to_srgb():
    # Saturated sRGB patches: P3 code values differ a lot from sRGB ones for these.
    patches = np.zeros((64, 96, 3), np.uint8)
    patches[:, :32] = (220, 30, 30)
    patches[:, 32:64] = (30, 200, 40)
    patches[:, 64:] = (200, 180, 90)
    p3 = synthetic.p3_from_srgb(patches)
    assert np.abs(p3.astype(int) - patches.astype(int)).max() > 15  # the test is not vacuous
    decoded = decode_image(synthetic.to_png(p3, icc_profile=synthetic.display_p3_icc_profile()))
    assert decoded.icc_converted is True
    assert np.abs(decoded.rgb.astype(int) - patches.astype(int)).max() <= 3
    assert decode_image(synthetic.to_png(patches)).icc_converted is False


def test_sixteen_bit_png_is_scaled_to_eight_bits(small_rgb):
    decoded = decode_image(synthetic.to_png(small_rgb, bits=16))
    assert decoded.rgb.dtype == np.uint8
    assert np.abs(decoded.rgb.astype(int) - small_rgb.astype(int)).max() <= 1


def test_alpha_is_composited_over_neutral_grey(small_rgb):
    decoded = decode_image(synthetic.to_png(small_rgb, alpha=True))
    assert decoded.rgb.shape == small_rgb.shape
    assert (decoded.rgb[:30, :25] == 128).all()  # the transparent corner
    assert np.array_equal(decoded.rgb[200:, 200:], small_rgb[200:, 200:])


def _refused(data: bytes) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.message
    return info.value.code


def test_refusals_have_stable_codes(small_rgb):
    jpeg = synthetic.to_jpeg(small_rgb, orientation=None, with_private_metadata=False)
    grey_png = io.BytesIO()
    Image.fromarray(small_rgb[..., 1]).save(grey_png, format="PNG")
    grey_as_rgb = synthetic.to_png(np.repeat(small_rgb[..., 1:2], 3, axis=2))
    assert _refused(b"") == "empty_image"
    assert _refused(b"GIF89a" + b"\x00" * 100) == "unsupported_format"
    assert _refused(b"%PDF-1.7 not an image") == "unsupported_format"
    assert _refused(jpeg[: len(jpeg) // 2]) == "truncated_image"
    assert _refused(synthetic.to_png(small_rgb)[:5000]) in ("truncated_image", "corrupt_image")
    assert _refused(jpeg[:600] + bytes(range(256)) * 20) in ("corrupt_image", "truncated_image")
    assert _refused(grey_png.getvalue()) == "greyscale_image"
    assert _refused(grey_as_rgb) == "greyscale_image"
    assert _refused(cmyk_jpeg(small_rgb)) == "unsupported_colour"
    assert _refused(animated_png(small_rgb)) == "animated_image"
    for damaged in (synthetic.to_heic(small_rgb[:64, :64], orientation=None), synthetic.to_webp(small_rgb)):
        assert _refused(damaged[: len(damaged) // 2]) in ("truncated_image", "corrupt_image")


def test_png_bomb_is_refused_from_its_header_without_allocating(monkeypatch, small_rgb):
    bomb = png_bomb_header(50_000, 50_000)
    assert len(bomb) < 2000
    # Refused by the header-only step...
    with pytest.raises(ImageError) as info:
        open_image(bomb)
    assert info.value.code == "too_many_pixels"
    # ...so decode_image never starts Pillow's pixel decoder (7.5 GB of pixels are never
    # allocated). The real load is wrapped, only to record that it was not called.
    loads = []
    real_load = ImageFile.ImageFile.load

    def recording_load(image):
        loads.append(image.size)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    with pytest.raises(ImageError) as info:
        decode_image(bomb)
    assert info.value.code == "too_many_pixels"
    assert loads == []
    decode_image(synthetic.to_png(small_rgb))  # the recorder does see a real decode
    assert set(loads) == {small_rgb.shape[1::-1]}


def test_opencv_pixel_cap_is_set_before_cv2_import():
    # 10,000 x 6,000 = 60 MP: under OpenCV's default cap (2^30), over ours (50 MP). Run in a
    # fresh interpreter so cv2 is imported for the first time through imaging.
    code = (
        "import imaging.decode, cv2, numpy as np\n"
        "from tests.hardening.hostile_files import png_bomb_header\n"
        "try:\n"
        "    cv2.imdecode(np.frombuffer(png_bomb_header(10_000, 6_000), np.uint8), cv2.IMREAD_COLOR)\n"
        "    print('decoded')\n"
        "except cv2.error as exc:\n"
        "    print('refused' if 'CV_IO_MAX_IMAGE_PIXELS' in str(exc) else exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "refused"
    with pytest.raises(ImageError) as info:
        decode_image(png_bomb_header(10_000, 6_000))
    assert info.value.code == "too_many_pixels"


def test_sniffing_ignores_names_and_uses_magic_numbers(small_rgb):
    assert sniff_format(synthetic.to_jpeg(small_rgb)) == "jpeg"
    assert sniff_format(synthetic.to_png(small_rgb)) == "png"
    assert sniff_format(synthetic.to_webp(small_rgb)) == "webp"
    assert sniff_format(synthetic.to_heic(small_rgb[:64, :64], orientation=None)) == "heif"


def test_multi_image_heic_decodes_its_primary_image():
    first = np.zeros((64, 64, 3), np.uint8)
    first[...] = (200, 60, 40)
    second = np.zeros((64, 64, 3), np.uint8)
    second[...] = (0, 90, 200)
    buffer = io.BytesIO()
    Image.fromarray(first).save(buffer, format="HEIF", save_all=True, append_images=[Image.fromarray(second)], quality=90)
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 2
    decoded = decode_image(buffer.getvalue())
    assert np.abs(decoded.rgb[32, 32].astype(int) - (200, 60, 40)).max() < 8
