"""Phone-like test photos built from a real, public-domain face (``skimage.data.astronaut()``).

Used by tests and benchmarks of every imaging module. Everything is deterministic (seeded).
Nothing is downloaded. Only numpy, OpenCV, scikit-image and Pillow are used.

A :class:`SyntheticPhoto` carries its pixels (uint8 sRGB RGB) and the ground-truth geometry
(eye centres, mouth, face box) in its own pixel coordinates, hand-read once on the 512x512
astronaut image (see :data:`ASTRONAUT_TRUTH`) and carried through every geometric transform.

Photometric transforms work in linear light (sRGB decoded), as a camera would see the
change, then re-encode to sRGB uint8.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from dataclasses import dataclass, replace

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging import colour_space as _colour_space

import cv2  # noqa: E402
from PIL import Image, ImageCms  # noqa: E402

#: Hand-read truth on skimage.data.astronaut() (512x512), px (x, y): iris centres read at 8x
#: zoom (+-1 px), mouth = centre of the lip opening, face box = skimage LBP cascade output.
ASTRONAUT_TRUTH = {
    "right_eye": (203.5, 101.0),  # subject's right eye = image left
    "left_eye": (246.5, 103.0),
    "mouth": (223.75, 145.0),
    "face_box": (175.0, 70.0, 93.0, 93.0),  # x, y, width, height
}
#: Neutral grey of the synthetic background, sRGB.
BACKGROUND_GREY = 128
#: Portrait photo size of a 12 MP phone camera (width, height).
PHONE_PORTRAIT = (3024, 4032)
#: Landscape photo size of a 12 MP phone camera (width, height).
PHONE_LANDSCAPE = (4032, 3024)

# The head-and-shoulders area of the astronaut kept in synthetic photos (x, y, w, h) and the
# soft ellipse (centre, semi-axes, px in astronaut coordinates) that blends it into the grey.
_HEAD_CROP = (115, 0, 220, 280)
_HEAD_ELLIPSE = ((225.0, 125.0), (92.0, 128.0))


@dataclass(frozen=True)
class SyntheticPhoto:
    """A synthetic photo and its ground truth.

    Attributes
    ----------
    rgb : ndarray, uint8, HxWx3, sRGB
    right_eye, left_eye, mouth : (float, float)
        Truth positions (x, y) in px of ``rgb``; right/left are the subject's.
    face_box : (float, float, float, float)
        (x, y, width, height) px of the detector-style face box (axis-aligned).
    """

    rgb: np.ndarray
    right_eye: tuple[float, float]
    left_eye: tuple[float, float]
    mouth: tuple[float, float]
    face_box: tuple[float, float, float, float]

    @property
    def iod(self) -> float:
        """True inter-ocular distance, px."""
        return float(np.hypot(self.left_eye[0] - self.right_eye[0], self.left_eye[1] - self.right_eye[1]))

    def warp(self, matrix: np.ndarray, size: tuple[int, int], border: int = BACKGROUND_GREY) -> "SyntheticPhoto":
        """Apply a 2x3 affine to pixels and truth.

        Parameters
        ----------
        matrix : ndarray (2, 3), maps this photo's px to the new photo's px.
        size : (width, height) of the result, px.
        border : grey level for uncovered pixels.
        """
        matrix = np.asarray(matrix, np.float64)
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        src = self.rgb
        if scale < 0.5:
            # Shrink with area averaging first (no aliasing), then finish with the affine.
            pre = cv2.resize(src, None, fx=scale * 1.5, fy=scale * 1.5, interpolation=cv2.INTER_AREA)
            pre_scale = np.array([[pre.shape[1] / src.shape[1], 0, 0], [0, pre.shape[0] / src.shape[0], 0]])
            inv_pre = np.linalg.inv(np.vstack([pre_scale, [0, 0, 1]]))
            matrix_on_pre = (np.vstack([matrix, [0, 0, 1]]) @ inv_pre)[:2]
            out = cv2.warpAffine(pre, matrix_on_pre, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(border,) * 3)
        else:
            out = cv2.warpAffine(src, matrix, size, flags=cv2.INTER_CUBIC,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(border,) * 3)

        def move(point):
            x, y = point
            return tuple(float(v) for v in matrix @ np.array([x, y, 1.0]))

        x, y, w, h = self.face_box
        corners = np.array([move((x, y)), move((x + w, y)), move((x, y + h)), move((x + w, y + h))])
        # The detector box of a rotated face stays about the same size (it is not the hull).
        centre = corners.mean(axis=0)
        side = w * scale
        box = (float(centre[0] - side / 2), float(centre[1] - side / 2), float(side), float(side))
        right, left = move(self.right_eye), move(self.left_eye)
        if np.linalg.det(matrix[:, :2]) < 0:  # a mirror swaps which eye is image-left
            right, left = left, right
        return SyntheticPhoto(out, right, left, move(self.mouth), box)

    def with_rgb(self, rgb: np.ndarray) -> "SyntheticPhoto":
        """Same truth, new pixels (for photometric transforms)."""
        return replace(self, rgb=rgb)


def astronaut() -> SyntheticPhoto:
    """The 512x512 astronaut image with its hand-read truth."""
    from skimage import data

    truth = ASTRONAUT_TRUTH
    return SyntheticPhoto(data.astronaut(), truth["right_eye"], truth["left_eye"], truth["mouth"], truth["face_box"])


def phone_photo(
    size: tuple[int, int] = PHONE_PORTRAIT,
    iod_fraction: float = 0.16,
    centre_fraction: tuple[float, float] = (0.5, 0.42),
    background: int = BACKGROUND_GREY,
) -> SyntheticPhoto:
    """A phone-sized portrait of the astronaut on a neutral grey background.

    Parameters
    ----------
    size : (width, height), px
        Photo size; default 3024x4032 (12 MP portrait).
    iod_fraction : float
        Inter-ocular distance as a fraction of the photo width. 0.16 gives an IOD of ~480 px
        at 3024 px width, a face filling about half the width, as in a selfie at arm's length.
    centre_fraction : (float, float)
        Where the eye midpoint lands, as fractions of (width, height).
    background : int
        Grey level 0-255 of the backdrop.

    Returns
    -------
    SyntheticPhoto
        uint8 RGB of shape (height, width, 3) with truth.
    """
    head = _head_on_grey(background)
    width, height = size
    scale = iod_fraction * width / head.iod
    mid = (np.asarray(head.right_eye) + np.asarray(head.left_eye)) / 2
    target = np.array([centre_fraction[0] * width, centre_fraction[1] * height])
    matrix = np.array([[scale, 0.0, target[0] - scale * mid[0]], [0.0, scale, target[1] - scale * mid[1]]])
    return head.warp(matrix, size, border=background)


def sharp_phone_photo(size: tuple[int, int] = PHONE_PORTRAIT, **kwargs) -> SyntheticPhoto:
    """:func:`phone_photo` with the edge sharpness a phone camera gives a face of that size.

    The astronaut (IOD 43 px) is upscaled ~11x into a 12 MP frame, so its edges are blurred by
    ~0.7 % of the face width: the quality gate, which judges blur relative to the face
    (:mod:`imaging.detail`), rightly calls that photo blurred. An unsharp mask (amount 2, sigma
    0.7 source px, in the upscaled frame) restores edges as steep as a sharp photo's; the gate
    then measures ~0.35 % (limit 0.44 %). Use it where a photo must pass the gate.

    Parameters
    ----------
    size, **kwargs : as for :func:`phone_photo`
    """
    photo = phone_photo(size, **kwargs)
    source_iod = float(np.hypot(*np.subtract(ASTRONAUT_TRUTH["left_eye"], ASTRONAUT_TRUTH["right_eye"])))
    return unsharp(photo, 0.7 * photo.iod / source_iod, 2.0)


def unsharp(photo: SyntheticPhoto, sigma: float, amount: float) -> SyntheticPhoto:
    """Unsharp mask, as a phone's processing sharpens: rgb + amount x (rgb - Gaussian(sigma px)),
    on the sRGB code values, rounded and clipped to uint8."""
    rgb = photo.rgb.astype(np.float32)
    sharpened = rgb + amount * (rgb - cv2.GaussianBlur(rgb, (0, 0), sigma))
    return photo.with_rgb(np.clip(sharpened + 0.5, 0, 255).astype(np.uint8))


def _head_on_grey(background: int) -> SyntheticPhoto:
    """Astronaut head-and-shoulders blended into a uniform grey with a soft ellipse."""
    photo = astronaut()
    rgb = photo.rgb.astype(np.float32)
    yy, xx = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]].astype(np.float32)
    (cx, cy), (ax, ay) = _HEAD_ELLIPSE
    radius = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    keep = np.clip((1.15 - radius) / 0.15, 0.0, 1.0)[..., None]
    blended = rgb * keep + background * (1.0 - keep)
    return photo.with_rgb(np.clip(blended + 0.5, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- photometric transforms

#: uint8 sRGB -> float32 linear [0, 1] (IEC 61966-2-1), shared with the measures.
srgb_to_linear = _colour_space.srgb_to_linear
#: float linear (clipped to [0, 1]) -> uint8 sRGB, rounded (IEC 61966-2-1).
linear_to_srgb = _colour_space.linear_to_srgb_uint8


def _linear_map(photo: SyntheticPhoto, gains: np.ndarray) -> SyntheticPhoto:
    """Multiply linear light by per-pixel/per-channel gains (broadcast to HxWx3)."""
    return photo.with_rgb(linear_to_srgb(srgb_to_linear(photo.rgb) * gains))


def exposure(photo: SyntheticPhoto, factor: float) -> SyntheticPhoto:
    """Scale exposure by ``factor`` in linear light (1.3 = +30 %, 0.25 = two stops darker)."""
    return _linear_map(photo, np.float32(factor))


def white_balance(photo: SyntheticPhoto, gains: tuple[float, float, float]) -> SyntheticPhoto:
    """Per-channel linear gains (R, G, B): a white-balance error or a coloured light."""
    return _linear_map(photo, np.asarray(gains, np.float32))


def one_sided_light(photo: SyntheticPhoto, ratio: float, axis: str = "x", lit_side: str = "start") -> SyntheticPhoto:
    """Light falling off across the face, as from a lamp or window on one side (or overhead).

    Parameters
    ----------
    ratio : float
        Linear-light gain on the far side of the face relative to the near side (e.g. 0.3:
        the image-right half gets 30 % of the light of the image-left half).
    axis : "x" (left to right) or "y" (top to bottom).
    lit_side : "start" (image left / top is lit) or "end" (image right / bottom is lit).

    Notes
    -----
    The gain falls with a smoothstep from the near side (gain 1) to the far side (gain
    ``ratio``) over the middle 40 % of the face box.
    """
    h, w = photo.rgb.shape[:2]
    x, y, bw, bh = photo.face_box
    if axis == "x":
        pos = (np.arange(w, dtype=np.float32) - x) / bw
    else:
        pos = (np.arange(h, dtype=np.float32) - y) / bh
    if lit_side == "end":
        pos = 1.0 - pos
    t = np.clip((pos - 0.3) / 0.4, 0.0, 1.0)
    gain = 1.0 + (ratio - 1.0) * t * t * (3 - 2 * t)
    gain = gain[None, :, None] if axis == "x" else gain[:, None, None]
    return _linear_map(photo, gain.astype(np.float32))


def gaussian_noise(photo: SyntheticPhoto, sigma: float, seed: int = 0) -> SyntheticPhoto:
    """Add sensor-like Gaussian noise, ``sigma`` in 8-bit code values."""
    rng = np.random.default_rng(seed)
    noisy = photo.rgb.astype(np.float32) + rng.normal(0.0, sigma, photo.rgb.shape).astype(np.float32)
    return photo.with_rgb(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))


def blur(photo: SyntheticPhoto, sigma_fraction_of_iod: float) -> SyntheticPhoto:
    """Gaussian defocus blur with sigma given as a fraction of the IOD (size-independent)."""
    sigma = max(0.3, sigma_fraction_of_iod * photo.iod)
    return photo.with_rgb(cv2.GaussianBlur(photo.rgb, (0, 0), sigma))


def glare_spots(photo: SyntheticPhoto, n_spots: int = 6, radius_fraction_of_iod: float = 0.12, seed: int = 0) -> SyntheticPhoto:
    """Specular highlights (saturated white, soft edge) on forehead and cheeks."""
    rng = np.random.default_rng(seed)
    rgb = photo.rgb.astype(np.float32)
    re, le, mo = (np.asarray(p) for p in (photo.right_eye, photo.left_eye, photo.mouth))
    iod = photo.iod
    anchors = [(re + le) / 2 - (0, 0.55 * iod), re + (0, 0.55 * iod), le + (0, 0.55 * iod), (re + le + 2 * mo) / 4]
    yy, xx = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]]
    for i in range(n_spots):
        cx, cy = anchors[i % len(anchors)] + rng.normal(0, 0.08 * iod, 2)
        r = radius_fraction_of_iod * iod * rng.uniform(0.7, 1.3)
        x0, x1 = int(max(cx - 2 * r, 0)), int(min(cx + 2 * r, rgb.shape[1]))
        y0, y1 = int(max(cy - 2 * r, 0)), int(min(cy + 2 * r, rgb.shape[0]))
        d = np.hypot(xx[y0:y1, x0:x1] - cx, yy[y0:y1, x0:x1] - cy) / r
        alpha = np.clip(1.6 - d, 0.0, 1.0)[..., None]
        rgb[y0:y1, x0:x1] = rgb[y0:y1, x0:x1] * (1 - alpha) + 255.0 * alpha
    return photo.with_rgb(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- geometric transforms

def rotate(photo: SyntheticPhoto, degrees: float) -> SyntheticPhoto:
    """Rotate about the eye midpoint by ``degrees`` (counter-clockwise on screen), same size."""
    mid = (np.asarray(photo.right_eye) + np.asarray(photo.left_eye)) / 2
    matrix = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), degrees, 1.0)
    return photo.warp(matrix, (photo.rgb.shape[1], photo.rgb.shape[0]))


def rescale(photo: SyntheticPhoto, factor: float) -> SyntheticPhoto:
    """Resize the whole photo by ``factor`` (output size changes)."""
    h, w = photo.rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    matrix = np.array([[size[0] / w, 0, 0], [0, size[1] / h, 0]], np.float64)
    return photo.warp(matrix, size)


def shift(photo: SyntheticPhoto, dx: float, dy: float) -> SyntheticPhoto:
    """Translate content by (dx, dy) px, same size; uncovered area is grey."""
    matrix = np.array([[1.0, 0, dx], [0, 1.0, dy]])
    return photo.warp(matrix, (photo.rgb.shape[1], photo.rgb.shape[0]))


def mirror(photo: SyntheticPhoto) -> SyntheticPhoto:
    """Mirror horizontally (a front-camera selfie); the subject's eyes swap image sides."""
    w = photo.rgb.shape[1]
    matrix = np.array([[-1.0, 0, w - 1.0], [0, 1.0, 0]])
    return photo.warp(matrix, (w, photo.rgb.shape[0]))


