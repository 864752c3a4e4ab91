"""Researcher pages: their granted studies, export requests with progress and download, and the
cohort statistics as tables, through the services the API's study endpoints call. Researchers
see only de-identified, k-anonymous results of studies they hold an active grant for."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import marshmallow as ma
from flask import Response, redirect, render_template, request, url_for
from sqlalchemy import select

from backend import audit
from backend.dashboard.forms import Form, submit_once
from backend.dashboard.views import FORM_MEDIA_TYPE, bp, check_csrf, login_required, user
from backend.extensions import db
from backend.http.media_types import accepts
from backend.http.problems import problem
from backend.models.studies import Study, StudyExport
from backend.services import studies as study_service
from backend.services.charts import render_cohort_changes
from backend.services.export import package as export_package
from backend.services.export import tables as export_tables
from backend.services.progress import ALL_SKIN, HEADLINE_MEASURES
from backend.storage import current_storage
from backend.unit_of_work import transactional
from imaging.catalogue import MEASURE_BY_KEY
from schemas.photos import PHOTO_VIEWS
from schemas.studies import DeidentificationArgsSchema, ExportCreateSchema

RESEARCHERS = ("researcher",)
#: Export states after which nothing changes any more (the page stops refreshing itself).
SETTLED = ("ready", "failed")


@bp.route("/research/")
@login_required(roles=RESEARCHERS)
@transactional
def research_home() -> str:
    """The studies the researcher holds an active grant for."""
    studies = db.session.scalars(select(Study).where(study_service.visible_studies(user()))
                                 .order_by(Study.title)).all()
    return render_template("dashboard/research/home.html", studies=studies, user=user())


def _exports(study: Study) -> list[tuple[StudyExport, str]]:
    exports = db.session.scalars(select(StudyExport).where(StudyExport.study_id == study.id)
                                 .order_by(StudyExport.created_at.desc())).all()
    return [(export, study_service.export_status(export)) for export in exports]


@bp.route("/research/studies/<uuid:study_id>", methods=["GET", "POST"])
@accepts(FORM_MEDIA_TYPE)
@login_required(roles=RESEARCHERS)
@submit_once(check_csrf)
def research_study(study_id: uuid.UUID) -> Any:
    """A study: its exports (request one, see progress, download) and a link to its statistics."""
    study = study_service.get_study_or_404(user(), study_id)
    form = Form(ExportCreateSchema(), {"k": 5, "max_suppression": 0.1, "view": "front"})
    if form.submitted and form.validate():
        def request_export(data: dict[str, Any]) -> Response:
            export = export_package.request_export(study, user().id, study_service.options_from(study, data))
            audit.record("study_export.request", "study", study.id, export=str(export.id))
            return redirect(url_for("dashboard.research_study", study_id=study.id), code=303)
        done = form.attempt(request_export)
        if done is not None:
            return done
    exports = _exports(study)
    return form.render("dashboard/research/study.html", study=study, exports=exports,
                       refresh=any(status not in SETTLED for _, status in exports),
                       views=[(v, v) for v in PHOTO_VIEWS], user=user())


@bp.route("/research/studies/<uuid:study_id>/exports/<uuid:export_id>/download")
@login_required(roles=RESEARCHERS)
@transactional
def research_download(study_id: uuid.UUID, export_id: uuid.UUID) -> Response:
    """The export zip, audited (as ``GET /api/v1/studies/{id}/exports/{id}/download``)."""
    study = study_service.get_study_or_404(user(), study_id)
    export = study_service.export_of_study_or_404(study, export_id)
    if export.status != "ready" or export.storage_key is None:
        problem(409, f"The export is {export.status}, not ready.", type_="export-not-ready")
    with current_storage().open(export.storage_key) as stream:
        data = stream.read()
    audit.record("study_export.download", "study", study.id, export=str(export.id))
    return Response(data, mimetype=export_package.ZIP_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="study-export-{export.id}.zip"',
        "Cache-Control": "private, no-store"})


@bp.route("/research/studies/<uuid:study_id>/statistics")
@login_required(roles=RESEARCHERS)
@transactional
def research_statistics(study_id: uuid.UUID) -> tuple[str, int]:
    """Cohort statistics as tables (the API's ``/statistics``), with the same k-anonymity options."""
    study = study_service.get_study_or_404(user(), study_id)
    schema = DeidentificationArgsSchema()
    args = {name: value for name, value in request.args.items() if name in schema.fields and value}
    try:
        options = schema.load(args)
    except ma.ValidationError as error:
        return render_template("dashboard/research/statistics.html", study=study, stats=None, args=args,
                               errors=error.messages, views=PHOTO_VIEWS, user=user()), 422
    stats = export_tables.cohort_statistics(study, study_service.options_from(study, options))
    audit.record("study.statistics_read", "study", study.id)
    # Plots travel inside the page (data: URIs, allowed by the CSP): no second computation.
    plots = [(MEASURE_BY_KEY[measure].label, "data:image/svg+xml;base64," + base64.b64encode(
        render_cohort_changes(stats["changes"], measure, ALL_SKIN)).decode())
             for measure in HEADLINE_MEASURES
             if any(row["measure"] == measure and row["region"] == ALL_SKIN for row in stats["changes"])]
    return render_template("dashboard/research/statistics.html", study=study, stats=stats, plots=plots, args=options,
                           errors={}, views=PHOTO_VIEWS, user=user()), 200
