"""Synthetic validation study: graded skin changes and recaptures through the full pipeline.

Shared by ``tests/imaging/test_validation.py`` (assertions) and ``bench/reliability.py`` (the
published reliability table), so both measure exactly the same thing.

- A **subject** is the astronaut's face (:func:`imaging.testing.synthetic.phone_photo`) with its own
  amounts of added haemoglobin, melanin spots and fine lines (:mod:`imaging.testing.skin_edits`, in
  optical density, inside the region templates mapped into the photo), i.e. a different true
  value of every headline.
- A **recapture** is the same subject photographed again under a changed condition: exposure
  +/-30 %, white-balance shifts, JPEG quality 70, rescaling 0.7-1.4x, rotation +/-6 degrees
  and sensor noise (combined, so six captures cover all of them).
- :func:`run_study` analyses every subject x capture with :func:`imaging.analysis.analyze` and
  returns the score matrices that :func:`imaging.reliability.reliability` turns into ICC(2,1),
  SEM and MDC95.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.catalogue import REGION_NAMES, STUDIED_MEASURES
from imaging.geometry import NOMINAL_IOD_MM, canonical_shape, invert_affine, similarity_from_eyes
from imaging.regions import template_mask
from imaging.testing import skin_edits, synthetic

import cv2  # noqa: E402

#: Photo size used by the study (width, height): a quarter of 12 MP keeps it fast while the
#: face (IOD ~240 px) is still at about the canonical scale (IOD 256 px).
STUDY_PHOTO_SIZE = (1512, 2016)
#: Where the edits go: region templates they are added inside (every face region).
EDIT_REGIONS = REGION_NAMES
#: Linear exposure of the study's base photo: the synthetic portrait is exposed so brightly that
#: cheeks clip at +30 %; at 0.7 skin sits at L* ~65, as a phone's auto-exposure puts it.
BASE_EXPOSURE = 0.7
#: Fixed seed of edit positions: a subject's spots and lines are in the same places in every capture.
EDIT_SEED = 7


@dataclass(frozen=True)
class SkinChange:
    """Amounts of synthetic change of one subject.

    Attributes
    ----------
    haemoglobin : float
        Added haemoglobin density over all regions (log10 OD), >= 0.
    spots : int
        Number of melanin spots (``SPOT_DIAMETER_MM``, ``SPOT_DENSITY``), >= 0.
    lines : int
        Number of fine lines of depth ``LINE_DEPTH`` (shading OD), >= 0.
    """

    haemoglobin: float = 0.0
    spots: int = 0
    lines: int = 0


#: Study subjects: each headline's true value varies independently of the others.
SUBJECTS: tuple[SkinChange, ...] = (
    SkinChange(0.00, 0, 0),
    SkinChange(0.08, 15, 30),
    SkinChange(0.04, 60, 10),
    SkinChange(0.12, 30, 0),
    SkinChange(0.02, 45, 40),
    SkinChange(0.10, 0, 20),
)

#: Spot diameter (mm) and density (OD), line depth (OD) of the edits: solar lentigines are
#: 3-10 mm; 2.5 mm / 0.2 OD spots spread over the whole face change the all-skin headline too
#: little to grade reliably through decode, warp and JPEG.
SPOT_DIAMETER_MM = 3.0
SPOT_DENSITY = 0.3
LINE_DEPTH = 0.12


@dataclass(frozen=True)
class Capture:
    """One capture condition (applied in this order; identity values leave the photo as is).

    Attributes
    ----------
    name : str
    exposure : float, linear-light gain (1.3 = +30 %)
    white_balance : (float, float, float), linear R, G, B gains
    scale : float, resize factor of the whole photo
    rotation_deg : float, camera roll about the eye midpoint
    noise_sigma : float, Gaussian sensor noise in 8-bit code values
    jpeg_quality : int
    """

    name: str
    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0
    rotation_deg: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 92


#: Recapture conditions; together they cover every perturbation of the validation brief.
CAPTURES: tuple[Capture, ...] = (
    Capture("reference"),
    Capture("brighter_rotated", exposure=1.3, rotation_deg=6.0),
    Capture("darker_small_noisy", exposure=0.7, scale=0.7, noise_sigma=2.0),
    Capture("warm_large_q70", white_balance=(1.15, 1.0, 0.85), scale=1.4, jpeg_quality=70),
    Capture("cool_rotated_noisy", white_balance=(0.88, 1.0, 1.15), rotation_deg=-6.0, noise_sigma=2.0),
    Capture("q70_noisy", jpeg_quality=70, noise_sigma=2.0),
)


def photo_region_masks(photo: synthetic.SyntheticPhoto, names=EDIT_REGIONS) -> np.ndarray:
    """Union of region templates mapped from the canonical frame into a photo, via its true eyes.

    Returns
    -------
    ndarray bool (height, width) of ``photo.rgb``.
    """
    to_photo = invert_affine(similarity_from_eyes(photo.right_eye, photo.left_eye))
    template = np.zeros(canonical_shape(), np.uint8)
    for name in names:
        template |= template_mask(name, canonical_shape()).astype(np.uint8)
    h, w = photo.rgb.shape[:2]
    return cv2.warpAffine(template, to_photo, (w, h), flags=cv2.INTER_NEAREST) > 0


def edited_photo(change: SkinChange, base: synthetic.SyntheticPhoto | None = None) -> synthetic.SyntheticPhoto:
    """The base phone photo with a subject's skin changes added in optical density.

    Parameters
    ----------
    change : SkinChange
    base : SyntheticPhoto, default ``synthetic.phone_photo(STUDY_PHOTO_SIZE)`` at ``BASE_EXPOSURE``

    Returns
    -------
    SyntheticPhoto, uint8 sRGB, same truth geometry.
    """
    photo = base if base is not None else synthetic.exposure(synthetic.phone_photo(STUDY_PHOTO_SIZE), BASE_EXPOSURE)
    mask = photo_region_masks(photo)
    px_per_mm = photo.iod / NOMINAL_IOD_MM
    linear = synthetic.srgb_to_linear(photo.rgb)
    if change.haemoglobin:
        linear = skin_edits.add_haemoglobin(linear, mask, change.haemoglobin)
    if change.spots:
        linear = skin_edits.add_melanin_spots(linear, mask, change.spots, SPOT_DIAMETER_MM, SPOT_DENSITY, px_per_mm,
                                              seed=EDIT_SEED)
    if change.lines:
        linear = skin_edits.add_fine_lines(linear, mask, change.lines, LINE_DEPTH, px_per_mm, seed=EDIT_SEED)
    return photo.with_rgb(synthetic.linear_to_srgb(linear))


def recapture(photo: synthetic.SyntheticPhoto, capture: Capture, seed: int = 0) -> bytes:
    """JPEG bytes of ``photo`` captured under ``capture`` (EXIF orientation 6, like a phone)."""
    if capture.exposure != 1.0:
        photo = synthetic.exposure(photo, capture.exposure)
    if capture.white_balance != (1.0, 1.0, 1.0):
        photo = synthetic.white_balance(photo, capture.white_balance)
    if capture.scale != 1.0:
        photo = synthetic.rescale(photo, capture.scale)
    if capture.rotation_deg:
        photo = synthetic.rotate(photo, capture.rotation_deg)
    if capture.noise_sigma:
        photo = synthetic.gaussian_noise(photo, capture.noise_sigma, seed=seed)
    return synthetic.to_jpeg(photo.rgb, quality=capture.jpeg_quality, with_private_metadata=False)


def run_study(subjects=SUBJECTS, captures=CAPTURES, measures=STUDIED_MEASURES) -> dict:
    """Analyse every subject under every capture.

    Parameters
    ----------
    subjects : sequence of SkinChange
    captures : sequence of Capture
    measures : sequence of str
        Measure keys; default the catalogue's studied measures
        (:data:`imaging.catalogue.STUDIED_MEASURES`).

    Returns
    -------
    dict
        ``scores``: measure -> ndarray float64 (n_subjects, n_captures) of all-skin values;
        ``region_scores``: region -> measure -> the same matrix of that region's values (the
        regions of :data:`imaging.catalogue.REGION_NAMES`); ``quality_ok``: ndarray bool
        (n_subjects, n_captures); ``color_reference``: list of lists of str.
    """
    from imaging.analysis import analyze

    def empty() -> np.ndarray:
        return np.full((len(subjects), len(captures)), np.nan)

    scores = {m: empty() for m in measures}
    region_scores = {region: {m: empty() for m in measures} for region in REGION_NAMES}
    quality_ok = np.zeros((len(subjects), len(captures)), bool)
    references = []
    for i, change in enumerate(subjects):
        photo = edited_photo(change)
        row = []
        for j, capture in enumerate(captures):
            result = analyze(recapture(photo, capture, seed=100 * i + j))
            for m in measures:
                value = None if result.metrics is None else result.metrics.get(m)
                scores[m][i, j] = np.nan if value is None else value
                for region, region_matrix in region_scores.items():
                    value = None if result.regions is None else result.regions.get(region, {}).get(m)
                    region_matrix[m][i, j] = np.nan if value is None else value
            quality_ok[i, j] = result.quality.ok
            row.append(result.color_reference)
        references.append(row)
    return {"scores": scores, "region_scores": region_scores, "quality_ok": quality_ok,
            "color_reference": references}
