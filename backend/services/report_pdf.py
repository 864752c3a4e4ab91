"""Printable one-page progress report (A4 PDF, matplotlib's PDF backend).

Contents: clinic, patient (name, study id), course design, algorithm version; a table of
the latest change of each headline measure per region with its MDC95 flag; the three
all-skin charts with the MDC band; assessments and adverse events on the same
days-since-baseline axis; photos left out of the series.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from backend.services.charts import CHART_STYLE, draw_series, draw_timeline, region_label  # noqa: E402
from backend.services.progress import (  # noqa: E402
    ALL_SKIN,
    HEADLINE_MEASURES,
    CourseProgress,
    TimelineEvent,
)
from imaging.catalogue import MEASURE_BY_KEY  # noqa: E402

A4_INCHES = (8.27, 11.69)


def latest_change_table(progress: CourseProgress) -> tuple[list[str], list[list[str]]]:
    """Latest change from baseline per headline measure (rows) and region (columns).

    Returns
    -------
    (list of str, list of list of str)
        Column labels (regions) and one row per headline measure: cells like
        ``"-12.0 % *"`` (percent change of the latest milestone; ``*`` = beyond MDC95),
        ``"-"`` where there is no follow-up value.
    """
    regions = list(dict.fromkeys(s.region for s in progress.series))
    rows = []
    for measure in HEADLINE_MEASURES:
        cells = [MEASURE_BY_KEY[measure].label]
        for region in regions:
            series = progress.get(measure, region)
            point = series.latest() if series is not None else None
            if point is None or point.change_percent is None:
                cells.append("-")
                continue
            mark = " *" if point.exceeds_mdc else ""
            cells.append(f"{point.change_percent:+.1f} %{mark} ({point.milestone_name.replace('_', ' ')})")
        rows.append(cells)
    return [region_label(r) for r in regions], rows


def render_report_pdf(*, clinic_name: str, patient_name: str, study_id: str, course_title: str,
                      progress: CourseProgress, events: Sequence[TimelineEvent], generated_on: str) -> bytes:
    """The one-page report as PDF bytes (A4 portrait, vector charts).

    Parameters
    ----------
    clinic_name, patient_name, study_id, course_title, generated_on : str
        Header lines.
    progress : CourseProgress
        Must contain the headline measures (``all_skin`` at least).
    events : sequence of TimelineEvent
        Assessments and adverse events.
    """
    with matplotlib.rc_context({**CHART_STYLE, "font.size": 7, "axes.titlesize": 8}):
        figure = Figure(figsize=A4_INCHES)
        grid = figure.add_gridspec(5, 3, height_ratios=[0.55, 0.6, 1.2, 1.0, 0.5], hspace=0.55, wspace=0.35,
                                   left=0.07, right=0.97, top=0.95, bottom=0.04)
        header = figure.add_subplot(grid[0, :])
        header.axis("off")
        header.text(0, 1, "skintrack progress report", fontsize=13, weight="bold", va="top")
        header.text(0, 0.62, f"{clinic_name} - {patient_name} (study id {study_id})", fontsize=9, va="top")
        header.text(0, 0.36, course_title, fontsize=8, va="top")
        header.text(0, 0.12, f"Generated {generated_on}; algorithm {progress.algorithm_version}; view "
                    f"{progress.view}; day 0 = {progress.day_zero.isoformat()}", fontsize=7, va="top", color="#555")

        table_axes = figure.add_subplot(grid[1, :])
        table_axes.axis("off")
        table_axes.set_title("Latest change from baseline (* = beyond MDC95, larger than measurement noise)",
                             loc="left")
        regions, rows = latest_change_table(progress)
        if any(cell != "-" for row in rows for cell in row[1:]):
            table = table_axes.table(cellText=rows, colLabels=["measure", *regions], loc="upper center",
                                     cellLoc="center")
            table.auto_set_font_size(False)
            table.set_fontsize(6.5)
            table.scale(1, 1.6)
        else:
            table_axes.text(0.5, 0.5, "No follow-up measurements yet.", ha="center", transform=table_axes.transAxes)

        last_day = progress.last_milestone_day
        for column, measure in enumerate(HEADLINE_MEASURES):
            axes = figure.add_subplot(grid[2, column])
            series = progress.get(measure, ALL_SKIN)
            if series is not None:
                draw_series(axes, series, (), compact=True, last_day=last_day)

        draw_timeline(figure.add_subplot(grid[3, :]), events, last_day)

        notes = figure.add_subplot(grid[4, :])
        notes.axis("off")
        left_out = [f"{e.captured_on.isoformat()} {e.milestone_name or 'no milestone'}: {e.reason.replace('_', ' ')}"
                    for e in progress.excluded]
        notes.text(0, 1, "Photos left out: " + ("; ".join(left_out[:8]) if left_out else "none"), va="top", wrap=True)
        sources = sorted({s.mdc_label for s in progress.series if s.mdc95 is not None})
        notes.text(0, 0.45, "MDC95 from: " + ("; ".join(sources) if sources else "none") + ". "
                   "Changes inside the shaded band are within measurement noise.", va="top", color="#555")
        buffer = io.BytesIO()
        with PdfPages(buffer, metadata={"Title": "skintrack progress report", "CreationDate": None}) as pdf:
            pdf.savefig(figure)
        return buffer.getvalue()
