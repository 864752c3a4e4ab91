"""Errors raised by the imaging library for inputs it refuses.

The API layer maps :class:`ImageError` to an RFC 9457 problem (HTTP 4xx) using ``code``.
Stable codes (never rename, clients may branch on them):

``empty_image``          no bytes, or an image with zero width/height.
``unsupported_format``   magic number is not JPEG, PNG, WebP or HEIC/HEIF.
``truncated_image``      the file ends before the image data does.
``corrupt_image``        the decoder rejected the data for another reason.
``too_many_pixels``      declared dimensions exceed the pixel cap (decompression bomb guard).
``animated_image``       more than one frame (animated PNG/WebP, multi-frame files).
``greyscale_image``      no colour information, so skin colour cannot be measured.
``unsupported_colour``   a colour mode that cannot be converted to sRGB reliably.
"""

from __future__ import annotations

ERROR_CODES = (
    "empty_image",
    "unsupported_format",
    "truncated_image",
    "corrupt_image",
    "too_many_pixels",
    "animated_image",
    "greyscale_image",
    "unsupported_colour",
)


class ImageError(ValueError):
    """An uploaded image was refused.

    Parameters
    ----------
    code : str
        Machine-readable reason, one of :data:`ERROR_CODES`.
    message : str
        One sentence for a person (the patient or the clinician); contains no pixel data
        or metadata values from the image.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown image error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ImageError({self.code!r}, {self.message!r})"
