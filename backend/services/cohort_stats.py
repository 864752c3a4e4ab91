"""Cohort outcome statistics: change from baseline per measure, region and milestone.

Per group (measure, region, milestone), over participants with a value at baseline and at the
milestone:

- ``n``; mean change with a two-sided 95 % Student t interval (``mean +/- t(0.975, n-1) *
  sd / sqrt(n)``, sd with ``ddof=1``);
- median change with the distribution-free binomial order-statistic 95 % interval: the
  widest-symmetric pair of order statistics ``(x_(j), x_(n+1-j))`` with the largest ``j`` such
  that ``P(j <= B <= n - j) >= 0.95`` for ``B ~ Binomial(n, 1/2)`` (None when n < 6, where no
  pair reaches 95 %);
- Wilcoxon signed-rank two-sided p-value (``scipy.stats.wilcoxon``, zero differences dropped
  by the default ``zero_method="wilcox"``; None when fewer than two non-zero changes);
- share of participants whose ``|change|`` exceeds the measure's MDC95 (None when no MDC), each
  judged with the MDC95 of their clinic's provenance rule, and how many participants each MDC
  source (``clinic``, ``all_clinics``, ``recapture_study``) judged (``mdc_sources``).

Split-face: per measure and milestone, the paired treated-minus-control difference (change
from baseline of the treated-cheek minus control-cheek value), with the same summaries; the
Wilcoxon test on these differences is the paired signed-rank test of treated vs control.

Frequencies: GAIS scores per milestone and rater, adverse events per type and severity.

Small cells: :func:`suppress_small_cells` withholds every number of a cell with fewer than k
participants (the study's privacy floor) and marks it ``suppressed``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class ChangeObservation:
    """One participant's change from baseline of one measure, region and milestone."""

    participant: str
    measure: str
    region: str
    milestone: str
    day_offset: int
    change: float
    exceeds_mdc: bool | None
    #: Where the MDC95 of ``exceeds_mdc`` came from (``backend.services.repeatability``); None without one.
    mdc_source: str | None = None


