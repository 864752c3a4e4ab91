"""Pixel caps for every decoder, set before OpenCV is first imported.

OpenCV reads ``OPENCV_IO_MAX_IMAGE_*`` once, at import time, so this module must be imported
before ``cv2`` anywhere in :mod:`imaging` (``imaging/__init__.py`` does it first). Pillow's
cap is a module attribute; its DecompressionBombWarning (between 1x and 2x the cap) is
turned into an error so no image above the cap is ever decoded.

The cap (50 MP) is above every current phone camera's default output (12-48 MP) and far
below what would exhaust the 600 MB memory budget during analysis.
"""

from __future__ import annotations

import os
import warnings

#: Largest accepted image, in pixels (width * height).
MAX_IMAGE_PIXELS = 50_000_000
#: Largest accepted side, in pixels.
MAX_IMAGE_SIDE = 16_384

os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_WIDTH", str(MAX_IMAGE_SIDE))
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_HEIGHT", str(MAX_IMAGE_SIDE))

from PIL import Image  # noqa: E402

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)
