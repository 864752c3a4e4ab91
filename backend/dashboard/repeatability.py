"""Dashboard: the clinic's repeatability page (its repeat captures' noise per measure and region,
the pooled values of all clinics, the MDC95 in use and its source) and its Bland-Altman plots.

Routes are added to the dashboard blueprint (:mod:`backend.dashboard.views`); the rules and the
numbers come from :mod:`backend.services.repeatability`.
"""

from __future__ import annotations

from flask import Response, render_template, request

from backend import audit
from backend.dashboard.views import bp, login_required, user
from backend.http.problems import problem
from backend.services import access
from backend.services import progress as progress_service
from backend.services import repeatability as repeatability_service
from backend.services.charts import CHART_MEDIA_TYPES, render_bland_altman
from backend.unit_of_work import transactional
from imaging.catalogue import MEASURE_BY_KEY, REGION_BY_KEY
from imaging.version import ALGORITHM_VERSION


@bp.route("/repeatability")
@login_required
@transactional
def repeatability() -> str:
    """Per measure and region: the clinic's repeat pairs, ICC with its CI, SEM, MDC95, Bland-Altman
    bias and limits, the pooled values of all clinics and which MDC95 results are judged with."""
    clinic_id = user().clinic_id
    lines = repeatability_service.clinic_repeatability(
        clinic_id, progress_service.study_mdc_table(ALGORITHM_VERSION))
    audit.record("repeatability.read", "clinic", clinic_id)
    return render_template(
        "dashboard/repeatability.html", user=user(), lines=lines, measures=progress_service.SERIES_MEASURES,
        measure_labels={key: MEASURE_BY_KEY[key].label for key in progress_service.SERIES_MEASURES},
        units={key: MEASURE_BY_KEY[key].unit for key in progress_service.SERIES_MEASURES},
        region_labels={key: REGION_BY_KEY[key].label for key in progress_service.SERIES_REGIONS},
        algorithm_version=ALGORITHM_VERSION, min_pairs=repeatability_service.MIN_PAIRS,
        min_icc_lower=repeatability_service.MIN_ICC_LOWER_BOUND,
        min_pooled_clinics=repeatability_service.MIN_POOLED_CLINICS,
        by_skin_type=repeatability_service.clinic_rows_by_skin_type(clinic_id),
    )


@bp.route("/repeatability/bland-altman/<string:measure>.<any(png,svg):fmt>")
@login_required
@transactional
def bland_altman(measure: str, fmt: str) -> Response:
    """The clinic's Bland-Altman plot of one measure (region ``region``, default all skin)."""
    if measure not in progress_service.SERIES_MEASURES:
        access.not_found("measure")
    region = request.args.get("region", progress_service.ALL_SKIN)
    if region not in progress_service.SERIES_REGIONS:
        problem(422, f"Unknown region {region!r}.", type_="invalid-region")
    clinic_id = user().clinic_id
    pairs = repeatability_service.clinic_pair_values(clinic_id, measure, region)
    row = repeatability_service.stored_results(ALGORITHM_VERSION, clinic_id=clinic_id).get((region, measure))
    loa = (row.loa_low, row.loa_high) if row is not None and row.loa_low is not None else None
    data = render_bland_altman(measure, pairs, fmt, bias=row.bias if row is not None else None, loa=loa,
                               subtitle=f"{REGION_BY_KEY[region].label.lower()}, this clinic")
    audit.record("repeatability.read", "clinic", clinic_id, measure=measure, region=region)
    return Response(data, mimetype=CHART_MEDIA_TYPES[fmt], headers={"Cache-Control": "private, no-store"})
