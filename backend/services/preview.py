"""Preview check of a camera frame for the patient app's live hints (nothing is stored)."""

from __future__ import annotations

from typing import Any

from backend.services.photos import refuse_image
from imaging.errors import ImageError

#: Largest preview frame accepted, bytes (a 640x480 JPEG is ~30-60 kB).
MAX_PREVIEW_BYTES = 512 * 1024


def check_preview_frame(data: bytes) -> dict[str, Any]:
    """Decode a small frame and answer face box, pose, exposure and light hints.

    Raises
    ------
    backend.errors.ImageRefused, backend.errors.UnsupportedImage
        Bytes the decoder refuses (as for photo uploads).
    """
    from imaging.decode import decode_image
    from imaging.preview import PREVIEW_LONG_SIDE, preview_check

    try:
        decoded = decode_image(data, min_long_side=PREVIEW_LONG_SIDE)
    except ImageError as error:
        refuse_image(error)
    return preview_check(decoded.rgb).to_dict()
