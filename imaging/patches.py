"""Region patches: skin-only crops of a canonical face for research exports.

A patch is the bounding box of one region mask (``imaging.regions.region_masks``) cut out of
the canonical frame, with every pixel outside the mask set to neutral grey, so eyes, brows,
lips, nostrils, hair and background never appear even where they fall inside the box. The
PNG is encoded fresh from the pixel array (:func:`imaging.raster.encode_png`): no EXIF, ICC,
text or time chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imaging.masks import mask_bbox
from imaging.raster import encode_png

#: Regions offered as patches: none of them touches the eyes (see ``imaging.regions``).
PATCH_REGIONS = ("forehead", "left_cheek", "right_cheek")
#: sRGB value written outside the region mask.
NEUTRAL_GREY = 128


@dataclass(frozen=True)
class RegionPatch:
    """One region's crop.

    Attributes
    ----------
    region : str
        One of :data:`PATCH_REGIONS`.
    box : (int, int, int, int)
        (x0, y0, x1, y1) canonical px at the face's scale, half-open: the mask's bounding box.
    png : bytes
        RGB PNG of size (x1 - x0) x (y1 - y0), grey outside the mask.
    """

    region: str
    box: tuple[int, int, int, int]
    png: bytes


def region_patch(rgb: np.ndarray, mask: np.ndarray, region: str) -> RegionPatch | None:
    """Crop ``rgb`` to ``mask``'s bounding box, grey outside the mask.

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3
        Canonical face pixels (``CanonicalFace.rgb``).
    mask : ndarray bool HxW
        The region's mask in the same frame.
    region : str
        Name stored on the patch.

    Returns
    -------
    RegionPatch or None
        None when the mask is empty (region not measurable in this photo).
    """
    rows, cols = mask_bbox(mask)
    if rows.start == rows.stop:
        return None
    crop = np.full((rows.stop - rows.start, cols.stop - cols.start, 3), NEUTRAL_GREY, np.uint8)
    inside = mask[rows, cols]
    crop[inside] = rgb[rows, cols][inside]
    box = (int(cols.start), int(rows.start), int(cols.stop), int(rows.stop))
    return RegionPatch(region, box, encode_png(crop))


def region_patches(canonical, masks: dict[str, np.ndarray],
                   regions: tuple[str, ...] = PATCH_REGIONS) -> dict[str, RegionPatch]:
    """Patches of ``regions`` (default forehead and both cheeks) of one canonical face.

    Parameters
    ----------
    canonical : imaging.align.CanonicalFace
        Uses ``rgb``.
    masks : dict[str, ndarray bool]
        ``imaging.regions.region_masks(canonical)``.
    regions : tuple of str
        Subset of :data:`PATCH_REGIONS`; eye-adjacent regions are refused.

    Returns
    -------
    dict[str, RegionPatch]
        Keyed by region; regions with an empty mask are absent.
    """
    unknown = set(regions) - set(PATCH_REGIONS)
    if unknown:
        raise ValueError(f"not a patch region: {sorted(unknown)}")
    patches = {}
    for region in regions:
        patch = region_patch(canonical.rgb, masks[region], region)
        if patch is not None:
            patches[region] = patch
    return patches


def photo_region_patches(data: bytes, regions: tuple[str, ...] = PATCH_REGIONS) -> dict[str, RegionPatch] | None:
    """Patches of one stored photo: decode (upright sRGB), find the eyes, warp, mask, crop.

    Parameters
    ----------
    data : bytes
        The photo file as uploaded (JPEG, PNG, WebP, HEIC); its metadata is never copied.
    regions : tuple of str
        Subset of :data:`PATCH_REGIONS`.

    Returns
    -------
    dict[str, RegionPatch] or None
        None when no face is found. Placement is this photo's own (eyes, and for the cheeks the
        upper lip: :class:`imaging.regions.LowerFace`; no baseline registration): a patch shows
        skin, it is not a measurement.

    Raises
    ------
    imaging.decode.ImageError
        When the file cannot be decoded.
    """
    from imaging.align import to_canonical
    from imaging.analysis import locate_face
    from imaging.decode import decode_image
    from imaging.regions import region_masks

    rgb = decode_image(data).rgb
    geometry = locate_face(rgb)
    if geometry is None:
        return None
    canonical = to_canonical(rgb, geometry)
    return region_patches(canonical, region_masks(canonical), regions)
