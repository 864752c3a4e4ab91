"""Area downscaling to a long side and PNG encoding (imaging.raster)."""

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from imaging.raster import downscale_long_side, encode_png


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((2016, 1200, 3)) * 255).astype(np.uint8)


def test_sizes_and_scales_of_each_resampling(image):
    small, scale = downscale_long_side(image, 1024)
    assert small.shape == (1024, 610, 3) and scale == 610 / 1200
    exact, factor = downscale_long_side(image, 1024, resampling="exact")
    assert exact.shape == (1024, 610, 3) and factor == 1024 / 2016
    integer, scale = downscale_long_side(image, 1024, resampling="integer")
    assert integer.shape == (1008, 600, 3) and scale == 0.5


def test_each_resampling_is_opencv_area_averaging(image):
    assert np.array_equal(downscale_long_side(image, 1024)[0],
                          cv2.resize(image, (610, 1024), interpolation=cv2.INTER_AREA))
    assert np.array_equal(downscale_long_side(image, 1024, resampling="exact")[0],
                          cv2.resize(image, None, fx=1024 / 2016, fy=1024 / 2016, interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("resampling", ["size", "exact", "integer"])
def test_a_small_image_is_returned_unchanged(image, resampling):
    out, scale = downscale_long_side(image, 4000, resampling=resampling)
    assert out is image and scale == 1.0


def test_unknown_resampling_is_refused(image):
    with pytest.raises(ValueError):
        downscale_long_side(image, 100, resampling="bilinear")


def test_png_has_the_pixels_and_no_metadata_chunks(image):
    data = encode_png(image[:50, :40])
    chunks, offset = [], 8
    while offset < len(data):
        length = struct.unpack(">I", data[offset:offset + 4])[0]
        chunks.append(data[offset + 4:offset + 8])
        offset += 12 + length
    assert chunks == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == "RGB" and not decoded.info
        assert np.array_equal(np.asarray(decoded), image[:50, :40])
