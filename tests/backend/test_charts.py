"""Chart endpoints: PNG/SVG bytes, what they draw, caching, access and argument errors."""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest
from PIL import Image

from backend.services.charts import FIGURE_SIZE_IN, PNG_DPI, chart_cache
from tests.backend.clinical_helpers import BASELINE, assert_problem
from tests.backend.progress_helpers import add_result, write_mdc_table

pytestmark = pytest.mark.usefixtures("clock")  # every test runs on the clinical clock


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path) -> dict[str, Any]:
    table = write_mdc_table(tmp_path / "reliability.json", {("all_skin", "redness"): 3.0})
    return {**app_config, "RELIABILITY_TABLE_PATH": table}


@pytest.fixture
def measured(app, world):
    course = world.course
    for name, days, value in [("baseline", 0, 40.0), ("1_month", 30, 38.0), ("3_months", 90, 34.0)]:
        add_result(app, course, name, BASELINE + dt.timedelta(days=days), {("all_skin", "redness"): value})
    chart_cache.clear()
    return course


def test_png_chart(client, measured, headers_of):
    response = client.get(f"/api/v1/courses/{measured.id}/charts/redness.png", headers=headers_of("clinician_a"))
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (round(FIGURE_SIZE_IN[0] * PNG_DPI), round(FIGURE_SIZE_IN[1] * PNG_DPI))
    pixels = np.asarray(image.convert("RGB")).astype(int)
    # The MDC band (light blue, drawn translucent on white) and the series line (dark blue) are drawn.
    band = (np.abs(pixels - [200, 228, 240]).sum(axis=2) < 40).sum()
    line = (np.abs(pixels - [0x1f, 0x4e, 0x79]).sum(axis=2) < 30).sum()
    assert band > 2000 and line > 200


def test_svg_chart_draws_labels_band_and_baseline(client, measured, headers_of):
    response = client.get(f"/api/v1/courses/{measured.id}/charts/redness.svg?region=all_skin",
                          headers=headers_of("clinician_a"))
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    text = response.get_data(as_text=True)
    ET.fromstring(text)  # well-formed
    for label in ("baseline", "1 month", "3 months", "days since baseline", "MDC95 (3; recapture study)", "change beyond MDC",
                  "Redness - all skin"):
        assert label in text
    # The adverse event of the world's course is marked on the time axis.
    assert "erythema (mild)" in text


def test_chart_is_cached_until_results_change(app, client, measured, headers_of):
    url = f"/api/v1/courses/{measured.id}/charts/redness.svg"
    first = client.get(url, headers=headers_of("clinician_a")).data
    assert client.get(url, headers=headers_of("clinician_a")).data == first
    add_result(app, measured, "6_months", BASELINE + dt.timedelta(days=180), {("all_skin", "redness"): 30.0})
    changed = client.get(url, headers=headers_of("clinician_a")).data
    assert changed != first and b"6 months" in changed


def test_chart_without_results_says_so(client, world, headers_of):
    response = client.get(f"/api/v1/courses/{world.course.id}/charts/texture.svg?region=nose",
                          headers=headers_of("patient_user"))
    assert response.status_code == 200
    assert "no usable measurements yet" in response.get_data(as_text=True)


def test_chart_errors_and_access(client, measured, world, headers_of):
    base = f"/api/v1/courses/{measured.id}/charts"
    assert_problem(client.get(f"{base}/beauty.png", headers=headers_of("clinician_a")), 404)
    assert client.get(f"{base}/redness.gif", headers=headers_of("clinician_a")).status_code == 404
    assert_problem(client.get(f"{base}/redness.png?region=ear", headers=headers_of("clinician_a")), 422)
    assert_problem(client.get(f"{base}/redness.png", headers=headers_of("clinician_b")), 404)
    assert_problem(client.get(f"{base}/redness.png", headers=headers_of("researcher")), 403)
