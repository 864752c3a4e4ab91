"""Detail of a face at its own resolution: blur and fine skin texture.

Both are measured on the photo's own pixels around the face (not in the canonical frame,
which would upsample a small face and invent blur), area-downscaled when the IOD exceeds
:data:`DETAIL_IOD_PX`, and expressed relative to the face's size, so a value means the same
at any photo resolution. Used by the quality gate (blur) and by face detection (the fine
texture a follow-up is compared with, for the smoothing-filter check).
"""

from __future__ import annotations

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)

import cv2  # noqa: E402

#: Face width in IODs (the face set's face-box convention: cheek to cheek ~2.2 IOD, ~140 mm).
FACE_WIDTH_IOD = 2.2
#: Blur and texture are measured on the photo's pixels, area-downscaled when the IOD is larger
#: than this (px): finer detail is not needed and costs time.
DETAIL_IOD_PX = 128.0
#: Gaussian blur (px) a sharp photo shows at its own pixel scale (demosaicing, optics, JPEG):
#: subtracted in quadrature so the blur check judges blur added beyond the pixel grid.
PIXEL_BLUR_PX = 0.6


def face_detail_crop(rgb: np.ndarray, geometry) -> tuple[np.ndarray, float, np.ndarray]:
    """The face (brows to chin, cheek to cheek) as float32 grey at the photo's own resolution,
    area-downscaled when the IOD exceeds :data:`DETAIL_IOD_PX`.

    Returns
    -------
    (grey, iod_px, eyes)
        Grey crop (float32, 0..255), the IOD in the crop's px and the eye centres (2x2: right,
        left) in the crop's px.
    """
    iod = max(1.0, geometry.iod)
    mx, my = geometry.eye_midpoint
    h, w = rgb.shape[:2]
    x0, x1 = int(max(0, mx - 1.2 * iod)), int(min(w, mx + 1.2 * iod))
    y0, y1 = int(max(0, my - 0.9 * iod)), int(min(h, my + 1.7 * iod))
    crop = rgb[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    factor = min(1.0, DETAIL_IOD_PX / iod)
    if factor < 1.0:
        grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    eyes = (np.array([geometry.right_eye, geometry.left_eye]) - (x0, y0)) * factor
    return grey, iod * factor, eyes


def _gradient(grey: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))


def edge_blur_px(grey: np.ndarray, reblur_sigma: float = 1.0) -> float:
    """Gaussian blur (sigma, px) of the strongest edges of an image, by re-blurring.

    A step edge blurred by sigma has gradient peak proportional to 1 / sigma; blurred again by
    ``reblur_sigma`` its peak falls by R = sqrt(sigma^2 + s0^2) / sigma, so
    sigma = s0 / sqrt(R^2 - 1) (Zhuo & Sim 2011, "Defocus map estimation from a single image",
    Pattern Recognition 44:1852). Median over gradient maxima in the top 5 % of edge strength
    (eyes, brows, lips, nostrils, face outline).
    """
    g0 = _gradient(grey)
    g1 = _gradient(cv2.GaussianBlur(grey, (0, 0), reblur_sigma))
    peaks = (g0 >= cv2.dilate(g0, np.ones((3, 3), np.uint8))) & (g0 > np.percentile(g0, 95)) & (g0 > 4.0)
    if peaks.sum() < 10:
        return float("inf")
    ratio = np.maximum(g0[peaks] / np.maximum(g1[peaks], 1e-3), 1.0001)
    return float(np.median(reblur_sigma / np.sqrt(ratio ** 2 - 1.0)))


def blur_percent_of_face_width(grey: np.ndarray, iod_px: float) -> float:
    """Blur beyond the pixel grid as % of the face width (see :data:`imaging.quality.CHECKS`)."""
    sigma = edge_blur_px(grey)
    if not np.isfinite(sigma):
        return float("inf")
    excess = np.sqrt(max(0.0, sigma ** 2 - PIXEL_BLUR_PX ** 2))
    return float(100.0 * excess / (FACE_WIDTH_IOD * iod_px))


def face_blur_percent(rgb: np.ndarray, geometry) -> float:
    """Blur of a photo's face beyond the pixel grid, % of the face width: :func:`blur_percent_of_face_width`
    of :func:`face_detail_crop` (the quality gate's ``blur_percent_of_face_width`` check)."""
    grey, iod_px, _ = face_detail_crop(rgb, geometry)
    return blur_percent_of_face_width(grey, iod_px)


def fine_texture(grey: np.ndarray, iod_px: float, eyes: np.ndarray) -> float:
    """Fine skin texture, % (see :data:`imaging.quality.CHECKS`): 100 x 1.4826 x MAD of log luminance minus its
    Gaussian blur (sigma 1 px, the finest band the photo holds) over both cheeks (0.55-0.9 IOD
    below each eye) and the forehead (0.35-0.6 IOD above the eye midpoint).

    Skin pores, fine lines and sensor grain leave a few % here; a beauty filter (edge-preserving
    smoothing) removes them while keeping the face's edges sharp.
    """
    log = np.log(np.maximum(grey, 1.0))
    band = log - cv2.GaussianBlur(log, (0, 0), 1.0)
    h, w = grey.shape
    values = []
    half = 0.15 * iod_px
    mid = eyes.mean(axis=0)
    centres = [(eyes[0][0], eyes[0][1] + 0.72 * iod_px), (eyes[1][0], eyes[1][1] + 0.72 * iod_px),
               (mid[0], mid[1] - 0.48 * iod_px)]
    for cx, cy in centres:
        x0, x1 = int(max(0, cx - half)), int(min(w, cx + half))
        y0, y1 = int(max(0, cy - half)), int(min(h, cy + half))
        patch = band[y0:y1, x0:x1]
        # Only well-exposed pixels: clipped or black skin has no texture to see.
        keep = (grey[y0:y1, x0:x1] > 20) & (grey[y0:y1, x0:x1] < 245)
        if keep.sum() >= 20:
            values.append(patch[keep])
    if not values:
        return float("nan")
    v = np.concatenate(values)
    return float(100.0 * 1.4826 * np.median(np.abs(v - np.median(v))))
