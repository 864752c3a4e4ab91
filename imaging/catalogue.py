"""What the library reports, defined once: every measure and every face region.

This module is the documented source of each measure's meaning: key, label, unit, formula,
range, direction, reference and what a value needs to be compared across photos.
:mod:`imaging.measures` and :mod:`imaging.texture` implement the formulas; the API schemas
(series measures and regions), the backend's progress series, charts, patient summary and
dashboard, and the README measures table read them from here (a test keeps the README table and
the measured keys in step). The per-measure listing below is generated from :data:`MEASURES`.

Measures
--------
:class:`Measure` fields:

- ``key``: name in ``metrics`` / ``regions`` of :meth:`imaging.analysis.AnalysisResult.to_dict`
  (and in stored results, the research export and the API).
- ``label``: short human label ("Redness"), sentence case.
- ``group``: ``redness``, ``pigmentation`` or ``texture`` (:data:`GROUPS`).
- ``headline``: one of the three headline numbers (charted, on the dashboard, in the patient
  summary); each rises with its own kind of change.
- ``unit``: as displayed and exported ("centi-OD"); ``ucum``: the UCUM code for FHIR
  (``"1"`` for dimensionless values and fractions, annotations in braces such as ``{OD}`` for
  optical densities, ``[arb'U]`` for arbitrary units, None where none applies).
- ``formula``, ``value_range``, ``reference``: how it is computed, typical values, literature.
- ``direction``: what a HIGHER value means ("redder (more blood)").
- ``worse_when``: ``"higher"`` or ``"lower"`` when that change means worse skin (flags of a
  change beyond the MDC in the worse direction), None when neither does.
- ``comparability``: what a value needs to be compared across photos (:class:`Comparability`).
  Set from the measures' definitions and the reliability study; to be revisited with measured
  evidence per colour reference.
- ``decimals``: display precision (decimal places).
- ``studied``: its test-retest reliability is measured by the recapture study
  (``imaging/testing/recapture_study.py``, ``imaging/reliability_table.json``), so it has an
  MDC95 and can be asked for as a progress series (:data:`STUDIED_MEASURES`).
- ``notes``: caveats.

``glcm`` is a family: one value per IBSI feature (:data:`imaging.texture.GLCM_FEATURE_NAMES`),
stored as ``glcm.<feature>``. ``pixel_count`` (measured pixels) accompanies every entry of the
analysis but is not a measure.

Face regions
------------
:class:`Region` fields: ``key`` (``left_cheek``), ``label`` ("Left cheek"), ``in_words``
(for text addressed to the patient: "your left cheek"). Left/right are the SUBJECT's.
:data:`FACE_REGIONS` are the five measured regions in reporting order (their placement is in
:mod:`imaging.regions`); :data:`ALL_SKIN` is every measured skin pixel (the union of the regions,
``metrics`` of an analysis). Each region carries its SNOMED CT body-site code (``snomed_code``,
``snomed_display``; codes checked against published FHIR value sets and DICOM CID 4028/4029/4061)
and, for the cheeks, the SNOMED CT laterality qualifier (``laterality_code``: 7771000 Left,
24028007 Right), as the FHIR export writes them. The API
and the database CHECK constraints use these keys: change them only with a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Measure groups, in reporting order.
GROUPS = ("redness", "pigmentation", "texture")


class Comparability(StrEnum):
    """What a measure's value needs to be compared across photos (e.g. visits of a patient).

    ``within_photo``
        Built only from differences within the photo (redness of a region against the
        forehead, spots against their surroundings, the spread of pigment, line and pore
        structure): a global exposure change or white-balance gain cancels, so values of one
        camera are comparable across photos without a colour chart (measured by the recapture
        study on real faces: ``bench/reliability.py``). A photo from another camera renders
        contrast with another tone curve, so then a ColorChecker in both photos is needed
        (:func:`imaging.analysis.comparability` says ``other_camera``). That holds for the
        texture measures too: they read luminance contrast, which another tone curve scales
        (on the real-face study another phone's curve moved texture by 0.3-2 times a 4-grade
        change).
    ``needs_colour_reference``
        Absolute colour (CIELAB L*, a*, b*, ITA, melanin and erythema indices, mean chromophore
        densities, fixed-bin L* texture): follows exposure and white balance, which nothing in
        an ordinary photo normalises reliably. Comparable across photos only when each was
        normalised on a ColorChecker (``color_reference == "colorchecker"``); otherwise
        reported, never charted or flagged as change.
    """

    WITHIN_PHOTO = "within_photo"
    NEEDS_COLOUR_REFERENCE = "needs_colour_reference"


@dataclass(frozen=True)
class Measure:
    """The definition of one measure (fields: see the module docstring)."""

    key: str
    label: str
    group: str
    unit: str
    ucum: str | None
    formula: str
    value_range: str
    direction: str
    worse_when: str | None
    reference: str
    comparability: Comparability
    decimals: int
    headline: bool = False
    studied: bool = False
    notes: str = ""

    def describe(self) -> str:
        """The measure as a paragraph of reStructuredText (the listing in this module's docs)."""
        lines = [f"``{self.key}`` - {self.label} ({self.group}{', headline' if self.headline else ''})",
                 f"    Formula: {self.formula}",
                 f"    Units: {self.unit} (UCUM {self.ucum or 'none'}); range: {self.value_range}; "
                 f"higher = {self.direction}.",
                 f"    Comparable across photos: {self.comparability.value}. Reference: {self.reference}."]
        if self.notes:
            lines.append(f"    {self.notes}")
        return "\n".join(lines)


_TSUMURA = ("Tsumura, Haneishi & Miyake, J Opt Soc Am A 16:2169, 1999; Tsumura et al., ACM Trans Graph 22:770, "
            "2003 (fixed vectors, imaging.chromophores)")
_CIE_LAB = "CIE 1976 (L*, a*, b*), CIE 15:2004, D65 white"
_WITHIN = Comparability.WITHIN_PHOTO
_ABSOLUTE = Comparability.NEEDS_COLOUR_REFERENCE

#: Wrinkle lines by a bank of oriented second-derivative (Gabor-like) filters.
_LINE_FILTER_REFERENCE = ("oriented line-filter bank as in Cula et al., Skin Res Technol 19:e243, 2013 and Batool & "
                          "Chellappa, Pattern Recognit 48:642, 2015 (fixed depth threshold, not per image)")

#: Every measure, grouped (redness, pigmentation, texture), each group's headline first.
MEASURES: tuple[Measure, ...] = (
    # --- redness
    Measure("redness", "Redness", "redness", "centi-OD", "10*-2{OD}",
            "100 x (mean haemoglobin density of the region's diffuse skin - that of the reference region's diffuse "
            "skin in the same photo), densities of the Tsumura separation of the photo's own linear light (the "
            "chart's tone curves undone when a ColorChecker is in the frame); a region's diffuse skin leaves out its "
            "20 % lowest densities (specular sheen, with clipped highlights ranked there); the reference region is the "
            "forehead, or the chin when the forehead is hidden (less than 200 mm^2 of it measured: a fringe, a hat, a "
            "headscarf), and a follow-up keeps its baseline's (the photo's redness_reference says which); for all skin: "
            "the other regions' redness averaged, each weighted by its skin pixels; the reference region has no value",
            "unbounded; cheeks of the real-face set -5 to 40 (10th-90th percentile)",
            "redder than the reference region (more blood)", "higher",
            _TSUMURA + "; internal reference site as for delta a* (Takiwaki 1994)", _WITHIN, 1,
            headline=True, studied=True,
            notes="A contrast within the photo: exposure and white balance cancel. A change of the reference region "
                  "itself shows with the opposite sign in every other region; a beard on the chin is part of the chin "
                  "reference, so a chin-referenced series needs the same beard at every visit."),
    Measure("a_star", "a*", "redness", "CIELAB a*", "1", "mean CIELAB a* of the region's pixels",
            "skin ~5-25", "redder", "higher",
            "Takiwaki 1994 (agrees best with instrument erythema readings); " + _CIE_LAB, _ABSOLUTE, 1),
    Measure("delta_a_star", "a* minus reference a*", "redness", "CIELAB a*", "1",
            "region a* minus the reference region's a* of the same photo (internal reference site: the forehead, "
            "or the chin when the forehead is hidden, as for redness); for all skin: skin a* minus reference a*",
            "unbounded; 0 for the reference region", "redder than the reference region", "higher",
            "internal reference site", _ABSOLUTE, 1,
            notes="Cancels part of a residual colour cast, not the exposure dependence of a*. Unlike redness, "
                  "a part of the reference hidden at a follow-up is not filled in from the baseline."),
    Measure("erythema_index", "Erythema index", "redness", "EI a.u.", "[arb'U]",
            "mean of EI = 100 x (log10(1/G) - log10(1/R)) = 100 x log10(R/G) per pixel on linear, "
            "colour-normalised R and G (green is absorbed by blood, red is the pigment-insensitive reference)",
            "unbounded", "redder", "higher",
            "Diffey, Oliver & Farr, Br J Dermatol 111:663, 1984; reviewed in Takiwaki, J Med Invest 44:121, "
            "1998; from camera RGB as in Yamamoto et al., Skin Res Technol 14:26, 2008", _ABSOLUTE, 1,
            notes="A mean log ratio: a white-balance gain shifts it by a constant."),
    Measure("haemoglobin_density", "Haemoglobin density", "redness", "OD", "{OD}",
            "mean haemoglobin density of the Tsumura separation: optical density along the unit "
            "haemoglobin vector", "typical 0.1-0.6", "more blood", "higher", _TSUMURA, _ABSOLUTE, 3,
            notes="Invariant to exposure, not to white balance (a gain adds a constant density)."),
    Measure("red_area_fraction", "Red area fraction", "redness", "fraction 0-1", "1",
            "share of the region's pixels whose haemoglobin density exceeds the median haemoglobin density "
            "of ALL measured skin of the photo by 0.10 OD (fixed margin)", "0-1", "more red patches", "higher",
            "fixed margin over the face's own median", _WITHIN, 3, studied=True,
            notes="A region reddening relative to the rest of the face shows here; a uniform reddening of the "
                  "whole face shows in haemoglobin_density instead."),
    # --- pigmentation
    Measure("pigmentation", "Pigmentation", "pigmentation", "centi-OD", "10*-2{OD}",
            "pigment load: 100 x mean over the region's pixels of max(0, e - 0.06), e = melanin density minus "
            "its local background (masked Gaussian mean, sigma 4 mm) averaged over 0.35 mm (masked Gaussian sigma), "
            "melanin from the Tsumura separation of "
            "the photo's own linear light (the chart's tone curves undone when a ColorChecker is in the frame)",
            ">= 0; even skin < 0.3, visibly spotted > 1", "more or darker spots and patches", "higher",
            _TSUMURA + "; local-contrast spot detection", _WITHIN, 2, headline=True, studied=True,
            notes="Local contrast only: an even darkening or lightening of the whole region (tan) is not counted; "
                  "melanin_density and ITA report it with a colour chart."),
    Measure("l_star", "L*", "pigmentation", "CIELAB L* 0-100", "1", "mean CIELAB L* of the region's pixels",
            "0-100", "lighter", "lower", _CIE_LAB, _ABSOLUTE, 1),
    Measure("b_star", "b*", "pigmentation", "CIELAB b*", "1", "mean CIELAB b* of the region's pixels",
            "unbounded", "yellower", None, _CIE_LAB, _ABSOLUTE, 1),
    Measure("ita_deg", "ITA", "pigmentation", "degrees", "deg",
            "Individual Typology Angle of the region means, ITA = atan2(L* - 50, b*) x 180 / pi",
            "Del Bino bands: > 55 very light ... < -30 dark", "lighter (LOWER = darker, more pigmented)", "lower",
            "Chardon, Cretois & Hourseau, Int J Cosmet Sci 13:191, 1991; Del Bino et al., Pigment Cell Res "
            "19:606, 2006 (bands)", _ABSOLUTE, 1, notes="Charted raw (not inverted)."),
    Measure("melanin_index", "Melanin index", "pigmentation", "a.u.", "[arb'U]",
            "mean of MI = 100 x log10(1/R) per pixel on linear, colour-normalised R", ">= 0", "darker",
            "higher", "Diffey, Oliver & Farr 1984; Takiwaki 1998 (narrow-band reflectance meters)", _ABSOLUTE, 1,
            notes="Also rises with redness and shading (cross-talk, as with narrow-band meters)."),
    Measure("melanin_density", "Melanin density", "pigmentation", "OD", "{OD}",
            "mean melanin density of the Tsumura separation: optical density along the unit melanin vector",
            "unbounded", "more melanin", "higher", _TSUMURA, _ABSOLUTE, 3,
            notes="Invariant to exposure, not to white balance (a gain adds a constant density)."),
    Measure("spot_count", "Pigment spots", "pigmentation", "count", "1",
            "connected areas (8-connectivity) where melanin density exceeds its local background (masked "
            "Gaussian mean, sigma 4 mm; the difference averaged over 0.35 mm) by 0.06 OD, with equivalent diameter "
            ">= 1 mm (no upper limit, so spots "
            "merging into a patch never make pigment vanish); counted if any spot pixel lies in the region",
            ">= 0", "more spots (touching spots count once)", "higher", "local-contrast spot detection", _WITHIN, 0),
    Measure("spot_area_fraction", "Spot area fraction", "pigmentation", "fraction 0-1", "1",
            "spot pixels (as for spot_count) / region pixels", "0-1", "more spotted area", "higher",
            "local-contrast spot detection", _WITHIN, 3, studied=True),
    Measure("melanin_spread", "Melanin spread", "pigmentation", "OD", "{OD}",
            "robust SD (1.4826 x median absolute deviation) of melanin density in the region", ">= 0",
            "less even pigmentation", "higher", "evenness as a robust spread", _WITHIN, 3, studied=True),
    # --- texture
    Measure("texture", "Texture", "texture", "mm/cm^2", "mm/cm2",
            "= wrinkle_density_mm_per_cm2: length of lines (ridges of luminance optical density, long and thin) "
            "per area of skin where a line can be read (not next to a pigment spot)",
            ">= 0; all skin of the real-face set's reference photos 0.2-15 (median 2.4; highest with "
            "beards and age spots; 0.2-35 before 2026.12.10 flattened sheen)", "more lines", "higher",
            _LINE_FILTER_REFERENCE, _WITHIN, 1, headline=True, studied=True,
            notes="Not measured as comparable when the gate finds a smoothing (beauty) filter."),
    Measure("roughness", "Roughness", "texture", "centi-OD", "10*-2{OD}",
            "100 x 1.4826 x MAD(DoG(0.3 mm, 1.5 mm) of luminance optical density -log10(Y)) over the region "
            "(exposure-free: a gain adds a constant density)",
            ">= 0; smooth skin 0.3-1, visibly lined or pitted > 1.5", "rougher", "higher",
            "ISO 4287 Rq analogue on the luminance density image, as in photometric skin-texture analysis", _WITHIN, 2,
            studied=True, notes="1 unit ~ 2.3 % local brightness modulation."),
    Measure("wrinkle_density_mm_per_cm2", "Wrinkle density", "texture", "mm/cm^2", "mm/cm2",
            "skeleton length of the lines of luminance optical density -log10(Y) where an oriented line filter "
            "reads a depth above 0.03 OD both with sigma 3 mm and with 1 mm along the line, lines >= 3 mm, per "
            "area of the region's skin where a line is read; the filter: the largest over 24 directions (7.5 degrees apart) of -s^2 d2/dv2 of the "
            "image smoothed by a Gaussian of that sigma along the direction and s = 0.3 mm across it (v), scaled to "
            "read the centre depth of a line as wide as the filter (Gaussian profile, sigma 0.3 mm); the 3 mm "
            "filter averages microrelief and noise down along a line, the 1 mm one keeps a small dark dot or a "
            "line's end from reading as line; no line is read within 1 mm of a pigment spot (a spot's rim is a "
            "curved ridge of density), and that skin is out of the area too, so spots leave the density as it was "
            "(since 2026.12.8; before, the study's 60 spots lowered it by up to 32 % of the rise 40 lines give); "
            "the filter reads the density with bright specks flattened: a pixel more than 0.02 OD brighter than the "
            "median of the 2.2 mm square around it is set to that median less 0.02 OD (sheen on the microrelief, "
            "whose gaps read as lines and which clips with exposure, most on dark skin; a crease is darker than its "
            "sides and is kept; since 2026.12.10); "
            "no value when fewer than 400 px of such skin remain",
            ">= 0", "more lines", "higher", _LINE_FILTER_REFERENCE, _WITHIN, 1,
            notes="The texture headline. Pixel-count length underestimates diagonal lines by up to 29 %, identically in every photo."),
    Measure("pore_density_per_cm2", "Pore density", "texture", "1/cm^2", "/cm2",
            "dark scale-normalised Laplacian-of-Gaussian blobs of luminance optical density, 0.7-1.4 mm (visible pores; "
            "true pores are 0.1-0.5 mm), not on wrinkle lines, per region area", ">= 0", "more pores", "higher",
            "Lindeberg, Int J Comput Vis 30:79, 1998 (scale-normalised blob detection)", _WITHIN, 1),
    Measure("glcm", "GLCM features", "texture", "IBSI feature units", None,
            "IBSI grey-level co-occurrence features of CIELAB L*, fixed bin width 2 L* (50 levels), 4 in-plane "
            "directions at distance 1, features averaged (IBSI '2D, averaged'); stored per feature as glcm.contrast, "
            "glcm.joint_entropy, ...",
            "per feature (IBSI)", "depends on the feature (IBSI)", None,
            "Zwanenburg et al., Radiology 295:328, 2020 (IBSI; reproduces the IBSI digital phantom)", _ABSOLUTE, 3,
            notes="Fixed L* bins: values follow absolute exposure."),
)

#: Why a measure of a photo may not be compared with its baseline's
#: (:func:`imaging.analysis.comparability`): code -> explanation.
NOT_COMPARABLE: dict[str, str] = {
    "quality_gate": "the photo failed the quality gate",
    "no_colour_reference": "absolute colour needs a colour chart in every photo",
    "not_registered": "the photo could not be registered onto the baseline, so regions may not cover the same skin",
    "other_camera": "taken with another camera than the baseline, without a colour chart: another phone's tone "
                    "curve scales every contrast (colour and luminance)",
    "colour_reference_differs": "a colour chart was in only one of the two photos: their contrasts were "
                                "computed differently (the chart's tone curves undone in one only)",
    "texture_not_comparable": "a smoothing (beauty) filter or noise reduction erased fine texture",
    "light_colour_differs": "the light's colour differs between the two sides of the face from the baseline's (e.g. "
                            "a lamp on one side, daylight on the other): contrasts across the face are not comparable",
}

#: Measures by key.
MEASURE_BY_KEY: dict[str, Measure] = {m.key: m for m in MEASURES}
#: The headline measures, in group order.
HEADLINE_MEASURES: tuple[str, ...] = tuple(m.key for m in MEASURES if m.headline)
#: Measures with a published reliability (MDC95), headlines first: what a progress series may show.
STUDIED_MEASURES: tuple[str, ...] = HEADLINE_MEASURES + tuple(m.key for m in MEASURES if m.studied and not m.headline)


@dataclass(frozen=True)
class Region:
    """A face region, or all skin (fields: see the module docstring)."""

    key: str
    label: str
    in_words: str
    snomed_code: str = ""
    snomed_display: str = ""
    laterality_code: str | None = None
    laterality_display: str | None = None


#: SNOMED CT laterality qualifier values (the subject's side).
LEFT, RIGHT = ("7771000", "Left"), ("24028007", "Right")

#: The measured face regions, in reporting order (subject's left/right).
FACE_REGIONS: tuple[Region, ...] = (
    Region("forehead", "Forehead", "your forehead", "52795006", "Forehead structure"),
    Region("left_cheek", "Left cheek", "your left cheek", "60819002", "Cheek structure", *LEFT),
    Region("right_cheek", "Right cheek", "your right cheek", "60819002", "Cheek structure", *RIGHT),
    Region("nose", "Nose", "your nose", "45206002", "Nasal structure"),
    Region("chin", "Chin", "your chin", "30291003", "Chin structure"),
)
#: Every measured skin pixel: the union of the face regions (an analysis's ``metrics``).
ALL_SKIN = Region("all_skin", "All skin", "your face overall", "89545001", "Face structure")
#: Keys of the face regions, in reporting order.
REGION_NAMES: tuple[str, ...] = tuple(r.key for r in FACE_REGIONS)
#: Internal reference regions of redness and delta a*, in order of preference: the first whose
#: diffuse skin is measurable (:func:`imaging.measures.reference_region`). The forehead is the
#: classic internal reference site (Takiwaki 1994); the chin stands in when the forehead is hidden
#: (a fringe, a hat, a headscarf), which would otherwise leave the photo without any redness.
#: Neither is where redness treatments aim first (cheeks and nose). A follow-up keeps its
#: baseline's reference region.
REFERENCE_REGIONS: tuple[str, ...] = ("forehead", "chin")
#: Measures read as a contrast against the photo's reference region (one of
#: :data:`REFERENCE_REGIONS`, recorded as the analysis's ``redness_reference``).
REFERENCE_MEASURES: tuple[str, ...] = ("redness", "delta_a_star")
#: All skin and the face regions by key.
REGION_BY_KEY: dict[str, Region] = {r.key: r for r in (ALL_SKIN, *FACE_REGIONS)}

#: Fitzpatrick skin phototypes (I-VI, as 1..6) grouped in pairs: the groups of the reliability table
#: (noise by skin type), of the clinics' repeatability and of the export's generalisation step.
FITZPATRICK_GROUPS: dict[int, str] = {1: "I-II", 2: "I-II", 3: "III-IV", 4: "III-IV", 5: "V-VI", 6: "V-VI"}
#: The group names, lightest first.
FITZPATRICK_GROUP_NAMES: tuple[str, ...] = ("I-II", "III-IV", "V-VI")


def markdown_table() -> str:
    """The measures as the README's Markdown table (``python -m imaging.catalogue`` prints it)."""
    rows = ["| key | label | formula | units (UCUM) | more means | compare across photos | reference |",
            "|---|---|---|---|---|---|---|"]
    for m in MEASURES:
        key = f"`{m.key}`" + (" (headline)" if m.headline else "")
        unit = m.unit + (f" (`{m.ucum}`)" if m.ucum else "")
        rows.append(f"| {key} | {m.label} | {m.formula} | {unit} | {m.direction} | `{m.comparability}` | "
                    f"{m.reference} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")

__doc__ += "\nMeasure listing\n---------------\n\n" + "\n\n".join(m.describe() for m in MEASURES) + "\n"
