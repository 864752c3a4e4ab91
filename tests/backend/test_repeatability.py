"""The clinics' own repeatability and the MDC95 provenance rule (clinic, all clinics, recapture study).

Pairs are inserted through the models (values known exactly); the recomputation is the job's
service function. The thresholds: at least 20 pairs and the ICC's lower 95 % bound >= 0.5.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from backend.extensions import db
from backend.models.clinical import TreatmentCourse
from backend.models.photos import Photo
from backend.models.repeatability import RepeatabilityResult
from backend.services import repeatability
from backend.services.progress import course_progress
from imaging.version import ALGORITHM_VERSION
from tests import factories
from tests.backend.progress_helpers import write_mdc_table
from tests.backend.repeatability_helpers import add_pairs, noisy, tight

pytestmark = pytest.mark.usefixtures("clock")

#: The recapture study's MDC95 of redness over all skin in the test table.
STUDY_MDC = 4.0


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path) -> dict[str, Any]:
    table = write_mdc_table(tmp_path / "reliability.json", {("all_skin", "redness"): STUDY_MDC})
    return {**app_config, "RELIABILITY_TABLE_PATH": table}


def recompute(app) -> None:
    with app.app_context():
        repeatability.recompute()
        db.session.commit()


def mdc_of(app, course: TreatmentCourse) -> tuple[float | None, str | None, int]:
    with app.app_context():
        series = course_progress(db.session.get(TreatmentCourse, course.id), measures=("redness",),
                                 regions=("all_skin",)).series[0]
        return series.mdc95, series.mdc_source, series.mdc_n_pairs


def clinic_course(app, name: str) -> TreatmentCourse:
    clinic = factories.make_clinic(app, name)
    return factories.make_course(app, factories.make_patient(app, clinic))


def test_the_clinic_mdc_replaces_the_study_at_20_good_pairs(app):
    course = clinic_course(app, "Threshold")
    add_pairs(app, course, tight(19))
    recompute(app)
    assert mdc_of(app, course) == (STUDY_MDC, "recapture_study", 0)  # 19 pairs: not yet

    add_pairs(app, course, tight(1, start=60.0))
    recompute(app)
    mdc, source, n_pairs = mdc_of(app, course)
    assert (source, n_pairs) == ("clinic", 20)
    with app.app_context():
        row = db.session.query(RepeatabilityResult).filter_by(scope="clinic", fitzpatrick_group=None).one()
        assert row.icc_ci_low >= 0.5 and mdc == pytest.approx(row.mdc95) and mdc < STUDY_MDC
        assert row.algorithm_version == ALGORITHM_VERSION and row.computed_at is not None


def test_twenty_noisy_pairs_keep_the_study_mdc(app):
    course = clinic_course(app, "Noisy")
    add_pairs(app, course, noisy(24))
    recompute(app)
    with app.app_context():
        row = db.session.query(RepeatabilityResult).filter_by(scope="clinic", fitzpatrick_group=None).one()
        assert row.n_pairs == 24 and row.icc_ci_low < 0.5
    assert mdc_of(app, course) == (STUDY_MDC, "recapture_study", 0)


def test_one_clinic_never_changes_another_and_pooling_needs_three_clinics(app):
    a, b, c, d = (clinic_course(app, name) for name in ("Iso A", "Iso B", "Iso C", "Iso D"))
    add_pairs(app, a, tight(20))
    add_pairs(app, b, tight(5, start=30.0))
    recompute(app)
    assert mdc_of(app, a)[1:] == ("clinic", 20)
    # Two clinics: a pooled value would let B work out A's, so there is none.
    assert mdc_of(app, b) == (STUDY_MDC, "recapture_study", 0)
    assert mdc_of(app, d) == (STUDY_MDC, "recapture_study", 0)

    add_pairs(app, c, tight(5, start=40.0))
    recompute(app)
    own_a = mdc_of(app, a)
    assert own_a[1:] == ("clinic", 20)  # own pairs first
    pooled = mdc_of(app, b)
    assert pooled[1:] == ("all_clinics", 30) and mdc_of(app, d) == pooled
    assert pooled[0] != own_a[0]
    with app.app_context():
        rows = db.session.query(RepeatabilityResult).filter_by(scope="all_clinics").all()
        assert rows and all(row.clinic_id is None and row.n_clinics == 3 for row in rows)


def test_demo_clinics_are_not_pooled(app):
    courses = [clinic_course(app, f"Real {i}") for i in range(2)]
    demo = factories.make_clinic(app, "Demo", is_demo=True)
    demo_course = factories.make_course(app, factories.make_patient(app, demo))
    for course in (*courses, demo_course):
        add_pairs(app, course, tight(10))
    recompute(app)
    with app.app_context():
        assert db.session.query(RepeatabilityResult).filter_by(scope="all_clinics").count() == 0
    assert mdc_of(app, demo_course) == (STUDY_MDC, "recapture_study", 0)  # 10 pairs of its own


def test_progress_api_says_where_the_mdc_comes_from(app, client, world, headers_of):
    add_pairs(app, world.course, tight(21))
    recompute(app)
    body = client.get(f"/api/v1/courses/{world.course.id}/progress", headers=headers_of("clinician_a"),
                      query_string={"measure": "redness", "region": "all_skin"}).get_json()
    series = body["series"][0]
    assert (series["mdc_source"], series["mdc_n_pairs"]) == ("clinic", 21)
    # The patient's own summary says the same.
    from tests.backend.progress_helpers import add_result

    add_result(app, world.course, "baseline", dt.date(2026, 3, 1), {("all_skin", "redness"): 30.0})
    add_result(app, world.course, "1_month", dt.date(2026, 3, 31), {("all_skin", "redness"): 20.0})
    summary = client.get("/api/v1/me/summary", headers=headers_of("patient_user")).get_json()
    result = next(r for r in summary["results"] if (r["measure"], r["region"]) == ("redness", "all_skin"))
    assert (result["mdc_source"], result["mdc_n_pairs"], result["exceeds_mdc"]) == ("clinic", 21, True)
    other = client.get(f"/api/v1/courses/{world.course_b.id}/progress", headers=headers_of("clinician_b"),
                       query_string={"measure": "redness", "region": "all_skin"}).get_json()["series"][0]
    assert (other["mdc_source"], other["mdc_n_pairs"], other["mdc95"]) == ("recapture_study", 0, STUDY_MDC)


def test_repeatability_csv_names_clinics_by_code_and_leaves_out_small_rows(app):
    from types import SimpleNamespace

    from backend.services.export.options import ExportOptions
    from backend.services.export.tables import repeatability_rows

    in_study, elsewhere = factories.make_clinic(app, "In study"), factories.make_clinic(app, "Elsewhere")
    common = {"algorithm_version": ALGORITHM_VERSION, "measure": "redness", "region": "all_skin", "mdc95": 1.0,
              "computed_at": dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)}
    with app.app_context():
        db.session.add_all([
            RepeatabilityResult(scope="clinic", clinic_id=in_study.id, n_pairs=6, n_clinics=1, **common),
            RepeatabilityResult(scope="clinic", clinic_id=in_study.id, fitzpatrick_group="V-VI", n_pairs=2,
                                n_clinics=1, **common),
            RepeatabilityResult(scope="clinic", clinic_id=elsewhere.id, n_pairs=30, n_clinics=1, **common),
            RepeatabilityResult(scope="all_clinics", n_pairs=40, n_clinics=3, **common),
        ])
        db.session.commit()
        participants = [SimpleNamespace(patient=SimpleNamespace(clinic_id=in_study.id), clinic_code="C01")]
        rows = repeatability_rows(participants, ExportOptions(k=5))
    assert [(r["scope"], r["clinic_code"], r["fitzpatrick_group"], r["n_pairs"]) for r in rows] == [
        ("all_clinics", None, "all", 40), ("clinic", "C01", "all", 6)]
    assert rows[0]["unit"] == "centi-OD" and rows[0]["mdc95"] == 1.0


def test_dashboard_page_shows_only_the_own_clinic_and_the_mdc_source(app, world):
    from tests.backend.dashboard_helpers import sign_in

    add_pairs(app, world.course, tight(21))
    recompute(app)
    own = app.test_client()
    assert sign_in(own, world.clinician_a.email).status_code == 302
    page = own.get("/dashboard/repeatability")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-source="clinic"' in text and "this clinic&#39;s repeat photos, 21 pairs" in text
    assert '<th scope="row">III-IV</th>' in text  # the factory patients' skin type group
    plot = own.get("/dashboard/repeatability/bland-altman/redness.svg")
    assert plot.status_code == 200 and plot.mimetype == "image/svg+xml"
    assert "21 pairs" in plot.get_data(as_text=True) and "limits of agreement" in plot.get_data(as_text=True)

    other = app.test_client()
    assert sign_in(other, world.clinician_b.email).status_code == 302
    text = other.get("/dashboard/repeatability").get_data(as_text=True)
    assert 'data-source="clinic"' not in text and "21 pairs" not in text
    assert 'data-source="recapture_study"' in text
    assert "no repeat pairs yet" in other.get("/dashboard/repeatability/bland-altman/redness.svg").get_data(as_text=True)


def test_deleting_a_photo_of_a_pair_recomputes_without_it(app):
    from sqlalchemy import select

    from backend.services.photos import delete_photo

    course = clinic_course(app, "Deleting")
    add_pairs(app, course, tight(3))
    recompute(app)
    with app.app_context():
        repeat = db.session.scalars(select(Photo).where(Photo.repeat_of_id.is_not(None))).first()
        delete_photo(repeat)
        db.session.commit()  # the inline job backend runs the enqueued recomputation
    with app.app_context():
        row = db.session.query(RepeatabilityResult).filter_by(scope="clinic", fitzpatrick_group=None).one()
        assert row.n_pairs == 2


def test_cohort_statistics_say_which_mdc_sources_judged_the_changes():
    from backend.services.cohort_stats import ChangeObservation, summarise_changes

    observations = [ChangeObservation(f"P{i}", "redness", "all_skin", "1_month", 30, -3.0 + i, i % 2 == 0, source)
                    for i, source in enumerate(["clinic", "clinic", "recapture_study", "all_clinics", None])]
    summary = summarise_changes(observations)[0]
    assert summary.mdc_sources == "all_clinics:1;clinic:2;recapture_study:1"
    assert summary.share_exceeding_mdc == pytest.approx(3 / 5)
