"""Test-retest reliability: ICC(2,1) absolute agreement, SEM and minimal detectable change.

Used to qualify each measure (see ``bench/reliability.py`` and ``imaging/reliability_table.json``)
and by the backend to flag whether a change between two visits exceeds measurement noise.

Definitions
-----------
Data are an ``n x k`` matrix: ``n`` subjects (rows, different true values) each measured ``k``
times (columns: recaptures / raters), no missing values. From the two-way ANOVA without
replication (McGraw & Wong 1996, Psychol Methods 1:30-46; Shrout & Fleiss 1979, Psychol Bull
86:420-428):

- ``MSR = k * sum_i (mean_i. - mean..)^2 / (n - 1)``  (between subjects)
- ``MSC = n * sum_j (mean_.j - mean..)^2 / (k - 1)``  (between recaptures)
- ``MSE = SS_residual / ((n - 1)(k - 1))``

``ICC(2,1) = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)``: two-way random effects,
absolute agreement, single measurement (McGraw & Wong's ICC(A,1)). Range (-1, 1]; 1 = recaptures
agree perfectly relative to the spread between subjects.

``SEM = SD * sqrt(1 - ICC)`` with SD the standard deviation of all ``n * k`` observations
(ddof 1), in the measure's own units (Weir 2005, J Strength Cond Res 19:231-240).
``MDC95 = 1.96 * sqrt(2) * SEM``: the smallest change between two single measurements that
exceeds measurement error with 95 % confidence.

Koo & Li (2016, J Chiropr Med 15:155-163) bands: < 0.5 poor, 0.5-0.75 moderate, 0.75-0.9 good,
> 0.9 excellent.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from dataclasses import asdict, dataclass, field

import numpy as np

from imaging.catalogue import ALL_SKIN

#: z of a two-sided 95 % interval, used in MDC95.
Z_95 = 1.96

#: Koo & Li (2016) band boundaries: ICC > 0.9 excellent, 0.75-0.9 good, 0.5-0.75 moderate.
KOO_LI_EXCELLENT_ABOVE = 0.9
KOO_LI_GOOD_FROM = 0.75
KOO_LI_MODERATE_FROM = 0.5


@dataclass(frozen=True)
class AnovaMeanSquares:
    """Mean squares of a two-way ANOVA without replication (subjects x recaptures).

    Attributes
    ----------
    msr, msc, mse : float
        Between-subject, between-recapture and residual mean squares (units^2).
    n_subjects, n_recaptures : int
    """

    msr: float
    msc: float
    mse: float
    n_subjects: int
    n_recaptures: int


@dataclass(frozen=True)
class Reliability:
    """Reliability of one measure.

    Attributes
    ----------
    icc : float
        ICC(2,1) absolute agreement, (-1, 1].
    sem : float
        Standard error of measurement, the measure's units (>= 0).
    mdc95 : float
        Minimal detectable change (95 %), the measure's units (>= 0).
    sd : float
        SD of all observations (ddof 1), the measure's units.
    band : str
        Koo & Li band: ``poor``, ``moderate``, ``good`` or ``excellent``.
    n_subjects, n_recaptures : int
    """

    icc: float
    sem: float
    mdc95: float
    sd: float
    band: str
    n_subjects: int
    n_recaptures: int

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable)."""
        return asdict(self)


def _as_matrix(scores) -> np.ndarray:
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 2:
        raise ValueError("scores must be a 2-D array with at least 2 subjects (rows) and 2 recaptures (columns)")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("scores must be finite (no missing values)")
    return matrix


def anova_mean_squares(scores) -> AnovaMeanSquares:
    """Two-way ANOVA mean squares of a subjects x recaptures matrix.

    Parameters
    ----------
    scores : array-like, float, shape (n_subjects >= 2, n_recaptures >= 2), finite

    Returns
    -------
    AnovaMeanSquares

    Raises
    ------
    ValueError
        For a matrix of the wrong shape or with non-finite values.
    """
    matrix = _as_matrix(scores)
    n, k = matrix.shape
    grand = matrix.mean()
    row_means = matrix.mean(axis=1)
    col_means = matrix.mean(axis=0)
    ss_rows = k * float(((row_means - grand) ** 2).sum())
    ss_cols = n * float(((col_means - grand) ** 2).sum())
    ss_total = float(((matrix - grand) ** 2).sum())
    ss_error = max(ss_total - ss_rows - ss_cols, 0.0)
    return AnovaMeanSquares(ss_rows / (n - 1), ss_cols / (k - 1), ss_error / ((n - 1) * (k - 1)), n, k)


