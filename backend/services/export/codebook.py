"""The codebook: one definition per exported variable, used to write the tables and to describe them.

``codebook.csv`` lists every column of every table (type, unit, allowed values, derivation,
source) and the naming of the optional region-patch images. Units, labels and regions of the
measures come from :mod:`imaging.catalogue`, their one definition. The REDCap data dictionary of
the export (:mod:`backend.services.export.redcap`) is generated from these same definitions
(types, choices, ranges, units, descriptions), so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backend.services import progress
from imaging.catalogue import FITZPATRICK_GROUP_NAMES, NOT_COMPARABLE, REFERENCE_REGIONS, REGION_NAMES
from imaging.patches import PATCH_REGIONS
from schemas.clinical import (
    ADVERSE_EVENT_TYPES,
    COURSE_STATUSES,
    DELIVERY_METHODS,
    EXOSOME_SOURCES,
    FACE_SIDES,
    INDICATIONS,
    RATER_ROLES,
    SEVERITIES,
    SEXES,
)
from schemas.progress import MDC_SOURCES


@dataclass(frozen=True)
class Variable:
    """One column of one table, as described in ``codebook.csv``."""

    name: str
    type: str  # string | integer | number | boolean | category
    description: str
    source: str
    unit: str = ""
    allowed: str = ""
    derivation: str = ""
    #: The closed list of values of a category (then ``allowed`` lists them).
    choices: tuple[str, ...] = ()
    #: Inclusive range of an integer or number.
    minimum: float | None = None
    maximum: float | None = None

    @property
    def allowed_values(self) -> str:
        """What ``codebook.csv`` says is allowed: the choices, else the free-text rule."""
        return _choices(self.choices) if self.choices else self.allowed


def _choices(values: Iterable[str]) -> str:
    return "|".join(values)


PARTICIPANT_ID = Variable("participant_id", "string", "Random study participant code, persistent within the study",
                          "generated", allowed="P- + 8 Crockford base32 characters",
                          derivation="OS CSPRNG; never derived from names, emails or record ids")
MILESTONE = Variable("milestone", "string", "Scheduled visit name (e.g. baseline, 1_month)", "milestones.name")
MDC_SOURCE = Variable(
    "mdc_source", "category", "Where mdc95 comes from", "backend.services.repeatability",
    allowed=_choices(MDC_SOURCES),
    derivation="the clinic's repeat captures when >= 20 pairs and ICC lower 95 % bound >= 0.5, else all clinics "
               "pooled (same rule), else the recapture study (imaging/reliability_table.json)")
DAYS_SINCE_BASELINE = Variable(
    "days_since_baseline", "integer", "Days from the baseline photo's capture date (else the course baseline date)",
    "photos.capture_date", unit="days", derivation="date - day zero; no calendar dates are exported")

TABLES: dict[str, tuple[Variable, ...]] = {
    "participants.csv": (
        PARTICIPANT_ID,
        Variable("age_band", "category", "Age at course baseline, banded", "patients.date_of_birth",
                 unit="years", allowed="<18|18-...|90+ (width per manifest)",
                 derivation="completed years at baseline; >89 collapsed to 90+; widened by k-anonymity"),
        Variable("sex", "category", "Sex", "patients.sex", choices=tuple(SEXES)),
        Variable("fitzpatrick_type", "category", "Fitzpatrick skin phototype", "patients.fitzpatrick_type",
                 allowed="I..VI | I-II|III-IV|V-VI | *", derivation="merged or suppressed (*) by k-anonymity"),
        Variable("clinic_code", "category", "Pseudonymous code of the treating clinic", "study_clinics",
                 allowed="C01.. | *", derivation="order of joining the study; * when suppressed by k-anonymity"),
        Variable("indication", "category", "Course indication", "treatment_courses.indication",
                 choices=tuple(INDICATIONS)),
        Variable("exosome_source", "category", "Exosome source", "treatment_courses.exosome_source",
                 choices=tuple(EXOSOME_SOURCES)),
        Variable("delivery", "category", "Delivery method", "treatment_courses.delivery",
                 choices=tuple(DELIVERY_METHODS)),
        Variable("concentration_value", "number", "Product concentration", "treatment_courses.concentration_value",
                 unit="see concentration_unit"),
        Variable("concentration_unit", "string", "Unit of concentration_value", "treatment_courses.concentration_unit"),
        Variable("treated_regions", "string", "Treated face regions", "treatment_courses.treated_regions",
                 allowed=";".join(REGION_NAMES) + " (semicolon-separated)"),
        Variable("split_face", "category", "Split-face design", "treatment_courses.split_face_treated_side",
                 choices=("yes", "no")),
        Variable("split_face_treated_side", "category", "Treated side of a split-face design (subject's side)",
                 "treatment_courses.split_face_treated_side", choices=FACE_SIDES),
        Variable("course_status", "category", "Course status at export", "treatment_courses.status",
                 choices=COURSE_STATUSES),
        Variable("baseline_date_shifted", "string", "Day zero (baseline photo's capture date, else the course "
                 "baseline date) shifted by the participant's secret offset",
                 "photos.capture_date, treatment_courses.baseline_date", unit="ISO date",
                 derivation="true date + secret per-participant offset (-1095..-366 days); intervals kept"),
    ),
    "visits.csv": (
        PARTICIPANT_ID, MILESTONE,
        Variable("scheduled_day", "integer", "Scheduled day of the visit", "milestones.day_offset", unit="days"),
        DAYS_SINCE_BASELINE,
        Variable("completed", "boolean", "Visit marked completed", "milestones.completed_at", allowed="true|false"),
        Variable("photo_count", "integer", "Photos of the visit in the export view (not deleted, not retaken)",
                 "photos"),
        Variable("usable_photo", "boolean", "At least one photo passed the quality gate", "photos.usable",
                 allowed="true|false"),
        Variable("measured", "boolean", "The visit has measurements in measurements.csv", "photo_analyses",
                 allowed="true|false"),
        Variable("make_up", "boolean", "Make-up reported at capture (newest photo)", "photos.make_up",
                 allowed="true|false|(empty)"),
        Variable("capture_time_source", "category", "Where the capture time came from (newest photo)",
                 "photos.capture_time_source", choices=("app", "exif", "upload")),
        Variable("quality_problems", "string", "Quality-gate problem codes of the newest photo", "photos.quality",
                 allowed="semicolon-separated codes"),
        Variable("not_comparable", "string", "Measures of the visit's photo left out of measurements.csv because "
                 "the imaging reports them not comparable with the baseline, each with its reasons",
                 "photo_analyses.summary.comparability",
                 allowed="measure:reason[,reason] joined by ; (reasons: " + "|".join(NOT_COMPARABLE) + ")"),
        Variable("redness_reference", "category", "Region the visit's redness and delta a* are contrasts against "
                 "(the forehead, or the chin when the baseline's forehead was hidden; a follow-up keeps its "
                 "baseline's)", "photo_analyses.summary.redness_reference",
                 choices=REFERENCE_REGIONS),
    ),
    "measurements.csv": (
        PARTICIPANT_ID, MILESTONE, DAYS_SINCE_BASELINE,
        Variable("region", "category", "Face region (all_skin: the whole measured face)", "photo_measurements.region",
                 choices=tuple(progress.SERIES_REGIONS)),
        Variable("measure", "category", "Measure (imaging.catalogue; README: Imaging measures)",
                 "photo_measurements.measure",
                 choices=tuple(progress.SERIES_MEASURES)),
        Variable("value", "number", "Measured value", "photo_measurements.value", unit="see unit"),
        Variable("unit", "string", "Unit of value", "imaging.catalogue.MEASURES (unit)"),
        Variable("change_from_baseline", "number", "value minus the baseline visit's value", "derived",
                 unit="see unit"),
        Variable("exceeds_mdc", "boolean", "|change| > MDC95 of the measure in that region",
                 "mdc95", allowed="true|false|(empty: no MDC)"),
        Variable("mdc95", "number", "Minimal detectable change (95 %) the change was judged with", "mdc_source",
                 unit="see unit"),
        MDC_SOURCE,
        Variable("mdc_n_pairs", "integer", "Repeat-capture pairs behind mdc95 (0 for the recapture study)",
                 "repeatability_results.n_pairs"),
        Variable("algorithm_version", "string", "Imaging algorithm version of the value",
                 "photo_analyses.algorithm_version"),
    ),
    "repeatability.csv": (
        Variable("scope", "category", "Whose repeat-capture pairs", "repeatability_results.scope",
                 allowed="all_clinics|clinic", derivation="all_clinics: every non-demo clinic pooled, only when "
                 "pairs of at least 3 clinics exist"),
        Variable("clinic_code", "category", "Pseudonymous clinic code (scope clinic; as participants.csv)",
                 "study_clinics", allowed="C01.. | (empty: all_clinics)"),
        Variable("fitzpatrick_group", "category", "Skin phototypes of the pairs' patients",
                 "patients.fitzpatrick_type", allowed="all|" + _choices(FITZPATRICK_GROUP_NAMES)),
        Variable("measure", "category", "Measure (imaging.catalogue)", "photo_measurements.measure",
                 allowed=_choices(progress.SERIES_MEASURES)),
        Variable("region", "category", "Face region (all_skin: the whole measured face)", "photo_measurements.region",
                 allowed=_choices(progress.SERIES_REGIONS)),
        Variable("n_pairs", "integer", "Repeat pairs (photo and repeat minutes apart, both usable, same algorithm "
                 "version)", "photos.repeat_of_id", derivation="rows with fewer than k pairs are left out"),
        Variable("within_subject_sd", "number", "Within-subject SD", "derived", unit="see unit",
                 derivation="sqrt(sum(d^2) / 2n), d = repeat - first"),
        Variable("icc", "number", "ICC(2,1), two-way random, absolute agreement, single measurement", "derived",
                 derivation="McGraw & Wong 1996 ICC(A,1)"),
        Variable("icc_ci_low", "number", "95 % CI lower limit of the ICC", "derived",
                 derivation="F-based (McGraw & Wong case 2A; Shrout & Fleiss 1979)"),
        Variable("icc_ci_high", "number", "95 % CI upper limit of the ICC", "derived"),
        Variable("sem", "number", "Standard error of measurement", "derived", unit="see unit",
                 derivation="SD of all values x sqrt(1 - ICC)"),
        Variable("mdc95", "number", "Minimal detectable change (95 %)", "derived", unit="see unit",
                 derivation="1.96 x sqrt(2) x SEM"),
        Variable("bias", "number", "Bland-Altman bias: mean of repeat - first", "derived", unit="see unit"),
        Variable("loa_low", "number", "Bland-Altman lower limit of agreement", "derived", unit="see unit",
                 derivation="bias - 1.96 SD(d)"),
        Variable("loa_high", "number", "Bland-Altman upper limit of agreement", "derived", unit="see unit",
                 derivation="bias + 1.96 SD(d)"),
        Variable("unit", "string", "Unit of the measure", "imaging.catalogue.MEASURES (unit)"),
        Variable("algorithm_version", "string", "Imaging algorithm version of both analyses of every pair",
                 "repeatability_results.algorithm_version"),
    ),
    "assessments.csv": (
        PARTICIPANT_ID, MILESTONE,
        Variable("days_since_baseline", "integer", "Days from day zero to the visit's target date",
                 "milestones.day_offset", unit="days"),
        Variable("rater_role", "category", "Who rated", "assessments.rater_role", choices=RATER_ROLES),
        Variable("gais", "integer", "Global Aesthetic Improvement Scale", "assessments.gais",
                 allowed="1 very much improved .. 5 worse", minimum=1, maximum=5),
        Variable("satisfaction", "integer", "Patient satisfaction", "assessments.satisfaction", allowed="0..10", minimum=0, maximum=10),
    ),
    "adverse_events.csv": (
        PARTICIPANT_ID,
        Variable("event_type", "category", "Adverse event type", "adverse_events.event_type",
                 choices=tuple(ADVERSE_EVENT_TYPES)),
        Variable("severity", "category", "Severity", "adverse_events.severity", choices=tuple(SEVERITIES)),
        Variable("onset_day", "integer", "Days since baseline at onset", "adverse_events.onset_date", unit="days"),
        Variable("resolution_day", "integer", "Days since baseline at resolution (empty: ongoing)",
                 "adverse_events.resolution_date", unit="days"),
        Variable("duration_days", "integer", "resolution - onset (empty: ongoing)", "derived", unit="days"),
        Variable("onset_date_shifted", "string", "Onset date shifted by the participant's secret offset",
                 "adverse_events.onset_date", unit="ISO date", derivation="as baseline_date_shifted"),
        Variable("reporter_role", "category", "Who reported", "adverse_events.reporter_role"),
    ),
    "summary.csv": (
        Variable("section", "category", "Kind of statistic", "derived",
                 choices=("change", "split_face", "gais", "adverse_event")),
        Variable("measure", "string", "Measure (change, split_face)", "derived"),
        Variable("region", "string", "Region (change) or treated-minus-control (split_face)", "derived"),
        Variable("milestone", "string", "Visit", "derived"),
        Variable("group", "string", "gais: rater_role:score; adverse_event: event_type:severity", "derived"),
        Variable("n", "integer", "Participants (change, split_face) or count (gais, adverse_event)", "derived"),
        Variable("mean", "number", "Mean change from baseline", "derived", unit="measure units"),
        Variable("mean_ci_low", "number", "95 % t-interval lower limit", "derived", unit="measure units"),
        Variable("mean_ci_high", "number", "95 % t-interval upper limit", "derived", unit="measure units"),
        Variable("median", "number", "Median change from baseline", "derived", unit="measure units"),
        Variable("median_ci_low", "number", "95 % binomial order-statistic interval lower limit (n >= 6)",
                 "derived", unit="measure units"),
        Variable("median_ci_high", "number", "95 % binomial order-statistic interval upper limit", "derived",
                 unit="measure units"),
        Variable("wilcoxon_p", "number", "Two-sided Wilcoxon signed-rank p (zeros dropped)", "derived"),
        Variable("share_exceeding_mdc", "number", "Share with |change| > MDC95", "derived", unit="fraction"),
        Variable("mdc_sources", "string", "Participants per MDC95 source behind share_exceeding_mdc",
                 "measurements.csv mdc_source", allowed="<source>:<count> joined by ;"),
        Variable("share", "number", "gais: share of the milestone's ratings by that rater; adverse_event: share of "
                 "participants with at least one such event", "derived", unit="fraction"),
        Variable("suppressed", "boolean", "Fewer than k participants in this cell: its numbers are withheld",
                 "derived", allowed="true|false", derivation="k of the export (at least the study's min_k)"),
    ),
}
TABLE_NAMES = tuple(TABLES)
PATCH_FILE_PATTERN = "patches/<participant_id>/<milestone>_<region>.png"
#: Codebook rows of the optional patch images (not a table: one PNG per participant, visit, region).
PATCH_VARIABLES = (
    Variable("participant_id", "string", "Directory: the participant's study code (as participants.csv)",
             "generated"),
    Variable("milestone", "string", "File name part: the visit (as visits.csv)", "milestones.name"),
    Variable("region", "category", "File name part: the face region cropped", "imaging.regions.region_masks",
             choices=tuple(PATCH_REGIONS)),
    Variable("pixels", "image", "RGB PNG crop of the region in the canonical face frame (eyes 256 px apart, "
             "level); grey (128,128,128) outside the region mask, so no eyes, brows, lips or hair",
             "photos (newest usable photo of the visit in the export view)", unit="canonical px",
             derivation="decode, eye-based warp to the canonical frame, region mask bounding box; encoded "
                        "from pixels (no EXIF, ICC or text chunks); only with research_region_patches "
                        "consent"),
)


def codebook_rows() -> list[dict[str, Any]]:
    """One row per variable of every table, then the optional patch images' naming and pixels."""
    described = [*((table, v) for table, variables in TABLES.items() for v in variables),
                 *((PATCH_FILE_PATTERN, v) for v in PATCH_VARIABLES)]
    return [{"file": name, "variable": v.name, "type": v.type, "unit": v.unit, "allowed_values": v.allowed_values,
             "description": v.description, "derivation": v.derivation, "source": v.source}
            for name, v in described]


CODEBOOK_COLUMNS = ("file", "variable", "type", "unit", "allowed_values", "description", "derivation", "source")
