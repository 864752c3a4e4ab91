"""Latency of the chart endpoints for a patient with 6 milestones of results.

Usage::

    .venv/bin/python bench/api.py [--rounds 30]

Builds a throw-away SQLite database (migrated like production), one clinic, clinician,
patient and course with six milestones, each with a usable analysed photo whose per-region
results are inserted through the models, then requests
``GET /api/v1/courses/{id}/charts/{measure}.{png,svg}?region=...`` through the real app
(auth, access checks, audit row, series query, rendering) in-process. Prints the median
latency of first requests (rendered) and of all requests (repeats hit the chart cache), and
whether the median meets the target (<= 50 ms). The machine's other load is not controlled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imaging.catalogue import HEADLINE_MEASURES  # noqa: E402

TARGET_MEDIAN_MS = 50.0
SCHEDULE = [("baseline", 0, 0, 3), ("2_weeks", 14, 3, 3), ("1_month", 30, 5, 5), ("2_months", 60, 7, 7),
            ("3_months", 90, 14, 14), ("6_months", 180, 14, 14)]
MEASURES = HEADLINE_MEASURES
REGIONS = ("all_skin", "left_cheek", "forehead")
FORMATS = ("png", "svg")


def build(root: Path):
    """App, course id and clinician headers of a fresh benchmark database."""
    from backend import create_app
    from backend.migrations import upgrade
    from tests import factories
    from tests.backend.progress_helpers import add_result

    url = f"sqlite:///{root / 'bench.sqlite3'}"
    upgrade(url)
    # The per-client rate limit (RATELIMIT_DEFAULT, 300/min) is off: this measures the endpoint itself.
    app = create_app({"DATABASE_URL": url, "STORAGE_URL": f"file://{root / 'storage'}", "JOB_BACKEND": "inline",
                      "SECRET_KEY": "bench-only-secret-key-0123456789abcdef", "LOG_LEVEL": "WARNING",
                      "RATELIMIT_ENABLED": False})
    clinic = factories.make_clinic(app, "Bench clinic")
    clinician = factories.make_user(app, "clinician", clinic)
    patient = factories.make_patient(app, clinic)
    course = factories.make_course(app, patient, milestones=[
        {"name": n, "day_offset": d, "window_before_days": b, "window_after_days": a} for n, d, b, a in SCHEDULE])
    baseline = course.baseline_date
    for i, (name, offset, _, _) in enumerate(SCHEDULE):
        values = {(region, measure): 40.0 - 1.5 * i + 0.3 * r + 0.1 * m
                  for r, region in enumerate(REGIONS) for m, measure in enumerate(MEASURES)}
        add_result(app, course, name, baseline + dt.timedelta(days=offset), values)
    return app, course.id, factories.auth_headers(app, clinician)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="requests per chart (default 30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app, course_id, headers = build(Path(tmp))
        client = app.test_client()
        first_ms, all_ms = [], []
        for measure in MEASURES:
            for region in REGIONS:
                for fmt in FORMATS:
                    url = f"/api/v1/courses/{course_id}/charts/{measure}.{fmt}?region={region}"
                    for round_ in range(args.rounds):
                        start = time.perf_counter()
                        response = client.get(url, headers=headers)
                        elapsed = (time.perf_counter() - start) * 1000.0
                        if response.status_code != 200:
                            raise SystemExit(f"{url}: HTTP {response.status_code}")
                        (first_ms if round_ == 0 else all_ms).append(elapsed)
        all_ms += first_ms
        median = statistics.median(all_ms)
        print(f"charts: {len(first_ms)} distinct, {len(all_ms)} requests, 6 milestones")
        print(f"first request (rendered) median: {statistics.median(first_ms):.1f} ms")
        print(f"all requests median: {median:.1f} ms  p90: {statistics.quantiles(all_ms, n=10)[-1]:.1f} ms")
        print(f"target median <= {TARGET_MEDIAN_MS:.0f} ms: {'met' if median <= TARGET_MEDIAN_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