def cut_off(photo: SyntheticPhoto, fraction_of_face: float = 0.35, side: str = "left") -> SyntheticPhoto:
    """Shift the face so ``fraction_of_face`` of its box lies outside the frame on ``side``."""
    x, y, w, h = photo.face_box
    width, height = photo.rgb.shape[1], photo.rgb.shape[0]
    if side == "left":
        return shift(photo, -(x + fraction_of_face * w), 0)
    if side == "right":
        return shift(photo, width - (x + w) + fraction_of_face * w, 0)
    if side == "bottom":
        return shift(photo, 0, height - (y + h) + fraction_of_face * h)
    return shift(photo, 0, -(y + fraction_of_face * h))


def turn_head(photo: SyntheticPhoto, yaw_degrees: float = 0.0, pitch_degrees: float = 0.0) -> SyntheticPhoto:
    """Approximate a head turn (yaw) or nod (pitch) by rotating a cylinder through the head.

    For yaw the head is a vertical cylinder of radius 1.1 IOD centred on the eye midpoint;
    each pixel column inside it moves to where it would project after rotating the cylinder
    by ``yaw_degrees`` (positive: the face turns towards the image's right, i.e. the subject
    turns to their left). For pitch a horizontal cylinder of radius 1.3 IOD centred between
    the eyes and the mouth moves rows the same way (positive: chin up). Truth points move
    with the pixels.
    """
    rgb = photo.rgb
    h, w = rgb.shape[:2]
    mid = (np.asarray(photo.right_eye) + np.asarray(photo.left_eye)) / 2
    map_x = np.repeat(np.arange(w, dtype=np.float32)[None, :], h, axis=0)
    map_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1)
    moves = []
    for axis, degrees, radius, centre in (
        (0, yaw_degrees, 1.1 * photo.iod, mid[0]),
        (1, -pitch_degrees, 1.3 * photo.iod, (mid[1] + photo.mouth[1]) / 2),
    ):
        if degrees == 0:
            continue
        theta = np.radians(degrees)
        coords = np.arange(w if axis == 0 else h, dtype=np.float32)
        phi = np.arcsin(np.clip((coords - centre) / radius, -1.0, 1.0)) - theta
        src = np.where(np.abs(phi) <= np.pi / 2, centre + radius * np.sin(phi), -1.0)
        src = np.where(np.abs(coords - centre) < radius, src, coords).astype(np.float32)
        if axis == 0:
            map_x = np.repeat(src[None, :], h, axis=0)
        else:
            map_y = np.repeat(src[:, None], w, axis=1)
        moves.append((axis, theta, radius, centre))
    out = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(BACKGROUND_GREY,) * 3)

    def move(point):
        p = [float(point[0]), float(point[1])]
        for axis, theta, radius, centre in moves:
            angle = np.arcsin(np.clip((p[axis] - centre) / radius, -1, 1)) + theta
            p[axis] = float(centre + radius * np.sin(angle))
        return (p[0], p[1])

    return SyntheticPhoto(out, move(photo.right_eye), move(photo.left_eye), move(photo.mouth), photo.face_box)