@dataclass(frozen=True)
class ChangeSummary:
    """Summary of the changes of one group (units: the measure's units)."""

    measure: str
    region: str
    milestone: str
    day_offset: int
    n: int
    mean_change: float | None
    mean_ci_low: float | None
    mean_ci_high: float | None
    median_change: float | None
    median_ci_low: float | None
    median_ci_high: float | None
    wilcoxon_p: float | None
    share_exceeding_mdc: float | None
    #: Participants per MDC95 source behind ``share_exceeding_mdc``, e.g. ``clinic:3;recapture_study:7``.
    mdc_sources: str | None = None
    suppressed: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def mean_t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float | None, float | None, float | None]:
    """Mean and two-sided Student t confidence interval.

    Returns
    -------
    (mean, low, high)
        Floats in the values' units; the interval is (None, None) for n < 2 and the mean is
        None for n = 0.
    """
    n = len(values)
    if n == 0:
        return None, None, None
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if n < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * data.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def median_order_statistic_interval(values: Sequence[float], confidence: float = CONFIDENCE
                                    ) -> tuple[float | None, float | None, float | None]:
    """Median and the binomial order-statistic confidence interval (distribution-free).

    Returns
    -------
    (median, low, high)
        The interval is ``(x_(j), x_(n+1-j))`` (1-based order statistics) for the largest
        ``j`` whose coverage ``1 - 2 * P(B <= j - 1)``, ``B ~ Bin(n, 0.5)``, is at least
        ``confidence``; (None, None) when no ``j >= 1`` reaches it.
    """
    n = len(values)
    if n == 0:
        return None, None, None
    data = np.sort(np.asarray(values, dtype=np.float64))
    median = float(np.median(data))
    # Coverage of (x_(j), x_(n+1-j)) for j = 1 .. n//2, decreasing in j.
    coverage = 1.0 - 2.0 * stats.binom.cdf(np.arange(0, n // 2), n, 0.5)
    reaching = int(np.count_nonzero(coverage >= confidence))
    best = reaching if reaching > 0 else None
    if best is None:
        return median, None, None
    return median, float(data[best - 1]), float(data[n - best])


def wilcoxon_p(values: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of ``values`` against 0 (None if < 2 non-zero)."""
    if sum(1 for v in values if v != 0) < 2:
        return None
    return float(stats.wilcoxon(np.asarray(values, dtype=np.float64)).pvalue)


def summarise_group(key: tuple[str, str, str, int], observations: Sequence[ChangeObservation]) -> ChangeSummary:
    """Summary of one (measure, region, milestone, day_offset) group."""
    changes = [o.change for o in observations]
    mean, mean_low, mean_high = mean_t_interval(changes)
    median, median_low, median_high = median_order_statistic_interval(changes)
    flags = [o.exceeds_mdc for o in observations if o.exceeds_mdc is not None]
    share = sum(flags) / len(flags) if flags else None
    sources = Counter(o.mdc_source for o in observations if o.exceeds_mdc is not None and o.mdc_source)
    measure, region, milestone, day_offset = key
    return ChangeSummary(
        measure=measure, region=region, milestone=milestone, day_offset=day_offset, n=len(changes),
        mean_change=mean, mean_ci_low=mean_low, mean_ci_high=mean_high,
        median_change=median, median_ci_low=median_low, median_ci_high=median_high,
        wilcoxon_p=wilcoxon_p(changes), share_exceeding_mdc=share,
        mdc_sources=";".join(f"{source}:{count}" for source, count in sorted(sources.items())) or None,
    )


def summarise_changes(observations: Iterable[ChangeObservation]) -> list[ChangeSummary]:
    """One summary per (measure, region, milestone), ordered by measure, region, day offset.

    Each participant counts once per group (a second observation of the same participant
    and group raises ``ValueError``: the caller must pick one value per milestone).
    """
    groups: dict[tuple[str, str, str, int], list[ChangeObservation]] = defaultdict(list)
    seen: set[tuple[str, str, str, str]] = set()
    for o in observations:
        identity = (o.participant, o.measure, o.region, o.milestone)
        if identity in seen:
            raise ValueError("one observation per participant and group")
        seen.add(identity)
        if o.change is not None and math.isfinite(o.change):
            groups[(o.measure, o.region, o.milestone, o.day_offset)].append(o)
    ordered = sorted(groups, key=lambda k: (k[0], k[1], k[3], k[2]))
    return [summarise_group(key, groups[key]) for key in ordered]


def frequency_table(values: Iterable[tuple[str, ...]]) -> list[dict[str, object]]:
    """Counts of each distinct tuple, with its share of all tuples, sorted by the tuple.

    Returns
    -------
    list of dict
        ``{"key": tuple, "count": int, "share": float 0..1}``.
    """
    counts = Counter(values)
    total = sum(counts.values())
    return [{"key": key, "count": count, "share": count / total} for key, count in sorted(counts.items())]


def gais_frequencies(assessment_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Count and share of each GAIS score per milestone and rater role (share within that pair)."""
    out = []
    pairs = sorted({(r["milestone"], r["rater_role"]) for r in assessment_rows})
    for milestone, rater in pairs:
        scores = [(str(r["gais"]),) for r in assessment_rows if (r["milestone"], r["rater_role"]) == (milestone, rater)]
        for item in frequency_table(scores):
            out.append({"milestone": milestone, "rater_role": rater, "gais": int(item["key"][0]),
                        "count": item["count"], "share": item["share"]})
    return out


def adverse_event_frequencies(event_rows: Sequence[dict[str, Any]], participant_count: int) -> list[dict[str, Any]]:
    """Per event type and severity: number of events, participants with one, and their share."""
    out = []
    for item in frequency_table((r["event_type"], r["severity"]) for r in event_rows):
        event_type, severity = item["key"]
        people = {r["participant_id"] for r in event_rows if (r["event_type"], r["severity"]) == (event_type, severity)}
        out.append({"event_type": event_type, "severity": severity, "events": item["count"],
                    "participants": len(people),
                    "share_of_participants": len(people) / participant_count if participant_count else None})
    return out


#: Numbers a suppressed cell withholds, per kind of cell (the participant count is the first).
_CELL_NUMBERS = {
    "change": ("n", "mean_change", "mean_ci_low", "mean_ci_high", "median_change", "median_ci_low",
               "median_ci_high", "wilcoxon_p", "share_exceeding_mdc", "mdc_sources"),
    "gais": ("count", "share"),
    "adverse_event": ("participants", "events", "share_of_participants"),
}


def suppress_small_cells(kind: str, cells: Sequence[Any], k: int) -> list[Any]:
    """Cells of fewer than ``k`` participants with every number withheld (None) and ``suppressed`` set.

    Parameters
    ----------
    kind : str
        ``change`` (:class:`ChangeSummary` items), ``gais`` or ``adverse_event`` (dict items of
        :func:`gais_frequencies` / :func:`adverse_event_frequencies`).
    cells : sequence
    k : int
        The request's k (at least the study's floor).
    """
    numbers = _CELL_NUMBERS[kind]
    out = []
    for cell in cells:
        if isinstance(cell, ChangeSummary):
            small = cell.n < k
            out.append(replace(cell, suppressed=True, **{name: None for name in numbers}) if small else cell)
        else:
            small = cell[numbers[0]] < k
            out.append({**cell, **({name: None for name in numbers} if small else {}), "suppressed": small})
    return out
