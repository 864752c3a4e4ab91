"""Charts of one measure over time (matplotlib, headless Agg), as PNG or SVG bytes.

A chart shows the measure's values against days since the baseline photo, the baseline
point marked, a band of +/- MDC95 around the baseline value (changes inside it are
measurement noise), each point labelled with its milestone; optionally assessments
(GAIS, adverse events) as markers on the same time axis. Fixed style, fixed size, so charts
of different patients compare at a glance.

Rendering costs tens of milliseconds; rendered bytes are cached in-process keyed by a hash
of everything drawn (values, MDC, labels, format), so a repeated request costs only the
series query, and any new result, retake or version changes the key by itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never a GUI backend in a server process

from matplotlib.figure import Figure  # noqa: E402 - after the backend is chosen

from backend.services.progress import MeasureSeries, TimelineEvent  # noqa: E402
from imaging.catalogue import MEASURE_BY_KEY, REGION_BY_KEY  # noqa: E402

CHART_MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
#: Figure size (inches) and resolution: 640 x 360 px PNG.
FIGURE_SIZE_IN = (6.4, 3.6)
PNG_DPI = 100
#: Rendered charts kept per process (each ~20-40 kB).
CACHE_ENTRIES = 256

CHART_STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
    "svg.hashsalt": "skintrack", "svg.fonttype": "none", "path.simplify": True,
}
_MARGINS = {"left": 0.1, "right": 0.98, "top": 0.91, "bottom": 0.13}
_LINE_COLOUR = "#1f4e79"
_BAND_COLOUR = "#9ecae1"
_BASELINE_COLOUR = "#d62728"
_EVENT_COLOUR = "#ff7f0e"


def region_label(region: str) -> str:
    """A region's label as written inside a title (``left_cheek`` -> ``left cheek``, ``all_skin`` -> ``all skin``)."""
    return REGION_BY_KEY[region].label.lower()


def chart_fingerprint(series: MeasureSeries, fmt: str, events: Sequence[TimelineEvent] = (), title: str = "",
                      last_day: int = 0) -> str:
    """SHA-256 over everything a chart draws (its cache key)."""
    drawn = {
        "fmt": fmt, "measure": series.measure, "region": series.region, "mdc": series.mdc95,
        "mdc_source": series.mdc_label,
        "baseline": series.baseline_value, "title": title, "last_day": last_day,
        "points": [(p.days_since_baseline, p.value, p.milestone_name, p.exceeds_mdc) for p in series.points],
        "events": [(e.days_since_baseline, e.label) for e in events],
    }
    return hashlib.sha256(json.dumps(drawn, sort_keys=True, default=str).encode()).hexdigest()


