"""One photo in, measurements out: the orchestration of the imaging pipeline.

:func:`analyze` runs, in order (each stage's wall time is reported in ``timings_ms``):

1. ``decode``      :func:`imaging.decode.decode_image` at full resolution (orientation, ICC -> sRGB).
2. ``face``        :func:`imaging.face.detect_face` on an area-downscaled overview (long side
                   :data:`OVERVIEW_LONG_SIDE`), coordinates scaled back to the full photo.
3. ``quality``     :func:`imaging.quality.assess_quality` on the same overview (as
                   :func:`imaging.quality.quality_gate` does at upload), with the baseline's face
                   geometry for a follow-up; when a light-colour check failed and step 4 found
                   a ColorChecker, judged again on the chart-corrected overview
                   (:func:`imaging.quality.with_chart_light`, as the upload gate does). A photo that fails the gate is still measured
                   when a face was found; ``quality.ok`` is false so consumers can flag it.
4. ``colour``      :func:`imaging.colour.estimate_colour_correction` on the whole photo (the
                   detection copy) with the head (face plus a margin for hair, ears and neck)
                   excluded: skin is never a white reference.
5. ``canonical``   :func:`imaging.align.to_canonical`: similarity warp into the 768x1024 canonical
                   frame; for a follow-up, ECC registration to the baseline's canonical image.
6. ``regions``     :func:`imaging.regions.region_masks` on the canonical face.
7. ``measures``    :func:`imaging.colour.apply_colour_correction` then
                   :func:`imaging.measures.measure_regions` (per region and all skin).
8. ``overlays``    (only with ``want_overlays``) PNG maps from :mod:`imaging.overlays`.

No face: quality fails with ``no_face``; ``metrics``, ``regions``, ``geometry`` are null.

A follow-up needs its baseline's canonical image and face geometry: :class:`BaselineReference`,
made by :func:`baseline_reference_from` and serialised with :meth:`BaselineReference.to_bytes`
(a PNG the backend can store next to the photo).
"""

from __future__ import annotations

import functools
import io
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from imaging import _limits  # noqa: F401  (pixel caps before cv2)
from imaging.align import CanonicalFace, canonical_landmarks, to_canonical
from imaging.catalogue import REFERENCE_REGIONS, REGION_NAMES
from imaging.colour import ColourCorrection, apply_colour_correction, apply_tone_curves, estimate_colour_correction
from imaging.decode import decode_image
from imaging.face import FaceGeometry, detect_face
from imaging.geometry import CANONICAL_PX_PER_MM, SKIN_MASK_NAME, invert_affine
from imaging.measures import CHOOSE_REFERENCE, compute_maps, measure_regions, reference_fill_in, to_json_safe
from imaging.quality import QualityReport, assess_quality, with_chart_light
from imaging.raster import downscale_long_side
from imaging.colour_space import srgb_to_linear
from imaging.regions import follow_up_masks, region_masks
from imaging.catalogue import MEASURES, Comparability
from imaging.version import ALGORITHM_VERSION

import cv2  # noqa: E402
from PIL import Image, PngImagePlugin  # noqa: E402

#: Long side (px) of the overview the face is found on and the quality checks and the colour
#: estimate run on (face.detect_face: ~1000 px is plenty).
OVERVIEW_LONG_SIDE = 1024
#: Head area excluded from the white-balance reference, in inter-ocular distances: an ellipse
#: centred this far below the eye midpoint, with these semi-axes (covers hair, ears, neck).
HEAD_EXCLUSION_CENTRE_BELOW_EYES_IOD = 0.5
HEAD_EXCLUSION_SEMI_AXES_IOD = (1.6, 2.6)
#: Format tag of serialised baseline references (bump when the layout changes). Version 2 adds
#: the geometry's mouth measures and fine texture (expression and smoothing checks).
BASELINE_FORMAT = "skintrack-baseline/2"
#: Formats still read: a version-1 geometry lacks the new fields (they read as NaN and the
#: checks that need them are skipped).
READABLE_BASELINE_FORMATS = frozenset({"skintrack-baseline/1", BASELINE_FORMAT})
_BASELINE_PNG_KEY = "skintrack-baseline"


