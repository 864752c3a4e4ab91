"""Researcher pages: granted studies only, export request with progress and download, statistics tables."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models.studies import Study, StudyClinic, StudyExport, StudyGrant
from tests.backend.dashboard_helpers import sign_in
from tests.backend.test_clinic_workspace import actions, count, submit

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
def studies(app, world) -> dict[str, uuid.UUID]:
    """Clinic A's study with the researcher granted, and one without a grant."""
    ids = {}
    with app.app_context():
        for title, granted in (("Granted study", True), ("Hidden study", False)):
            study = Study(id=uuid.uuid4(), title=title, owner_clinic_id=world.clinic_a.id,
                          created_by_user_id=world.admin_a.id)
            study.clinics.append(StudyClinic(clinic_id=world.clinic_a.id, added_by_user_id=world.admin_a.id))
            if granted:
                study.grants.append(StudyGrant(researcher_user_id=world.researcher.id,
                                               granted_by_user_id=world.admin_a.id))
            db.session.add(study)
            ids[title] = study.id
        db.session.commit()
    return ids


@pytest.fixture
def researcher(app, world) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, world.researcher.email)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard/research/"
    return client


def test_researcher_sees_granted_studies_only_and_no_clinic_pages(app, world, studies, researcher):
    home = researcher.get("/dashboard/research/").get_data(as_text=True)
    assert "Granted study" in home and "Hidden study" not in home
    assert researcher.get(f"/dashboard/research/studies/{studies['Hidden study']}").status_code == 404
    clinic_page = researcher.get(f"/dashboard/patients/{world.patient.id}")
    assert clinic_page.status_code == 302 and clinic_page.headers["Location"] == "/dashboard/research/"


def test_export_requested_built_and_downloaded(app, studies, researcher):
    path = f"/dashboard/research/studies/{studies['Granted study']}"
    assert submit(researcher, path, {"k": "1", "max_suppression": "0.1", "view": "front"}).status_code == 303
    page = researcher.get(path).get_data(as_text=True)  # the inline job backend built it already
    assert "ready" in page and "Download zip" in page
    with app.app_context():
        export_id = db.session.scalars(select(StudyExport.id)).one()
    download = researcher.get(f"{path}/exports/{export_id}/download")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert "participants.csv" in zipfile.ZipFile(io.BytesIO(download.data)).namelist()
    assert {"study_export.request", "study_export.download"} <= set(actions(app))


@pytest.mark.parametrize("field, value", [("k", "0"), ("max_suppression", "2"), ("view", "top")])
def test_bad_export_options_are_shown_next_to_the_field(app, studies, researcher, field, value):
    response = submit(researcher, f"/dashboard/research/studies/{studies['Granted study']}", {field: value})
    assert response.status_code == 422 and f'id="e-{field}"' in response.get_data(as_text=True)
    assert count(app, StudyExport) == 0


def test_statistics_tables(app, studies, researcher):
    path = f"/dashboard/research/studies/{studies['Granted study']}/statistics"
    page = researcher.get(f"{path}?k=1").get_data(as_text=True)
    assert 'id="changes"' in page and 'id="gais"' in page and "participants released" in page
    assert researcher.get(f"{path}?k=0").status_code == 422


def test_cohort_change_plot_draws_each_milestone_with_its_interval():
    from backend.services.charts import render_cohort_changes

    rows = [{"measure": "redness", "region": "all_skin", "milestone": name, "day_offset": day, "n": 6,
             "mean_change": mean, "mean_ci_low": mean - 1, "mean_ci_high": mean + 1}
            for name, day, mean in (("1_month", 30, -1.5), ("3_months", 90, -3.0))]
    rows.append({**rows[0], "measure": "pigmentation"})  # another measure: not drawn
    svg = render_cohort_changes(rows, "redness", "all_skin").decode()
    assert svg.startswith("<?xml") and "change from baseline (95% CI)" in svg
    assert svg.count("n=6") == 2
