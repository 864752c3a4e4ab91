"""The stored copy of an upload: shown upright, colour preserved, no private metadata.

Policy (what is kept, what is removed, and why):

- Removed always: EXIF (GPS, body/lens serial numbers, owner name, UserComment,
  ImageDescription, MakerNote - maker notes carry serials and sometimes location), XMP,
  IPTC/Photoshop (APP13), JPEG comments (COM), PNG text chunks (tEXt/zTXt/iTXt) and eXIf,
  MPF secondary images and any bytes after the JPEG end-of-image marker (phone vendors
  append depth maps and metadata trailers there).
- Kept always: the ICC profile (so Display P3 colours stay correct) and the pixels' colour
  values.
- JPEG: metadata segments are stripped LOSSLESSLY, the compressed image data is copied byte
  for byte (no generation loss, and no decode or encode in the upload request). When the EXIF
  orientation is not 1 (phones store portrait photos sideways with orientation 6), a new EXIF
  segment holding ONLY that orientation tag is written, so every reader (our decoder, browsers,
  Pillow's ``exif_transpose``) shows the photo upright. Nothing else of the EXIF survives.
- PNG: chunk-level lossless strip; if an eXIf chunk asks for rotation, the rotated pixels are
  re-encoded as PNG (still lossless).
- HEIC/HEIF and WebP: converted to JPEG quality 95, 4:4:4, with the ICC profile. Browsers on
  the clinicians' dashboard cannot display HEIC, and re-saving a HEIC through pillow-heif keeps
  GPS unless ``exif=None`` is passed - converting avoids both problems. pillow-heif has already
  applied the orientation to the pixels on read.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from imaging.decode import EXIF_ORIENTATIONS, DecodedImage, exif_orientation, open_image
from imaging.errors import ImageError

from PIL import Image  # noqa: E402

#: JPEG quality and chroma subsampling used whenever pixels must be re-encoded.
REENCODE_QUALITY = 95
_SUBSAMPLING_444 = 0

# JPEG segments kept in the lossless path: SOF*, DHT, DQT, DRI, SOS, and of the metadata segments
# only rebuilt JFIF APP0, Adobe APP14 and ICC profile APP2 (see _kept_metadata_segment).
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"sBIT", b"pHYs",
             b"tRNS", b"bKGD", b"cICP"}


@dataclass(frozen=True)
class SanitisedPhoto:
    """The copy of an upload that is stored.

    Attributes
    ----------
    data : bytes
        Encoded image.
    content_type : str
        ``image/jpeg`` or ``image/png``.
    width, height : int
        Pixel size of the upright image.
    format : str
        ``jpeg`` or ``png``.
    reencoded : bool
        False when the compressed pixels were copied losslessly.
    """

    data: bytes
    content_type: str
    width: int
    height: int
    format: str
    reencoded: bool


def sanitise_photo(data: bytes, decoded: DecodedImage | None = None) -> SanitisedPhoto:
    """Produce the stored copy of an upload (see module docstring for the policy).

    Parameters
    ----------
    data : bytes
        The uploaded file, any supported format.
    decoded : DecodedImage, optional
        A :func:`imaging.decode.decode_image` result of ``data`` (at any scale) that the caller
        already has: ``data`` is then known to decode and is not decoded again.

    Returns
    -------
    SanitisedPhoto

    Raises
    ------
    ImageError
        For any refused input (same codes as :func:`imaging.decode.decode_image`).
    """
    from imaging.decode import decode_image

    # Full validation first: never store what analysis would refuse.
    if decoded is None:
        decoded = decode_image(data, min_long_side=256)
    image, fmt = open_image(data)
    width, height = decoded.original_size
    orientation = exif_orientation(image.getexif()) if fmt != "heif" else 1
    icc = image.info.get("icc_profile")
    if fmt == "jpeg":
        return SanitisedPhoto(strip_jpeg_metadata(data, orientation), "image/jpeg", width, height, "jpeg", False)
    if fmt == "png" and orientation == 1:
        return SanitisedPhoto(strip_png_metadata(data), "image/png", width, height, "png", False)
    upright = _upright_pixels(image, orientation)
    buffer = io.BytesIO()
    if fmt == "png":
        upright.save(buffer, format="PNG", icc_profile=icc) if icc else upright.save(buffer, format="PNG")
        return SanitisedPhoto(buffer.getvalue(), "image/png", upright.width, upright.height, "png", True)
    if upright.mode not in ("RGB", "L"):
        upright = upright.convert("RGB")
    kwargs = {"quality": REENCODE_QUALITY, "subsampling": _SUBSAMPLING_444, "comment": b""}
    if icc:
        kwargs["icc_profile"] = icc
    upright.save(buffer, format="JPEG", **kwargs)
    # Pillow may still carry source APP segments over: strip to be certain.
    out = strip_jpeg_metadata(buffer.getvalue())
    return SanitisedPhoto(out, "image/jpeg", upright.width, upright.height, "jpeg", True)


def _upright_pixels(image: Image.Image, orientation: int) -> Image.Image:
    from imaging.decode import _apply_orientation

    image.load()
    if image.mode in ("RGBA", "LA", "PA", "P"):
        image = image.convert("RGBA")
    return _apply_orientation(image, orientation)


def orientation_only_exif(orientation: int) -> bytes:
    """A JPEG APP1 segment whose EXIF holds only the orientation tag (0x0112, SHORT).

    Parameters
    ----------
    orientation : int, 1..8 (EXIF orientation)

    Returns
    -------
    bytes
        ``FF E1 <length> "Exif\\0\\0"`` + a big-endian TIFF header and one IFD with one entry.
    """
    if orientation not in EXIF_ORIENTATIONS:
        raise ValueError(f"EXIF orientation must be 1..8, not {orientation!r}")
    tiff = (b"MM\x00\x2a" + struct.pack(">I", 8)  # big-endian TIFF, IFD0 at offset 8
            + struct.pack(">H", 1)  # one entry
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)  # Orientation, SHORT, count 1
            + struct.pack(">I", 0))  # no next IFD
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def strip_jpeg_metadata(data: bytes, orientation: int = 1) -> bytes:
    """Remove every metadata segment from a JPEG without touching the compressed image.

    Keeps SOI, frame/scan/table segments, a rebuilt APP0 (JFIF fields, no thumbnail), the fixed
    part of APP14 (Adobe) and ICC profile APP2 segments; drops all other APPn (EXIF, XMP, MPF,
    IPTC, maker data, JFXX thumbnails), COM, and anything after the first image's EOI. With
    ``orientation`` other than 1, an EXIF segment holding only that tag
    (:func:`orientation_only_exif`) follows SOI (or a leading JFIF APP0), where readers look.

    Parameters
    ----------
    data : bytes, a baseline or progressive JPEG
    orientation : int, 1..8, EXIF orientation to keep (1: none written)

    Returns
    -------
    bytes

    Raises
    ------
    ImageError
        ``corrupt_image`` / ``truncated_image`` when the marker structure is broken.
    """
    if data[:2] != b"\xff\xd8":
        raise ImageError("corrupt_image", "The photo file is damaged and cannot be read.")
    out = bytearray(b"\xff\xd8")
    exif = orientation_only_exif(orientation) if orientation != 1 else None
    pos = 2
    n = len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise ImageError("corrupt_image", "The photo file is damaged and cannot be read.")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: drop any trailer
            out += b"\xff\xd9"
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > n:
            raise ImageError("truncated_image", "The photo file is incomplete; please upload it again.")
        length = struct.unpack(">H", data[pos : pos + 2])[0]
        end = pos + length
        if length < 2 or end > n:
            raise ImageError("truncated_image", "The photo file is incomplete; please upload it again.")
        segment = data[pos - 2 : end]
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            segment = _kept_metadata_segment(marker, data[pos + 2 : end])
        if segment and exif is not None and not (marker == 0xE0 and len(out) == 2):
            out += exif  # right after SOI, or after a leading JFIF APP0 (which must come first)
            exif = None
        if segment:
            out += segment
        pos = end
        if marker == 0xDA:  # SOS: copy entropy-coded data up to the next real marker
            scan_end = _entropy_end(data, pos)
            out += data[pos:scan_end]
            pos = scan_end
    raise ImageError("truncated_image", "The photo file is incomplete; please upload it again.")


def _kept_metadata_segment(marker: int, payload: bytes) -> bytes | None:
    """The sanitised form of an APPn/COM segment, or None to drop it.

    Only what decoding needs survives, rebuilt from its fixed fields so that no free bytes
    (a JFXX or JFIF thumbnail with its own EXIF, text after a header) are carried along:

    - APP0 JFIF: version, density units and densities; thumbnail 0x0. JFXX: dropped.
    - APP14 Adobe: its 12 fixed bytes (the colour transform flag decoding depends on).
    - APP2 ICC_PROFILE chunks: kept (the colours depend on them).
    - Everything else (EXIF, XMP, MPF, IPTC, maker segments, COM): dropped.
    """
    if marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:
        return b"\xff\xe0\x00\x10" + payload[:12] + b"\x00\x00"
    if marker == 0xEE and payload.startswith(b"Adobe") and len(payload) >= 12:
        return b"\xff\xee\x00\x0e" + payload[:12]
    if marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00"):
        return b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload
    return None


def _entropy_end(data: bytes, pos: int) -> int:
    """Index of the first marker after entropy-coded data (skipping stuffed 0xFF00 and RSTn)."""
    n = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= n:
            return n
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def strip_png_metadata(data: bytes) -> bytes:
    """Keep only image and colour chunks of a PNG (losslessly; see ``_PNG_KEEP``).

    Raises
    ------
    ImageError
        ``corrupt_image`` / ``truncated_image`` for a broken chunk structure or CRC.
    """
    signature = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(signature):
        raise ImageError("corrupt_image", "The photo file is damaged and cannot be read.")
    out = bytearray(signature)
    pos = len(signature)
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ImageError("truncated_image", "The photo file is incomplete; please upload it again.")
        body = data[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length : end])[0]
        if zlib.crc32(kind + body) != crc:
            raise ImageError("corrupt_image", "The photo file is damaged and cannot be read.")
        if kind in _PNG_KEEP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    raise ImageError("truncated_image", "The photo file is incomplete; please upload it again.")