class _ChartCache:
    """A small thread-safe LRU of rendered bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._entries[key] = data
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


chart_cache = _ChartCache(CACHE_ENTRIES)


def render_chart(series: MeasureSeries, fmt: str, events: Sequence[TimelineEvent] = (), title: str = "",
                 last_day: int = 0) -> bytes:
    """Render (or fetch from cache) the chart of one series.

    Parameters
    ----------
    series : MeasureSeries
        From :func:`backend.services.progress.course_progress`.
    fmt : {"png", "svg"}
    events : sequence of TimelineEvent
        Markers on the time axis (assessments, adverse events).
    title : str
        Defaults to "<Measure> - <region>".
    last_day : int
        The time axis reaches at least this day (e.g. the course's last milestone), so every
        chart of a course, and its assessment timeline, share one axis.

    Returns
    -------
    bytes
        PNG (640 x 360 px, RGBA) or SVG (UTF-8, deterministic ids).
    """
    if fmt not in CHART_MEDIA_TYPES:
        raise ValueError(f"unknown chart format {fmt!r}")
    key = chart_fingerprint(series, fmt, events, title, last_day)
    cached = chart_cache.get(key)
    if cached is not None:
        return cached
    data = _draw(series, fmt, events, title, last_day)
    chart_cache.put(key, data)
    return data


def _draw(series: MeasureSeries, fmt: str, events: Sequence[TimelineEvent], title: str, last_day: int) -> bytes:
    with matplotlib.rc_context(CHART_STYLE):
        figure = Figure(figsize=FIGURE_SIZE_IN, dpi=PNG_DPI)
        # Fixed margins: an automatic layout engine doubles the rendering time.
        figure.subplots_adjust(**_MARGINS)
        draw_series(figure.add_subplot(), series, events, title, last_day=last_day)
        return _save(figure, fmt)


def _save(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata)
    return buffer.getvalue()


def time_axis(axes, days: Sequence[int], last_day: int) -> None:
    """The shared days-since-baseline axis: from before the first point to after the last day."""
    axes.set_xlabel("days since baseline")
    axes.set_xlim(min(list(days) + [0]) - 5, max(list(days) + [last_day, 30]) + 10)


def draw_series(axes, series: MeasureSeries, events: Sequence[TimelineEvent] = (), title: str = "",
                *, compact: bool = False, last_day: int = 0) -> None:
    """Draw one series on matplotlib ``axes`` (shared by the chart endpoints and the PDF report).

    Parameters
    ----------
    axes : matplotlib.axes.Axes
    series : MeasureSeries
    events : sequence of TimelineEvent
        Vertical markers with labels on the time axis.
    title : str
        Default "<Measure> - <region>".
    compact : bool
        Smaller labels and no legend (report thumbnails).
    last_day : int
        See :func:`render_chart`.
    """
    measure = MEASURE_BY_KEY[series.measure]
    axes.set_title(title or f"{measure.label} - {region_label(series.region)}")
    axes.set_ylabel(f"{measure.label} ({measure.unit})")
    points = [p for p in series.points if p.value is not None]
    days = [p.days_since_baseline for p in points]
    values = [p.value for p in points]
    if series.baseline_value is not None and series.mdc95 is not None:
        axes.axhspan(series.baseline_value - series.mdc95, series.baseline_value + series.mdc95,
                     color=_BAND_COLOUR, alpha=0.35, lw=0, label=f"baseline +/- MDC95 ({series.mdc95:.3g}; {series.mdc_label})")
    if series.baseline_value is not None:
        axes.axhline(series.baseline_value, color=_BASELINE_COLOUR, lw=0.8, ls="--")
    if points:
        axes.plot(days, values, color=_LINE_COLOUR, marker="o", ms=5, lw=1.6)
        beyond = [(p.days_since_baseline, p.value) for p in points if p.exceeds_mdc]
        if beyond:
            axes.scatter(*zip(*beyond, strict=True), s=70, facecolors="none", edgecolors=_BASELINE_COLOUR, lw=1.4,
                         zorder=3, label="change beyond MDC")
        baseline_point = series.baseline_point()
        if baseline_point is not None and baseline_point.value is not None:
            axes.scatter([baseline_point.days_since_baseline], [baseline_point.value], marker="D", s=60,
                         color=_BASELINE_COLOUR, zorder=4, label="baseline")
        for point in points:
            axes.annotate(point.milestone_name.replace("_", " "), (point.days_since_baseline, point.value),
                          textcoords="offset points", xytext=(0, 7), ha="center", fontsize=6 if compact else 7)
    else:
        axes.text(0.5, 0.5, "no usable measurements yet", transform=axes.transAxes, ha="center", va="center")
    for event in events:
        axes.axvline(event.days_since_baseline, color=_EVENT_COLOUR, lw=0.8, ls=":")
        axes.annotate(event.label, (event.days_since_baseline, 1.0), xycoords=("data", "axes fraction"),
                      rotation=90, va="top", ha="right", fontsize=6 if compact else 7, color=_EVENT_COLOUR)
    time_axis(axes, days + [e.days_since_baseline for e in events], last_day)
    if not compact and axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize=7, frameon=False)


def render_timeline(events: Sequence[TimelineEvent], fmt: str, last_day: int = 0) -> bytes:
    """Chart of assessments (GAIS) and adverse events on the same axis as the measure charts.

    Parameters
    ----------
    events : sequence of TimelineEvent
    fmt : {"png", "svg"}
    last_day : int
        See :func:`render_chart`.
    """
    if fmt not in CHART_MEDIA_TYPES:
        raise ValueError(f"unknown chart format {fmt!r}")
    with matplotlib.rc_context(CHART_STYLE):
        figure = Figure(figsize=(FIGURE_SIZE_IN[0], FIGURE_SIZE_IN[1] * 0.7), dpi=PNG_DPI)
        figure.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.18)
        draw_timeline(figure.add_subplot(), events, last_day)
        return _save(figure, fmt)


def draw_timeline(axes, events: Sequence[TimelineEvent], last_day: int = 0) -> None:
    """GAIS (1 = very much improved .. 5 = worse, improvement up) and adverse events (dotted, labelled)."""
    axes.set_title("Assessments (GAIS) and adverse events")
    for role, marker in (("clinician", "o"), ("patient", "s")):
        points = [(e.days_since_baseline, e.gais) for e in events if e.gais is not None and e.rater_role == role]
        if points:
            axes.scatter(*zip(*points, strict=True), marker=marker, s=30, color=_LINE_COLOUR if role == "clinician" else "#6a3d9a",
                         label=f"GAIS ({role})", zorder=3)
    for event in events:
        if event.kind == "adverse_event":
            axes.axvline(event.days_since_baseline, color=_EVENT_COLOUR, ls=":", lw=1)
            axes.annotate(event.label, (event.days_since_baseline, 4.9), fontsize=7, color=_EVENT_COLOUR,
                          rotation=90, va="bottom", ha="right")
    axes.set_ylim(5.5, 0.5)
    axes.set_yticks([1, 2, 3, 4, 5])
    axes.set_ylabel("GAIS")
    time_axis(axes, [e.days_since_baseline for e in events], last_day)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper right", fontsize=7, frameon=False)


def render_bland_altman(measure: str, pairs: Sequence[tuple[float, float]], fmt: str, *, bias: float | None = None,
                        loa: tuple[float, float] | None = None, subtitle: str = "") -> bytes:
    """Bland-Altman plot of repeat-capture pairs: the pair's mean against repeat minus first, with
    the bias and the 95 % limits of agreement (Bland & Altman 1986) as stored by the repeatability job.

    Parameters
    ----------
    measure : str
        Measure key (label and unit from the catalogue).
    pairs : sequence of (first, repeat)
        The values of each pair, the measure's units.
    fmt : {"png", "svg"}
    bias, loa : float, (float, float), optional
        Lines drawn when given.
    subtitle : str
        Whose pairs (appended to the title).
    """
    if fmt not in CHART_MEDIA_TYPES:
        raise ValueError(f"unknown chart format {fmt!r}")
    definition = MEASURE_BY_KEY[measure]
    with matplotlib.rc_context(CHART_STYLE):
        figure = Figure(figsize=FIGURE_SIZE_IN, dpi=PNG_DPI)
        figure.subplots_adjust(**_MARGINS)
        axes = figure.add_subplot()
        axes.set_title(f"{definition.label} - repeat captures" + (f" ({subtitle})" if subtitle else ""))
        axes.set_xlabel(f"mean of the pair ({definition.unit})")
        axes.set_ylabel(f"repeat minus first ({definition.unit})")
        if pairs:
            means = [(a + b) / 2 for a, b in pairs]
            differences = [b - a for a, b in pairs]
            axes.scatter(means, differences, s=18, color=_LINE_COLOUR, zorder=3, label=f"{len(pairs)} pairs")
        else:
            axes.text(0.5, 0.5, "no repeat pairs yet", transform=axes.transAxes, ha="center", va="center")
        axes.axhline(0.0, color="#999999", lw=0.6)
        if bias is not None:
            axes.axhline(bias, color=_BASELINE_COLOUR, lw=1.0, label=f"bias {bias:.3g}")
        if loa is not None:
            for limit in loa:
                axes.axhline(limit, color=_BASELINE_COLOUR, lw=0.8, ls="--")
            axes.plot([], [], color=_BASELINE_COLOUR, lw=0.8, ls="--",
                      label=f"95 % limits of agreement ({loa[0]:.3g}, {loa[1]:.3g})")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best", fontsize=7, frameon=False)
        return _save(figure, fmt)


def render_cohort_changes(changes: Sequence[dict], measure: str, region: str, fmt: str = "svg") -> bytes:
    """A cohort's mean change from baseline (95 % CI bars) per milestone, for one measure and region.

    Parameters
    ----------
    changes : sequence of dict
        ``ChangeSummary.as_dict()`` rows (the cohort statistics' ``changes``); other measures
        and regions are ignored.
    measure, region : str
    fmt : {"png", "svg"}
    """
    rows = sorted((row for row in changes if row["measure"] == measure and row["region"] == region
                   and row["mean_change"] is not None), key=lambda row: row["day_offset"])
    with matplotlib.rc_context(CHART_STYLE):
        figure = Figure(figsize=FIGURE_SIZE_IN, dpi=PNG_DPI)
        figure.subplots_adjust(**_MARGINS)
        axes = figure.add_subplot()
        days = [row["day_offset"] for row in rows]
        means = [row["mean_change"] for row in rows]
        low = [row["mean_change"] - (row["mean_ci_low"] if row["mean_ci_low"] is not None else row["mean_change"])
               for row in rows]
        high = [(row["mean_ci_high"] if row["mean_ci_high"] is not None else row["mean_change"]) - row["mean_change"]
                for row in rows]
        axes.axhline(0, color="#777777", linewidth=0.8)
        axes.errorbar(days, means, yerr=[low, high], fmt="o-", color=_LINE_COLOUR, capsize=3)
        for row in rows:
            axes.annotate(f"n={row['n']}", (row["day_offset"], row["mean_change"]), textcoords="offset points",
                          xytext=(4, 6), fontsize=7)
        time_axis(axes, days, max(days, default=0))
        unit = MEASURE_BY_KEY[measure].unit if measure in MEASURE_BY_KEY else ""
        axes.set_ylabel(f"mean change ({unit})" if unit else "mean change")
        label = MEASURE_BY_KEY[measure].label if measure in MEASURE_BY_KEY else measure
        axes.set_title(f"{label} - {region_label(region)}: change from baseline (95% CI)")
        return _save(figure, fmt)