@dataclass(frozen=True)
class BaselineReference:
    """What a follow-up photo needs of its patient's baseline photo.

    Attributes
    ----------
    canonical_rgb : ndarray, uint8 (1024, 768, 3)
        The baseline face in the canonical frame, sRGB (before colour correction).
    canonical_valid : ndarray, bool (1024, 768)
        True where the canonical pixel came from inside the baseline photo.
    to_canonical : ndarray, float64 (2, 3)
        Baseline photo px -> canonical px.
    source_size : (int, int)
        (width, height) of the baseline photo, px.
    geometry : FaceGeometry
        The baseline's face geometry in its photo's px (for the framing/pose comparison of the
        quality gate).
    algorithm_version : str
        Version that produced the reference (region placement depends on it).
    camera : (str or None, str or None) or None
        The baseline photo's camera (EXIF make and model, or what the caller said): a follow-up
        from another camera renders colour differently (tone curve, colour matrix), so its colour
        contrasts are comparable only when both photos had a colour chart.
    color_reference : str or None
        The baseline's colour reference (``colorchecker`` ...): contrasts are computed with the
        chart's tone curves undone only when there is a chart, so a follow-up is comparable only
        when it had a chart exactly when the baseline did.
    redness_reference : str or None
        The baseline's internal reference region of redness (:data:`imaging.catalogue.REFERENCE_REGIONS`):
        a follow-up measures its redness against the same region, so both are contrasts against the
        same skin. None: the baseline had none, so its follow-ups have none either (a series never
        mixes regions). The backend stores references per algorithm version, so none predates the field.
    tone_curves : ndarray float64 (3, 3) or None
        The tone curves the baseline's contrasts were read with (:func:`contrast_tone_curves`), for
        reading them again (:func:`imaging.measures.reference_fill_in`).
    """

    canonical_rgb: np.ndarray
    canonical_valid: np.ndarray
    to_canonical: np.ndarray
    source_size: tuple[int, int]
    geometry: FaceGeometry
    algorithm_version: str = ALGORITHM_VERSION
    camera: tuple[str | None, str | None] | None = None
    color_reference: str | None = None
    redness_reference: str | None = None
    tone_curves: np.ndarray | None = None

    @functools.cached_property
    def region_masks(self) -> dict[str, np.ndarray]:
        """The baseline's region masks (:func:`imaging.regions.region_masks`), computed once."""
        return region_masks(self.canonical_face())

    def canonical_face(self) -> CanonicalFace:
        """The baseline as an :class:`imaging.align.CanonicalFace` (scale 1)."""
        return CanonicalFace(self.canonical_rgb, self.canonical_valid, self.to_canonical,
                             invert_affine(self.to_canonical), self.source_size, 1.0,
                             **canonical_landmarks(self.to_canonical, self.geometry))

    def to_bytes(self) -> bytes:
        """Serialise as a lossless RGBA PNG (alpha = validity) with the geometry in a text chunk.

        Returns
        -------
        bytes
            About 1 MB for a typical face; contains no photo metadata (no EXIF, GPS, serial).
        """
        rgba = np.dstack([self.canonical_rgb, np.where(self.canonical_valid, 255, 0).astype(np.uint8)])
        info = PngImagePlugin.PngInfo()
        info.add_text(_BASELINE_PNG_KEY, json.dumps({
            "format": BASELINE_FORMAT,
            "algorithm_version": self.algorithm_version,
            "to_canonical": np.asarray(self.to_canonical, np.float64).tolist(),
            "source_size": list(self.source_size),
            "geometry": _geometry_fields(self.geometry),
            "camera": None if self.camera is None else list(self.camera),
            "color_reference": self.color_reference,
            "redness_reference": self.redness_reference,
            "tone_curves": None if self.tone_curves is None else np.asarray(self.tone_curves, np.float64).tolist(),
        }))
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", pnginfo=info, compress_level=1)
        return buffer.getvalue()

    @staticmethod
    def geometry_from_bytes(data: bytes) -> FaceGeometry:
        """Only the baseline's face geometry from what :meth:`to_bytes` wrote, without decoding pixels.

        The same geometry as ``from_bytes(data).geometry`` (the text chunk precedes the image
        data), for the upload's quality gate, which needs nothing else.

        Raises
        ------
        ValueError
            When ``data`` is not a serialised baseline reference of this format.
        """
        try:
            with Image.open(io.BytesIO(data)) as image:
                meta = json.loads(image.info[_BASELINE_PNG_KEY])
                mode = image.mode
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ValueError("not a skintrack baseline reference") from exc
        if not isinstance(meta, dict) or meta.get("format") not in READABLE_BASELINE_FORMATS or mode != "RGBA":
            raise ValueError("unsupported baseline reference format")
        try:
            return _geometry_from_fields(meta["geometry"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ValueError("damaged baseline reference geometry") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> "BaselineReference":
        """Load what :meth:`to_bytes` wrote.

        Raises
        ------
        ValueError
            When ``data`` is not a serialised baseline reference of this format.
        """
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
            meta = json.loads(image.text[_BASELINE_PNG_KEY])
        except (OSError, KeyError, ValueError, AttributeError) as exc:
            raise ValueError("not a skintrack baseline reference") from exc
        if meta.get("format") not in READABLE_BASELINE_FORMATS or image.mode != "RGBA":
            raise ValueError("unsupported baseline reference format")
        rgba = np.asarray(image)
        return cls(
            canonical_rgb=np.ascontiguousarray(rgba[..., :3]),
            canonical_valid=rgba[..., 3] > 127,
            to_canonical=np.asarray(meta["to_canonical"], np.float64),
            source_size=tuple(int(v) for v in meta["source_size"]),
            geometry=_geometry_from_fields(meta["geometry"]),
            algorithm_version=str(meta["algorithm_version"]),
            camera=None if meta.get("camera") is None else tuple(meta["camera"]),
            color_reference=meta.get("color_reference"),
            redness_reference=_reference_region_or_none(meta.get("redness_reference")),
            tone_curves=_tone_curves_or_none(meta.get("tone_curves")),
        )


@dataclass
class AnalysisResult:
    """Everything :func:`analyze` found out about one photo.

    ``to_dict()`` is the JSON contract; the array attributes are for overlays, baselines and
    tests and are not serialised.

    Attributes
    ----------
    quality : QualityReport
    color_reference : str
        ``colorchecker``, ``neutral-background`` or ``none``.
    colour_correction : ColourCorrection or None
        None when no face was found (nothing measured).
    metrics : dict or None
        All measured skin: headline ``redness``, ``pigmentation``, ``texture`` and details
        (see :mod:`imaging.measures`); None without a face.
    regions : dict or None
        Region name -> the same measures; None without a face.
    geometry : FaceGeometry or None
        In the full-resolution photo's px.
    decoded_size : (int, int)
        (width, height) of the photo after orientation, px.
    registration : dict or None
        ECC registration to the baseline (see :class:`imaging.align.Registration`).
    timings_ms : dict[str, float]
        Wall time per stage and ``total``.
    canonical : CanonicalFace or None
    masks : dict[str, ndarray bool] or None
        Region masks in the canonical frame (with ``skin``).
    overlays : dict[str, bytes]
        PNG overlays by name (empty unless requested).
    camera : (str or None, str or None) or None
        EXIF (make, model) of the photo.
    comparability : dict
        Measure key -> whether its values can be compared with the baseline's and other
        comparable photos' (:func:`comparability`); empty without a face.
    redness_reference : str or None
        The region redness and delta a* are contrasts against (``forehead``, or ``chin`` when the
        baseline's forehead was hidden; :data:`imaging.catalogue.REFERENCE_REGIONS`); None without a
        face or when the baseline had no measurable reference region.
    """

    quality: QualityReport
    color_reference: str
    colour_correction: ColourCorrection | None
    metrics: dict | None
    regions: dict | None
    geometry: FaceGeometry | None
    decoded_size: tuple[int, int]
    registration: dict | None
    timings_ms: dict[str, float]
    canonical: CanonicalFace | None = None
    masks: dict | None = None
    overlays: dict[str, bytes] = field(default_factory=dict)
    algorithm_version: str = ALGORITHM_VERSION
    camera: tuple[str | None, str | None] | None = None
    comparability: dict = field(default_factory=dict)
    redness_reference: str | None = None

    def to_dict(self) -> dict:
        """The JSON contract (plain Python values, NaN -> None)."""
        return to_json_safe({
            "quality": quality_to_dict(self.quality),
            "color_reference": self.color_reference,
            "redness_reference": self.redness_reference,
            "color_correction": None if self.colour_correction is None else {
                "model": self.colour_correction.model,
                "details": self.colour_correction.details,
            },
            "algorithm_version": self.algorithm_version,
            "metrics": self.metrics,
            "regions": self.regions,
            "geometry": None if self.geometry is None else geometry_to_dict(self.geometry),
            "image_size": list(self.decoded_size),
            "registration": self.registration,
            "comparability": self.comparability,
            "overlays": sorted(self.overlays),
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        })


def _reference_region_or_none(value) -> str | None:
    """A stored redness reference region, or None (the baseline had none)."""
    if value is None:
        return None
    if value not in REFERENCE_REGIONS:
        raise ValueError(f"damaged baseline reference: redness reference {value!r}")
    return str(value)


def _tone_curves_or_none(value) -> np.ndarray | None:
    """Stored tone curves (3 x 3 floats), or None."""
    if value is None:
        return None
    try:
        curves = np.asarray(value, np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("damaged baseline reference: tone curves") from exc
    if curves.shape != (3, 3) or not np.all(np.isfinite(curves)):
        raise ValueError("damaged baseline reference: tone curves")
    return curves


def _geometry_fields(geometry: FaceGeometry) -> dict:
    return to_json_safe(asdict(geometry))


def _geometry_from_fields(fields: dict) -> FaceGeometry:
    def pair(value):
        return tuple(float(v) for v in value)

    values = dict(fields)
    for key in ("box", "right_eye", "left_eye", "mouth"):
        values[key] = pair(values[key])
    # Points a geometry stored before 2026.12.8 lacks (or JSON's null for NaN) read as NaN.
    for key in ("lower_lip", "chin"):
        point = values.get(key)
        values[key] = (math.nan, math.nan) if point is None else tuple(math.nan if v is None else float(v) for v in point)
    values["image_size"] = tuple(int(v) for v in values["image_size"])
    # JSON stores NaN as null; fields a version-1 reference lacks read as NaN too.
    for key in ("eye_mouth_ratio", "face_score", "mouth_width_ratio", "mouth_open_ratio", "fine_texture"):
        values[key] = float("nan") if values.get(key) is None else float(values[key])
    return FaceGeometry(**values)


def geometry_to_dict(geometry: FaceGeometry) -> dict:
    """Face geometry as JSON: box, eyes, mouth (px of the photo), pose (degrees), IOD (px)."""
    fields = _geometry_fields(geometry)
    fields["iod_px"] = geometry.iod
    return to_json_safe(fields)


def quality_to_dict(report: QualityReport) -> dict:
    """Quality report as JSON: ``ok``, ``problems`` (code, message, value, threshold), ``checks``."""
    return to_json_safe(report.to_dict())


class _StageTimer:
    """Collects wall time per pipeline stage, in ms (the colour stage overlaps quality, canonical
    and regions: it runs on a second thread)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + 1000.0 * (time.perf_counter() - start)

    def timed(self, name: str, function, *args):
        """``function(*args)``, its wall time recorded as stage ``name`` (usable on another thread)."""
        with self.stage(name):
            return function(*args)

    def finish(self) -> dict[str, float]:
        self.timings["total"] = 1000.0 * (time.perf_counter() - self._start)
        return self.timings


def face_on_overview(rgb: np.ndarray) -> tuple[np.ndarray, FaceGeometry | None, FaceGeometry | None]:
    """Find the face on an area-downscaled overview of a photo.

    Parameters
    ----------
    rgb : ndarray uint8 HxWx3 sRGB, full resolution

    Returns
    -------
    overview : ndarray uint8, long side <= OVERVIEW_LONG_SIDE px
    in_overview : FaceGeometry in overview px, or None when no face was found
    in_photo : the same geometry in ``rgb`` px, or None
    """
    overview, factor = downscale_long_side(rgb, OVERVIEW_LONG_SIDE)
    found = detect_face(overview)
    return overview, found, None if found is None else found.scaled(1.0 / factor)


def locate_face(rgb: np.ndarray) -> FaceGeometry | None:
    """Face geometry in ``rgb`` px (found on an overview), or None when there is no face."""
    return face_on_overview(rgb)[2]


def head_exclusion_mask(shape: tuple[int, int], geometry: FaceGeometry) -> np.ndarray:
    """Bool mask of the head (face, hair, ears, neck) to keep out of the white balance.

    Parameters
    ----------
    shape : (height, width) of the photo
    geometry : FaceGeometry in that photo's px

    Returns
    -------
    ndarray bool (height, width), True inside a tilted ellipse around the head.
    """
    mask = np.zeros(shape, np.uint8)
    iod = geometry.iod
    mid = np.asarray(geometry.eye_midpoint)
    roll = np.radians(geometry.roll_deg)
    # "Below the eyes" follows the head's tilt.
    centre = mid + HEAD_EXCLUSION_CENTRE_BELOW_EYES_IOD * iod * np.array([-np.sin(roll), np.cos(roll)])
    axes = tuple(int(round(a * iod)) for a in HEAD_EXCLUSION_SEMI_AXES_IOD)
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), axes, geometry.roll_deg, 0, 360, 1, -1)
    return mask.astype(bool)


def registration_to_dict(canonical: CanonicalFace) -> dict | None:
    """The registration outcome of a canonical face as JSON (None when not registered)."""
    if canonical.registration is None:
        return None
    return to_json_safe(asdict(canonical.registration))


def analyze(data: bytes, *, baseline: BaselineReference | None = None, want_overlays: bool = False,
            camera: tuple[str | None, str | None] | None = None) -> AnalysisResult:
    """Analyse one face photo.

    Parameters
    ----------
    data : bytes
        The uploaded photo (JPEG, PNG, WebP, HEIC/HEIF).
    baseline : BaselineReference or None
        The patient's baseline for a follow-up: the face is registered onto it so the same
        skin is measured, and the quality gate compares pose and framing with it.
    camera : (str or None, str or None), optional
        Which camera took the photo when the bytes no longer say (a stored photo whose EXIF was
        removed); default the EXIF make and model of ``data``.
    want_overlays : bool
        Render the PNG overlays (``redness``, ``pigment_spots``, ``wrinkles``, ``regions``
        and, with a baseline, ``before_after``).

    Returns
    -------
    AnalysisResult

    Raises
    ------
    imaging.errors.ImageError
        For bytes that cannot be decoded or are refused (code says why).
    """
    timer = _StageTimer()
    with timer.stage("decode"):
        decoded = decode_image(data)
    decoded_camera = tuple(camera) if camera is not None else (decoded.camera_make, decoded.camera_model)
    with timer.stage("face"):
        overview, found, geometry = face_on_overview(decoded.rgb)
    # The quality gate runs on the overview, like quality_gate() at upload (a ~1000 px decode):
    # same verdict, and no full-resolution warp.
    overview_image = replace(decoded, rgb=overview, scale=decoded.scale * overview.shape[1] / decoded.rgb.shape[1])
    baseline_geometry = baseline.geometry if baseline is not None else None
    if geometry is None:
        with timer.stage("quality"):
            quality = assess_quality(overview_image, found, baseline_geometry)
        return AnalysisResult(quality, "none", None, None, None, None, decoded.size, None, timer.finish())
    # The colour estimate (chart detection included, about a quarter of the work) needs only the
    # overview and the face position, so it runs on a second thread while the quality checks,
    # the canonical warp and the region masks run here: OpenCV and numpy release the GIL, and
    # every value is computed exactly as in sequence.
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The whole photo at the overview scale: chart and background are large, uniform areas,
        # and area-averaging only lowers their noise (both estimators work at ~1024 px anyway).
        colour_job = pool.submit(timer.timed, "colour", estimate_colour_correction, overview,
                                 head_exclusion_mask(overview.shape[:2], found))
        with timer.stage("quality"):
            quality = assess_quality(overview_image, found, baseline_geometry)
        with timer.stage("canonical"):
            canonical = to_canonical(decoded.rgb, geometry,
                                     baseline=None if baseline is None else baseline.canonical_face())
        del decoded  # the full-resolution pixels are not needed past this point (peak memory)
        registered = canonical.registration is not None and canonical.registration.converged
        with timer.stage("regions"):
            if registered:
                masks = follow_up_masks(baseline.region_masks, baseline.canonical_rgb, canonical)
            else:
                # Unregistered (its measures are then not comparable): this photo's own placement.
                masks = region_masks(canonical)
        correction = colour_job.result()
    with timer.stage("quality"):
        # A cast the chart corrects is no reason to refuse: the upload gate's rule.
        quality = with_chart_light(quality, overview_image, found, baseline_geometry, correction)
    with timer.stage("measures"):
        linear = apply_colour_correction(canonical.rgb, correction)
        maps = compute_maps(linear, masks[SKIN_MASK_NAME], CANONICAL_PX_PER_MM,
                            contrast_rgb=contrast_image(canonical.rgb, contrast_tone_curves(correction)))
        # A follow-up measures redness against its baseline's reference region (none when the
        # baseline had none), filled in from the baseline where it is hidden now (registered only:
        # the same pixels), read as the baseline's own contrasts were.
        reference = CHOOSE_REFERENCE if baseline is None else baseline.redness_reference
        fill_in = 0.0
        if registered and reference is not None:
            fill_in = reference_fill_in(contrast_image(baseline.canonical_rgb, baseline.tone_curves),
                                        baseline.region_masks[reference], masks[reference], CANONICAL_PX_PER_MM)
        measured = measure_regions(linear, masks, CANONICAL_PX_PER_MM, maps=maps, reference=reference,
                                   fill_in=fill_in)
    overlays: dict[str, bytes] = {}
    if want_overlays:
        with timer.stage("overlays"):
            overlays = render_overlays(canonical, linear, masks, maps, baseline)
    camera = (decoded_camera[0], decoded_camera[1])
    return AnalysisResult(
        quality=quality,
        color_reference=correction.reference,
        colour_correction=correction,
        metrics=measured["metrics"],
        regions={name: measured["regions"][name] for name in REGION_NAMES if name in measured["regions"]},
        redness_reference=measured["reference"],
        geometry=geometry,
        decoded_size=(int(canonical.source_size[0]), int(canonical.source_size[1])),
        registration=registration_to_dict(canonical),
        timings_ms=timer.finish(),
        canonical=canonical,
        masks=masks,
        overlays=overlays,
        camera=camera,
        comparability=comparability(quality, correction.reference, baseline, camera,
                                    None if baseline is None else registered,
                                    cheek_colour_change(canonical.rgb, baseline, masks) if registered else None),
    )


def render_overlays(canonical: CanonicalFace, linear: np.ndarray, masks: dict, maps,
                    baseline: BaselineReference | None) -> dict[str, bytes]:
    """PNG overlays of one analysed face over its canonical photo (:func:`imaging.overlays.render_all`).

    With a baseline, ``before_after`` shows the baseline and this registered follow-up side by
    side with the same regions drawn on both.
    """
    from imaging import overlays

    return overlays.render_all(canonical, linear, masks, maps,
                               baseline_canonical=None if baseline is None else baseline.canonical_rgb)


def baseline_reference_from(source: AnalysisResult | bytes) -> BaselineReference:
    """The reference a follow-up needs, from a baseline's analysis result or its photo bytes.

    Parameters
    ----------
    source : AnalysisResult (from :func:`analyze` of the baseline) or bytes (the baseline photo,
        analysed here)

    Returns
    -------
    BaselineReference

    Raises
    ------
    ValueError
        When no face was found in the baseline photo (there is nothing to register to).
    imaging.errors.ImageError
        When ``source`` is bytes that cannot be decoded.
    """
    result = analyze(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    if result.canonical is None or result.geometry is None:
        raise ValueError("no face was found in the baseline photo")
    canonical = result.canonical
    return BaselineReference(
        canonical_rgb=canonical.rgb,
        canonical_valid=canonical.valid,
        to_canonical=canonical.to_canonical,
        source_size=canonical.source_size,
        geometry=result.geometry,
        algorithm_version=result.algorithm_version,
        camera=result.camera,
        color_reference=result.color_reference,
        redness_reference=result.redness_reference,
        tone_curves=None if result.colour_correction is None else contrast_tone_curves(result.colour_correction),
    )


def contrast_tone_curves(correction: ColourCorrection) -> np.ndarray | None:
    """The tone curves :func:`contrast_image` undoes for a photo: the chart's, else None."""
    return correction.tone_curves if correction.reference == "colorchecker" else None


def contrast_image(canonical_rgb: np.ndarray, tone_curves: np.ndarray | None) -> np.ndarray:
    """The linear image the within-photo contrast measures read (:func:`imaging.measures.compute_maps`).

    The photo's own linearised sRGB: a global white-balance gain cancels in within-photo
    optical-density contrasts, while a colour matrix (chart) or the neutral-background estimate
    would add their own noise and clipping. With a ColorChecker, the per-channel tone curves
    measured on its neutral patches (:func:`contrast_tone_curves`) are undone first: another
    phone's tone curve scales every contrast, and only a reference in the frame can measure it.
    """
    linear = srgb_to_linear(canonical_rgb)
    return linear if tone_curves is None else apply_tone_curves(linear, tone_curves)


#: Largest change, from the baseline, of the skin-colour difference between the two cheeks
#: (log-chromaticity units: log R/G and log B/G, Euclidean) that still counts as the same light.
#: Measured on the real-face study: ordinary recaptures (exposure, white balance, light from one
#: side, overhead, tungsten) change it by < 0.05, daylight on one side and a lamp on the other by
#: 0.3-0.45.
MAX_CHEEK_COLOUR_CHANGE = 0.2


def cheek_colour_difference(rgb: np.ndarray, masks: dict) -> np.ndarray | None:
    """Left minus right cheek skin chromaticity (median log R/G, log B/G) of a canonical sRGB face.

    None when either cheek has no measured pixels. A light whose colour differs across the face
    moves it; a uniform exposure or white-balance change does not (it cancels in the difference).
    """
    left, right = masks.get("left_cheek"), masks.get("right_cheek")
    if left is None or right is None or not left.any() or not right.any():
        return None
    logs = np.log(np.maximum(srgb_to_linear(rgb), np.float32(1e-4)))

    def chromaticity(mask):
        v = logs[mask]
        return np.array([np.median(v[:, 0] - v[:, 1]), np.median(v[:, 2] - v[:, 1])])

    return chromaticity(left) - chromaticity(right)


def cheek_colour_change(canonical_rgb: np.ndarray, baseline: BaselineReference, masks: dict) -> float | None:
    """How far the light's colour across the face moved from the baseline's (see
    :data:`MAX_CHEEK_COLOUR_CHANGE`), on the same skin (the follow-up's masks)."""
    now = cheek_colour_difference(canonical_rgb, masks)
    then = cheek_colour_difference(baseline.canonical_rgb, masks)
    if now is None or then is None:
        return None
    return float(np.hypot(*(now - then)))


def _known(camera) -> bool:
    """A camera identity to compare: something said who made it or which model it is."""
    return camera is not None and any(part for part in camera)


def comparability(quality: QualityReport, color_reference: str, baseline: BaselineReference | None,
                  camera: tuple | None, registered: bool | None, cheek_change: float | None = None) -> dict:
    """Per measure: can this photo's value be compared with the baseline's, and if not, why.

    Parameters
    ----------
    quality : the photo's quality report
    color_reference : ``colorchecker``, ``neutral-background`` or ``none``
    baseline : the baseline reference of a follow-up, None for a baseline
    camera : EXIF (make, model) of this photo
    registered : whether ECC registration onto the baseline converged (None for a baseline)
    cheek_change : :func:`cheek_colour_change` of a registered follow-up, else None

    Returns
    -------
    dict
        measure key -> ``{"comparable": bool, "reasons": [code, ...], "mdc95": float or None}``
        with codes of :data:`imaging.catalogue.NOT_COMPARABLE` and the all-skin MDC95 of the published
        recapture study (:mod:`imaging.reliability`) when it was measured with this version.
    """
    from imaging.reliability import published_table

    table = published_table()
    texture_ok = bool(getattr(quality, "texture_comparable", True))
    out = {}
    for measure in MEASURES:
        reasons = []
        if not quality.ok:
            reasons.append("quality_gate")
        if measure.comparability is Comparability.NEEDS_COLOUR_REFERENCE and color_reference != "colorchecker":
            reasons.append("no_colour_reference")
        if baseline is not None and registered is False:
            reasons.append("not_registered")
        if measure.comparability is Comparability.WITHIN_PHOTO and baseline is not None:
            with_chart = color_reference == "colorchecker"
            if with_chart != (baseline.color_reference == "colorchecker"):
                reasons.append("colour_reference_differs")
            elif not with_chart and _known(baseline.camera) and _known(camera) and tuple(baseline.camera) != tuple(camera):
                reasons.append("other_camera")
        if measure.group == "texture" and not texture_ok:
            reasons.append("texture_not_comparable")
        if measure.group == "redness" and cheek_change is not None and cheek_change > MAX_CHEEK_COLOUR_CHANGE:
            reasons.append("light_colour_differs")
        entry = table.entry(measure.key) if table is not None else None
        out[measure.key] = {"comparable": not reasons, "reasons": reasons,
                            "mdc95": None if entry is None else entry.mdc95}
    return out
