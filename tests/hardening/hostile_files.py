"""Builders of hostile and broken image files: what a careless or malicious client may upload.

Used by the decoder and sanitiser tests (``tests/imaging``), the upload tests (``tests/backend``)
and the bad-input battery (``tests/hardening/test_bad_input.py``). Phone-like valid photos come
from the imaging test kit, :mod:`imaging.testing.synthetic`; everything here is deterministic.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data and CRC-32 (valid, whatever the data)."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_bomb_header(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def corrupt_png() -> bytes:
    """A PNG whose IDAT data is garbage (valid signature, header and CRCs)."""
    header = struct.pack(">IIBBBBB", 600, 800, 8, 2, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", bytes(range(256)) * 40) + png_chunk(b"IEND", b""))


def animated_png(rgb: np.ndarray, frames: int = 2) -> bytes:
    """An animated PNG (APNG) of uint8 HxWx3 ``rgb`` with ``frames`` frames (to test refusal)."""
    images = [Image.fromarray(np.roll(rgb, i * 7, axis=1)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PNG", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def huge_side_png() -> bytes:
    """A real (solid) PNG of 20,000 x 10 px: under the pixel cap, over the side cap."""
    buffer = io.BytesIO()
    Image.new("RGB", (20_000, 10), (200, 150, 130)).save(buffer, format="PNG")
    return buffer.getvalue()


def cmyk_jpeg(rgb: np.ndarray) -> bytes:
    """A CMYK JPEG of uint8 HxWx3 ``rgb`` (a print workflow's file, not a phone photo)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


def html_named_jpeg() -> bytes:
    """An HTML page with a script, as if it were a photo."""
    return b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def svg_named_jpeg() -> bytes:
    """An SVG image with a script, as if it were a photo."""
    return (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="600" height="800">'
            b'<script>alert(1)</script><rect width="600" height="800" fill="red"/></svg>')


def gif_html_polyglot() -> bytes:
    """Starts like a GIF, is an HTML page: sniffed as GIF (not accepted), never stored."""
    return b"GIF89a/*\x00\x00\x00\x00*/=1;<script>alert(1)</script>" + b"\x00" * 64


def random_bytes() -> bytes:
    """50,000 random bytes (seeded)."""
    return np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes()


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    """One JPEG marker segment ``FF marker``, big-endian length (payload + 2), payload."""
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def with_segments_after_soi(jpeg: bytes, segments: bytes) -> bytes:
    """``jpeg`` with ``segments`` (from :func:`jpeg_segment`) inserted right after its SOI marker."""
    return jpeg[:2] + segments + jpeg[2:]