def add_second_face(photo: SyntheticPhoto, scale: float = 0.8) -> SyntheticPhoto:
    """A second person: the head pasted again (mirrored, ``scale`` times smaller) beside it.

    The scene is first shifted so that both faces fit in the frame (subject left of centre,
    second face right). The truth keeps describing the first face.
    """
    width = photo.rgb.shape[1]
    mid = (np.asarray(photo.right_eye) + np.asarray(photo.left_eye)) / 2
    gap = 2.3 * photo.iod
    photo = shift(photo, (width - gap * (1 + scale) / 2) / 2 - mid[0] + 0.0 * width, 0)
    mid = (np.asarray(photo.right_eye) + np.asarray(photo.left_eye)) / 2
    second = mirror(photo)
    second_mid = (np.asarray(second.right_eye) + np.asarray(second.left_eye)) / 2
    target = mid + np.array([gap, 0.3 * photo.iod])
    matrix = np.array([[scale, 0, target[0] - scale * second_mid[0]], [0, scale, target[1] - scale * second_mid[1]]])
    pasted = second.warp(matrix, (width, photo.rgb.shape[0]))
    # Soft elliptical paste so the grey backgrounds merge without a seam.
    h, w = photo.rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = np.sqrt(((xx - target[0]) / (1.3 * photo.iod * scale)) ** 2
                     + ((yy - target[1] - 0.4 * photo.iod * scale) / (2.0 * photo.iod * scale)) ** 2)
    alpha = np.clip((1.1 - radius) / 0.1, 0, 1)[..., None]
    rgb = photo.rgb.astype(np.float32) * (1 - alpha) + pasted.rgb.astype(np.float32) * alpha
    return photo.with_rgb(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- ColorChecker

def colorchecker_card(patch_px: int = 60, gap_px: int = 12, order=None) -> np.ndarray:
    """A ColorChecker 24 card in linear sRGB: reference patches on a black (2 %) card.

    Parameters
    ----------
    patch_px, gap_px : int
        Patch side and gap between patches, px.
    order : sequence of int, optional
        Permutes the patches (a wrong/fake chart).

    Returns
    -------
    ndarray, float32 (4 * patch + 5 * gap) x (6 * patch + 7 * gap) x 3, linear sRGB
    """
    from imaging.colour import reference_patches_linear

    ref = np.clip(reference_patches_linear(), 0.0, 1.0).astype(np.float32)
    if order is not None:
        ref = ref[np.asarray(order)]
    h, w = 4 * patch_px + 5 * gap_px, 6 * patch_px + 7 * gap_px
    card = np.full((h, w, 3), 0.02, np.float32)
    for k in range(24):
        r, c = divmod(k, 6)
        y, x = gap_px + r * (patch_px + gap_px), gap_px + c * (patch_px + gap_px)
        card[y : y + patch_px, x : x + patch_px] = ref[k]
    return card


def other_tone_curve(rgb: np.ndarray, strength: float) -> np.ndarray:
    """Another phone's rendering of uint8 sRGB: an S-curve on the encoded values (more mid-tone
    contrast than sRGB's curve; ``strength`` 0 = unchanged, 0.35 = a vivid phone)."""
    v = rgb.astype(np.float32) / 255.0
    curved = v + strength * (0.5 - 0.5 * np.cos(np.pi * v) - v)
    return np.clip(curved * 255.0 + 0.5, 0, 255).astype(np.uint8)


def colorchecker_photo(gains: tuple[float, float, float] = (1.0, 1.0, 1.0), exposure_factor: float = 1.0,
                       tone_curve: float = 0.0, photo: "SyntheticPhoto | None" = None) -> bytes:
    """Landscape portrait with a ColorChecker on the wall beside the head, then a colour cast.

    Parameters
    ----------
    gains : (float, float, float)
        Linear R, G, B gains of the cast.
    exposure_factor : float
        Linear exposure factor of the cast.
    tone_curve : float
        Strength of another phone's tone curve (:func:`other_tone_curve`), 0 = sRGB's.
    photo : SyntheticPhoto, optional
        The portrait (e.g. a real face of the set as a phone-like scene); the card is then held
        in its bottom-left corner. Default: the astronaut on a grey wall, card beside the head.

    Returns
    -------
    bytes
        A JPEG (quality 95, no orientation tag, no private metadata), 2016x1512 by default.
    """
    card = colorchecker_card(patch_px=56, gap_px=11)
    if photo is None:
        photo = exposure(phone_photo((2016, 1512), iod_fraction=0.12, centre_fraction=(0.36, 0.42)), 0.7)
        y, x = 520, 1430
    else:
        y, x = photo.rgb.shape[0] - card.shape[0] - 20, 20
    linear = srgb_to_linear(photo.rgb)
    # A wall has sensor noise; a perfectly flat one makes 8-bit rounding a systematic cast.
    linear = np.clip(linear + np.random.default_rng(3).normal(0, 0.004, linear.shape).astype(np.float32), 0, 1)
    linear[y: y + card.shape[0], x: x + card.shape[1]] = card
    linear = linear * np.asarray(gains, np.float32) * np.float32(exposure_factor)
    rendered = linear_to_srgb(linear)
    if tone_curve:
        rendered = other_tone_curve(rendered, tone_curve)
    return to_jpeg(rendered, quality=95, orientation=None, with_private_metadata=False)


# ---------------------------------------------------------------- encoders

#: Metadata written into synthetic JPEGs so sanitising can be tested against it.
SECRET_SERIAL = "SN-SKINTRACK-TEST-0042"
SECRET_COMMENT = "patient Jane Roe, DOB 1980-01-01"
SECRET_GPS = (48.0, 51.0, 29.34)  # 48 deg 51' 29.34" N


#: EXIF Make and Model of synthetic photos unless told otherwise.
DEFAULT_CAMERA = ("SkinTrackCam", "Model T")


def _exif_bytes(orientation: int | None, with_private: bool, captured_at: dt.datetime | None,
                camera: tuple[str, str] = DEFAULT_CAMERA) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = camera  # Make, Model
    if orientation:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    if captured_at is not None:
        sub[0x9003] = captured_at.strftime("%Y:%m:%d %H:%M:%S")
        if captured_at.utcoffset() is not None:
            minutes = int(captured_at.utcoffset().total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            sub[0x9011] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    if with_private:
        exif[0x010E] = SECRET_COMMENT  # ImageDescription
        sub[0xA431] = SECRET_SERIAL  # BodySerialNumber
        sub[0x9286] = b"ASCII\x00\x00\x00" + SECRET_COMMENT.encode()  # UserComment
        gps = exif.get_ifd(0x8825)
        gps[1] = "N"
        gps[2] = SECRET_GPS
        gps[3] = "E"
        gps[4] = (2.0, 17.0, 40.0)
    return exif.tobytes()


def _orient_for_storage(rgb: np.ndarray, orientation: int | None) -> np.ndarray:
    """Pixels as a camera stores them so that applying ``orientation`` gives ``rgb`` back."""
    if orientation in (None, 1):
        return rgb
    inverse = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_COUNTERCLOCKWISE, 8: cv2.ROTATE_90_CLOCKWISE}
    if orientation not in inverse:
        raise ValueError("synthetic photos support EXIF orientation 1, 3, 6, 8")
    return cv2.rotate(rgb, inverse[orientation])


def to_jpeg(
    rgb: np.ndarray,
    quality: int = 92,
    orientation: int | None = 6,
    with_private_metadata: bool = True,
    icc_profile: bytes | None = None,
    captured_at: dt.datetime | None = dt.datetime(2026, 11, 2, 9, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    camera: tuple[str, str] | None = None,
) -> bytes:
    """Encode like a phone: pixels stored sideways with EXIF orientation, GPS, serial, comments.

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3, the UPRIGHT image the viewer should see.
    quality : JPEG quality 1-100.
    orientation : EXIF orientation tag (1, 3, 6 or 8) or None for no tag.
    with_private_metadata : write GPS, body serial, ImageDescription, UserComment, a COM
        segment and an XMP packet (all of which sanitising must remove).
    icc_profile : embedded ICC profile bytes (pixels are written unchanged).
    captured_at : EXIF DateTimeOriginal (+ OffsetTimeOriginal when aware).
    camera : (make, model) written to EXIF; default :data:`DEFAULT_CAMERA`.
    """
    stored = _orient_for_storage(rgb, orientation)
    kwargs = {"quality": quality, "subsampling": 2 if quality < 90 else 0,
              "exif": _exif_bytes(orientation, with_private_metadata, captured_at, camera or DEFAULT_CAMERA)}
    if with_private_metadata:
        kwargs["comment"] = SECRET_COMMENT.encode()
        kwargs["xmp"] = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description dc:description="{SECRET_COMMENT}"/></x:xmpmeta>'.encode()
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def to_png(rgb: np.ndarray, bits: int = 8, alpha: bool = False, icc_profile: bytes | None = None,
           orientation: int | None = None, with_private_metadata: bool = False) -> bytes:
    """Encode as PNG (8 or 16 bits per channel, optional alpha / ICC / EXIF / text chunk)."""
    stored = _orient_for_storage(rgb, orientation)
    if bits == 16 or alpha:
        bgr = cv2.cvtColor(stored, cv2.COLOR_RGB2BGRA if alpha else cv2.COLOR_RGB2BGR)
        if alpha:
            bgr[..., 3] = 255
            bgr[: bgr.shape[0] // 10, : bgr.shape[1] // 10, 3] = 0  # a transparent corner
        if bits == 16:
            bgr = bgr.astype(np.uint16) * 257
        ok, encoded = cv2.imencode(".png", bgr)
        if not ok:
            raise RuntimeError("PNG encode failed")
        if icc_profile is None and orientation is None and not with_private_metadata:
            return encoded.tobytes()
        image = Image.open(io.BytesIO(encoded.tobytes()))
        image.load()
    else:
        image = Image.fromarray(stored)
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if with_private_metadata:
        info.add_text("Comment", SECRET_COMMENT)
    kwargs = {"pnginfo": info}
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    if orientation or with_private_metadata:
        kwargs["exif"] = _exif_bytes(orientation, with_private_metadata, None)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def to_webp(rgb: np.ndarray, quality: int = 90, orientation: int | None = None) -> bytes:
    """Encode as WebP (lossy), optionally with an EXIF orientation tag."""
    stored = _orient_for_storage(rgb, orientation)
    buffer = io.BytesIO()
    kwargs = {"quality": quality}
    if orientation:
        kwargs["exif"] = _exif_bytes(orientation, False, None)
    Image.fromarray(stored).save(buffer, format="WEBP", **kwargs)
    return buffer.getvalue()


def to_heic(rgb: np.ndarray, quality: int = 85, orientation: int | None = 6, with_private_metadata: bool = True,
            icc_profile: bytes | None = None) -> bytes:
    """Encode as HEIC like an iPhone (keep sizes small: HEIC encoding takes ~1 s per MP)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    stored = _orient_for_storage(rgb, orientation)
    buffer = io.BytesIO()
    kwargs = {"quality": quality, "exif": _exif_bytes(orientation, with_private_metadata, None)}
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    Image.fromarray(stored).save(buffer, format="HEIF", **kwargs)
    return buffer.getvalue()


# ---------------------------------------------------------------- ICC profiles

def _s15f16(value: float) -> bytes:
    return struct.pack(">i", int(round(value * 65536)))


def display_p3_icc_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC profile for Display P3 (P3 primaries, D65, sRGB curve).

    Pillow cannot create a P3 profile, and none may be downloaded, so the profile is written
    here: colorants are the P3 primaries' XYZ chromatically adapted to the ICC D50 PCS with
    the Bradford transform; the tone curve is the sRGB parametric curve sampled at 1024 points.
    """
    primaries = {"r": (0.680, 0.320), "g": (0.265, 0.690), "b": (0.150, 0.060)}
    white = np.array([0.95047, 1.0, 1.08883])
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries.values()]).T
    scale = np.linalg.solve(xyz, white)
    rgb_to_xyz = xyz * scale
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    d50 = np.array([0.9642, 1.0, 0.8249])
    adapt = np.linalg.inv(bradford) @ np.diag((bradford @ d50) / (bradford @ white)) @ bradford
    colorants = adapt @ rgb_to_xyz

    def xyz_tag(v) -> bytes:
        return b"XYZ \x00\x00\x00\x00" + b"".join(_s15f16(c) for c in v)

    samples = np.linspace(0, 1, 1024)
    curve = np.where(samples <= 0.04045, samples / 12.92, ((samples + 0.055) / 1.055) ** 2.4)
    trc = b"curv\x00\x00\x00\x00" + struct.pack(">I", 1024) + b"".join(struct.pack(">H", int(round(c * 65535))) for c in curve)
    text = b"Display P3 (skintrack synthetic)"
    desc = (b"desc\x00\x00\x00\x00" + struct.pack(">I", len(text) + 1) + text + b"\x00"
            + b"\x00" * 8 + b"\x00" * 3 + b"\x00" * 67)
    cprt = b"text\x00\x00\x00\x00" + b"Public domain\x00"
    tags = [(b"desc", desc), (b"cprt", cprt), (b"wtpt", xyz_tag(d50)), (b"rXYZ", xyz_tag(colorants[:, 0])),
            (b"gXYZ", xyz_tag(colorants[:, 1])), (b"bXYZ", xyz_tag(colorants[:, 2])),
            (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        while (offset + len(body)) % 4:
            body += b"\x00"
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + b"\x02\x10\x00\x00" + b"mntr" + b"RGB " + b"XYZ "
              + b"\x07\xea\x00\x0b\x00\x15\x00\x00\x00\x00\x00\x00" + b"acsp" + b"APPL" + b"\x00" * 4
              + b"\x00" * 4 + b"\x00" * 4 + b"\x00" * 8 + b"\x00" * 4 + b"".join(_s15f16(c) for c in d50)
              + b"lcms" + b"\x00" * 44)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def p3_from_srgb(rgb: np.ndarray) -> np.ndarray:
    """Re-express sRGB pixels in Display P3 code values (what an iPhone would store)."""
    source = ImageCms.createProfile("sRGB")
    target = ImageCms.ImageCmsProfile(io.BytesIO(display_p3_icc_profile()))
    transform = ImageCms.buildTransform(source, target, "RGB", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    return np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), transform))