def icc_2_1(scores) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single measurement.

    Parameters
    ----------
    scores : array-like, float, shape (n_subjects, n_recaptures)

    Returns
    -------
    float
        In (-1, 1]; NaN when all values are identical (no variance to apportion).
    """
    ms = anova_mean_squares(scores)
    n, k = ms.n_subjects, ms.n_recaptures
    denominator = ms.msr + (k - 1) * ms.mse + k * (ms.msc - ms.mse) / n
    if denominator <= 0:
        return float("nan")
    return (ms.msr - ms.mse) / denominator


def koo_li_band(icc: float) -> str:
    """Koo & Li (2016) band of an ICC: ``poor``, ``moderate``, ``good`` or ``excellent``.

    A NaN ICC is ``poor`` (reliability not shown).
    """
    if not math.isfinite(icc) or icc < KOO_LI_MODERATE_FROM:
        return "poor"
    if icc < KOO_LI_GOOD_FROM:
        return "moderate"
    return "excellent" if icc > KOO_LI_EXCELLENT_ABOVE else "good"


def standard_error_of_measurement(sd: float, icc: float) -> float:
    """SEM = SD * sqrt(1 - ICC), in the units of SD (ICC clipped to [0, 1])."""
    return float(sd * math.sqrt(1.0 - min(max(icc, 0.0), 1.0)))


def minimal_detectable_change(sem: float) -> float:
    """MDC95 = 1.96 * sqrt(2) * SEM, in the units of SEM."""
    return float(Z_95 * math.sqrt(2.0) * sem)


def reliability(scores) -> Reliability:
    """ICC(2,1), SEM, MDC95 and band of one measure.

    Parameters
    ----------
    scores : array-like, float, shape (n_subjects >= 2, n_recaptures >= 2)
        Rows are subjects (different true values), columns the repeated captures.

    Returns
    -------
    Reliability
    """
    matrix = _as_matrix(scores)
    icc = icc_2_1(matrix)
    sd = float(matrix.std(ddof=1))
    sem = standard_error_of_measurement(sd, icc) if math.isfinite(icc) else 0.0
    return Reliability(
        icc=float(icc),
        sem=sem,
        mdc95=minimal_detectable_change(sem),
        sd=sd,
        band=koo_li_band(icc),
        n_subjects=matrix.shape[0],
        n_recaptures=matrix.shape[1],
    )


def exceeds_mdc(change: float, mdc95: float) -> bool:
    """True when an observed change between two visits is larger than the MDC95.

    Parameters
    ----------
    change : float
        Follow-up minus baseline value, the measure's units.
    mdc95 : float
        The measure's MDC95 (same units, > 0).
    """
    return bool(math.isfinite(change) and abs(change) > mdc95)


def icc_2_1_confidence_interval(scores, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval of ICC(2,1) (absolute agreement), F-based.

    McGraw & Wong (1996) Table 7, case 2A (= Shrout & Fleiss 1979, ICC(2,1)): with
    ``a = k ICC / (n (1 - ICC))`` and ``b = 1 + k ICC (n - 1) / (n (1 - ICC))``, Satterthwaite's
    degrees of freedom ``v = (a MSC + b MSE)^2 / ((a MSC)^2 / (k - 1) + (b MSE)^2 / ((n - 1)(k - 1)))``;
    ``F* = F(1 - alpha/2; n - 1, v)`` and ``F** = F(1 - alpha/2; v, n - 1)``;
    ``lower = n (MSR - F* MSE) / (F* (k MSC + (k n - k - n) MSE) + n MSR)`` and
    ``upper = n (F** MSR - MSE) / (k MSC + (k n - k - n) MSE + n F** MSR)``.
    On Shrout & Fleiss's example (6 targets x 4 judges): ICC 0.290, 95 % CI [0.019, 0.761].

    Parameters
    ----------
    scores : array-like, float, shape (n_subjects >= 2, n_recaptures >= 2)
    confidence : float
        Two-sided level, e.g. 0.95.

    Returns
    -------
    (float, float)
        Lower and upper bound; (NaN, NaN) when the ICC is undefined or exactly 1 (no error
        variance: the F approximation has no degrees of freedom).
    """
    from scipy.stats import f as f_distribution

    ms = anova_mean_squares(scores)
    n, k = ms.n_subjects, ms.n_recaptures
    icc = icc_2_1(scores)
    if not math.isfinite(icc) or icc >= 1.0 or ms.mse <= 0:
        return math.nan, math.nan
    a = k * icc / (n * (1.0 - icc))
    b = 1.0 + k * icc * (n - 1) / (n * (1.0 - icc))
    v = (a * ms.msc + b * ms.mse) ** 2 / ((a * ms.msc) ** 2 / (k - 1) + (b * ms.mse) ** 2 / ((n - 1) * (k - 1)))
    tail = 1.0 - (1.0 - confidence) / 2.0
    f_star = float(f_distribution.ppf(tail, n - 1, v))
    f_star_star = float(f_distribution.ppf(tail, v, n - 1))
    spread = k * ms.msc + (k * n - k - n) * ms.mse
    lower = n * (ms.msr - f_star * ms.mse) / (f_star * spread + n * ms.msr)
    upper = n * (f_star_star * ms.msr - ms.mse) / (spread + n * f_star_star * ms.msr)
    return float(lower), float(upper)


@dataclass(frozen=True)
class RepeatPairStatistics:
    """Test-retest statistics of one measure from repeat-capture pairs (NaN where not computable).

    Attributes
    ----------
    n_pairs : int
    within_subject_sd : float
        ``sqrt(sum(d^2) / (2 n))`` with ``d`` the pair differences (Bland & Altman 1996, BMJ
        313:744): the SD of repeated measurements of one subject, the measure's units.
    icc, icc_ci_low, icc_ci_high : float
        ICC(2,1) absolute agreement and its 95 % CI (:func:`icc_2_1_confidence_interval`).
    sem, mdc95 : float
        As for the recapture study (:func:`reliability`): ``SEM = SD sqrt(1 - ICC)`` with SD of
        all ``2 n`` values, ``MDC95 = 1.96 sqrt(2) SEM``.
    bias, loa_low, loa_high : float
        Bland-Altman (1986, Lancet i:307): mean of ``d = second - first`` and
        ``bias -/+ 1.96 SD(d)`` (ddof 1).
    """

    n_pairs: int
    within_subject_sd: float
    icc: float
    icc_ci_low: float
    icc_ci_high: float
    sem: float
    mdc95: float
    bias: float
    loa_low: float
    loa_high: float

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable; NaN stays NaN)."""
        return asdict(self)


def repeat_pair_statistics(first, second) -> RepeatPairStatistics:
    """n, within-subject SD, ICC(2,1) with 95 % CI, SEM, MDC95 and Bland-Altman of paired values.

    Parameters
    ----------
    first, second : array-like of float, same length
        The measure on each pair's first photo and on its repeat capture (pairs with a missing
        value removed by the caller).

    Returns
    -------
    RepeatPairStatistics
        With fewer than 2 pairs every statistic but ``n_pairs`` is NaN (1 pair: ``bias`` and the
        within-subject SD are given).

    Raises
    ------
    ValueError
        When the lengths differ or a value is not finite.
    """
    x = np.asarray(first, dtype=np.float64).ravel()
    y = np.asarray(second, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError("first and second must have the same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("values must be finite")
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return RepeatPairStatistics(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    differences = y - x
    within_sd = float(math.sqrt(float((differences ** 2).sum()) / (2 * n)))
    bias = float(differences.mean())
    if n < 2:
        return RepeatPairStatistics(n, within_sd, nan, nan, nan, nan, nan, bias, nan, nan)
    matrix = np.column_stack([x, y])
    result = reliability(matrix)
    low, high = icc_2_1_confidence_interval(matrix)
    spread = Z_95 * float(differences.std(ddof=1))
    mdc = result.mdc95 if math.isfinite(result.icc) else nan
    sem = result.sem if math.isfinite(result.icc) else nan
    return RepeatPairStatistics(n, within_sd, result.icc, low, high, sem, mdc, bias, bias - spread, bias + spread)


#: Measured reliability of each measure, written by ``bench/reliability.py --write``.
RELIABILITY_TABLE_PATH = Path(__file__).with_name("reliability_table.json")


@dataclass(frozen=True)
class ReliabilityTable:
    """A published reliability table: per measure, of all skin and of each face region.

    Attributes
    ----------
    algorithm_version : str
        :data:`imaging.version.ALGORITHM_VERSION` the study was measured with; its MDCs only
        apply to results of that version.
    generated_at : str or None
        When the study ran, ISO 8601 (UTC); None when the table does not say.
    all_skin : dict[str, Reliability]
        Measure key -> reliability of the all-skin value (the table's ``measures``).
    regions : dict[str, dict[str, Reliability]]
        Face region key -> measure key -> reliability of that region's value.
    groups : dict[str, dict[str, dict[str, Reliability]]]
        Fitzpatrick group (:data:`imaging.catalogue.FITZPATRICK_GROUP_NAMES`) -> region key (all
        skin under ``all_skin``) -> measure key -> reliability measured on the faces of that
        group only (the table's ``fitzpatrick_groups``; empty when the table has none).
    """

    algorithm_version: str
    generated_at: str | None
    all_skin: dict[str, Reliability]
    regions: dict[str, dict[str, Reliability]]
    groups: dict[str, dict[str, dict[str, Reliability]]] = field(default_factory=dict)

    def entry(self, measure: str, region: str = ALL_SKIN.key, fitzpatrick_group: str | None = None) -> Reliability | None:
        """The reliability of one measure in one region, of one Fitzpatrick group when the table
        has it (else of every face), or None when the table does not list that measure there.

        Parameters
        ----------
        measure : measure key; region : region key or ``all_skin``
        fitzpatrick_group : ``"I-II"``, ``"III-IV"``, ``"V-VI"`` or None (every face)
        """
        if fitzpatrick_group is not None:
            found = self.groups.get(fitzpatrick_group, {}).get(region, {}).get(measure)
            if found is not None:
                return found
        return self.by_region().get((region, measure))

    def by_region(self) -> dict[tuple[str, str], Reliability]:
        """Every entry keyed by (region, measure); all skin under ``ALL_SKIN.key`` (``all_skin``)."""
        sections = {ALL_SKIN.key: self.all_skin, **self.regions}
        return {(region, measure): entry for region, measures in sections.items() for measure, entry in measures.items()}


def _table_entry(values: dict) -> Reliability:
    """One measure's entry; a hand-written table may give only ``mdc95``, ``icc`` and ``band``."""
    return Reliability(
        icc=float(values["icc"]),
        sem=float(values.get("sem", math.nan)),
        mdc95=float(values["mdc95"]),
        sd=float(values.get("sd", math.nan)),
        band=str(values["band"]),
        n_subjects=int(values.get("n_subjects", 0)),
        n_recaptures=int(values.get("n_recaptures", 0)),
    )


def load_reliability_table(path: Path | str = RELIABILITY_TABLE_PATH) -> ReliabilityTable:
    """Read a reliability table (the one reader: MDC flags, tests, benchmarks).

    Parameters
    ----------
    path : path of a table written by ``bench/reliability.py --write`` (default the published
        ``imaging/reliability_table.json``), or of one with the same layout: ``algorithm_version``,
        optional ``generated_at``, ``measures`` (all skin), optional ``regions`` and optional
        ``fitzpatrick_groups`` (group -> region or ``all_skin`` -> measure -> entry), each entry
        with at least ``mdc95``, ``icc`` and ``band`` (``sem``, ``sd`` default to NaN and the
        counts to 0 when absent).

    Returns
    -------
    ReliabilityTable
        E.g. ``table.all_skin["redness"].mdc95`` in the measure's units. Check
        ``algorithm_version`` against the results' version before using an MDC.

    Raises
    ------
    FileNotFoundError
        When the table has not been generated.
    """
    import json

    data = json.loads(Path(path).read_text())
    return ReliabilityTable(
        algorithm_version=str(data.get("algorithm_version", "")),
        generated_at=data.get("generated_at"),
        all_skin={name: _table_entry(values) for name, values in data["measures"].items()},
        regions={region: {name: _table_entry(values) for name, values in measures.items()}
                 for region, measures in data.get("regions", {}).items()},
        groups={group: {region: {name: _table_entry(values) for name, values in measures.items()}
                        for region, measures in sections.items()}
                for group, sections in data.get("fitzpatrick_groups", {}).items()},
    )


@functools.cache
def published_table() -> ReliabilityTable | None:
    """The packaged table (:data:`RELIABILITY_TABLE_PATH`) when it was measured with this
    :data:`imaging.version.ALGORITHM_VERSION`, else None (its MDCs would not apply)."""
    from imaging.version import ALGORITHM_VERSION

    try:
        table = load_reliability_table()
    except (OSError, ValueError, KeyError):
        return None
    return table if table.algorithm_version == ALGORITHM_VERSION else None


def markdown_tables(path: Path | str = RELIABILITY_TABLE_PATH) -> str:
    """The README's figures of a study table: per-face headline figures and MDC95 by region and
    Fitzpatrick group (``python -m imaging.reliability`` prints them for the published table).

    Parameters
    ----------
    path : a table written by ``bench/reliability.py --write`` (with ``per_face`` rows)
    """
    import json

    data = json.loads(Path(path).read_text())
    headlines = [m for m in ("redness", "pigmentation", "texture") if m in data["measures"]]
    lines = [f"Algorithm {data['algorithm_version']}, {data['generated_at']}; "
             f"{len(data['design']['faces'])} faces x {len(data['design']['captures'])} captures "
             f"(`{data['command']}`).", "",
             "| face | Fitzpatrick | " + " | ".join(f"{m}: rho / SNR / cross-talk" for m in headlines) + " |",
             "|---|---|" + "---|" * len(headlines)]
    sharpened = [f for f in data["design"]["faces"] if f.get("scene_sharpening")]
    if sharpened:
        lines[1:1] = ["", "Scenes sharpened as a phone would (the gate's blur reading, % of the face width, before -> "
                      "after, unsharp amount): " + ", ".join(
                          f"`{f['id']}` {f['scene_blur_percent']:.2f} -> {f['scene_blur_percent_sharpened']:.2f} "
                          f"(x{f['scene_sharpening']:g})" for f in sharpened) + "."]
    rows: dict[str, dict] = {}
    for row in data.get("per_face", []):
        rows.setdefault(row["face"], {"fitzpatrick": row["fitzpatrick"]})[row["measure"]] = row

    def number(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    def cell(row):
        if row is None:
            return "-"
        return f"{number(row['rho'], 2)} / {number(row['snr'], 1)} / {number(row['cross_talk'], 2)}"

    for face, entries in rows.items():
        lines.append(f"| `{face}` | {entries['fitzpatrick']} | " + " | ".join(cell(entries.get(m)) for m in headlines)
                     + " |")
    lines += ["", "| MDC95 (ICC) | " + " | ".join(headlines) + " |", "|---|" + "---|" * len(headlines)]
    sections = [("all skin", data["measures"]), *((r, v) for r, v in data["regions"].items())]
    sections += [(f"all skin, Fitzpatrick {g}", v["all_skin"]) for g, v in data.get("fitzpatrick_groups", {}).items()]
    for name, entries in sections:
        lines.append(f"| {name} | " + " | ".join(
            f"{entries[m]['mdc95']:.3g} ({entries[m]['icc']:.2f})" if m in entries else "-" for m in headlines) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_tables(), end="")
