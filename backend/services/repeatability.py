"""Measurement noise from real patients: repeatability of the clinics' repeat captures, and the
MDC95 each result is judged with, with its provenance.

Repeat pairs
    A repeat capture (``Photo.repeat_of_id``) and the photo it repeats, both usable and not
    deleted, both analysed by the same algorithm version with a face found. Per measure and
    region (the progress series' measures and regions, from :mod:`imaging.catalogue`) the pair's
    two values give one row of :func:`imaging.reliability.repeat_pair_statistics`.

Recomputation
    The ``recompute_repeatability`` job (enqueued by the analysis job when the second photo of a
    pair has been analysed) replaces every stored row of that algorithm version: per clinic
    (``scope="clinic"``), all clinics pooled (``scope="all_clinics"``, no clinic named), each
    overall and per Fitzpatrick group (:data:`imaging.catalogue.FITZPATRICK_GROUPS`). Each row
    has the computing date and the algorithm version. Demo clinics are never pooled, and a pooled
    row needs pairs from at least :data:`MIN_POOLED_CLINICS` clinics, so that a clinic which
    knows its own pairs cannot work out another clinic's values from the pooled ones.

Provenance rule (:func:`mdc_provider`)
    A result of a patient of clinic C is judged with, per measure and region (all skin types):

    1. C's own MDC95 (``source="clinic"``) when C has at least :data:`MIN_PAIRS` pairs and the
       lower bound of the ICC's 95 % CI is at least :data:`MIN_ICC_LOWER_BOUND`;
    2. else the pooled MDC95 of all clinics (``source="all_clinics"``) under the same condition;
    3. else the published recapture study (``source="recapture_study"``,
       ``imaging/reliability_table.json`` through :func:`imaging.reliability.load_reliability_table`).

    ``n_pairs`` is the number of repeat pairs behind the MDC used (0 for the recapture study,
    which measured synthetic recaptures, not patients).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, text
from sqlalchemy.orm import aliased

from backend.extensions import db, now
from backend.jobs import JobContext, enqueue, job_handler
from backend.models.accounts import Clinic
from backend.models.clinical import Patient
from backend.models.photos import Photo, PhotoAnalysis, PhotoMeasurement
from backend.models.repeatability import RepeatabilityResult
from imaging.catalogue import FITZPATRICK_GROUP_NAMES, FITZPATRICK_GROUPS
from imaging.reliability import repeat_pair_statistics
from imaging.version import ALGORITHM_VERSION
from schemas.progress import MDC_SOURCES, SERIES_MEASURES, SERIES_REGIONS  # noqa: F401  (MDC_SOURCES: the order the rule tries)

#: Job kind of the recomputation.
RECOMPUTE_JOB = "recompute_repeatability"
#: A clinic's (or the pooled) MDC95 replaces the recapture study's from this many pairs ...
MIN_PAIRS = 20
#: ... when the lower bound of the ICC's 95 % confidence interval is at least this.
MIN_ICC_LOWER_BOUND = 0.5
#: Pooled rows need pairs of at least this many (non-demo) clinics.
MIN_POOLED_CLINICS = 3
#: PostgreSQL advisory lock held while one recomputation replaces the rows.
RECOMPUTE_LOCK_KEY = 0x5EB7_13


# ------------------------------------------------------------------ pairs


@dataclass(frozen=True)
class RepeatPair:
    """One repeat pair's analyses and who it belongs to (no patient identity)."""

    clinic_id: uuid.UUID
    demo_clinic: bool
    fitzpatrick_group: str
    first_analysis_id: uuid.UUID
    repeat_analysis_id: uuid.UUID


def repeat_pairs(algorithm_version: str = ALGORITHM_VERSION) -> list[RepeatPair]:
    """Every comparable repeat pair of ``algorithm_version`` (see the module docstring)."""
    first, first_analysis, repeat_analysis = aliased(Photo), aliased(PhotoAnalysis), aliased(PhotoAnalysis)
    rows = db.session.execute(
        select(Patient.clinic_id, Clinic.is_demo, Patient.fitzpatrick_type, first_analysis.id, repeat_analysis.id)
        .select_from(Photo)
        .join(first, Photo.repeat_of_id == first.id)
        .join(Patient, Photo.patient_id == Patient.id)
        .join(Clinic, Patient.clinic_id == Clinic.id)
        .join(first_analysis, (first_analysis.photo_id == first.id)
              & (first_analysis.algorithm_version == algorithm_version) & first_analysis.face_found.is_(True))
        .join(repeat_analysis, (repeat_analysis.photo_id == Photo.id)
              & (repeat_analysis.algorithm_version == algorithm_version) & repeat_analysis.face_found.is_(True))
        .where(Photo.usable.is_(True), first.usable.is_(True),
               Photo.deleted_at.is_(None), first.deleted_at.is_(None))
    ).all()
    return [RepeatPair(clinic_id, bool(demo), FITZPATRICK_GROUPS[int(fitzpatrick)], a, b)
            for clinic_id, demo, fitzpatrick, a, b in rows]


def _values(analysis_ids: Iterable[uuid.UUID]) -> dict[tuple[uuid.UUID, str, str], float]:
    ids = list(set(analysis_ids))
    out: dict[tuple[uuid.UUID, str, str], float] = {}
    for start in range(0, len(ids), 500):
        rows = db.session.execute(
            select(PhotoMeasurement.analysis_id, PhotoMeasurement.region, PhotoMeasurement.measure,
                   PhotoMeasurement.value)
            .where(PhotoMeasurement.analysis_id.in_(ids[start:start + 500]),
                   PhotoMeasurement.measure.in_(list(SERIES_MEASURES)),
                   PhotoMeasurement.region.in_(list(SERIES_REGIONS)))
        ).all()
        out.update({(a, r, m): v for a, r, m, v in rows if v is not None and math.isfinite(v)})
    return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _result_row(pairs: Sequence[RepeatPair], values: dict, measure: str, region: str, *, scope: str,
                clinic_id: uuid.UUID | None, group: str | None, version: str, at: dt.datetime) -> RepeatabilityResult | None:
    firsts, repeats, clinics = [], [], set()
    for pair in pairs:
        a = values.get((pair.first_analysis_id, region, measure))
        b = values.get((pair.repeat_analysis_id, region, measure))
        if a is not None and b is not None:
            firsts.append(a)
            repeats.append(b)
            clinics.add(pair.clinic_id)
    if not firsts or (scope == "all_clinics" and len(clinics) < MIN_POOLED_CLINICS):
        return None
    stats = repeat_pair_statistics(firsts, repeats)
    return RepeatabilityResult(
        scope=scope, clinic_id=clinic_id, fitzpatrick_group=group, algorithm_version=version, computed_at=at,
        measure=measure, region=region, n_pairs=stats.n_pairs, n_clinics=len(clinics),
        within_subject_sd=_finite(stats.within_subject_sd), icc=_finite(stats.icc),
        icc_ci_low=_finite(stats.icc_ci_low), icc_ci_high=_finite(stats.icc_ci_high), sem=_finite(stats.sem),
        mdc95=_finite(stats.mdc95), bias=_finite(stats.bias), loa_low=_finite(stats.loa_low),
        loa_high=_finite(stats.loa_high),
    )


def recompute(algorithm_version: str = ALGORITHM_VERSION) -> int:
    """Replace the stored repeatability of ``algorithm_version`` (in the caller's transaction).

    Returns
    -------
    int
        Rows written.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        # Two recomputations at once would each delete the old rows and insert their own (both
        # sets kept): one at a time, until the transaction ends. SQLite serialises writers itself.
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RECOMPUTE_LOCK_KEY})
    pairs = repeat_pairs(algorithm_version)
    values = _values([p.first_analysis_id for p in pairs] + [p.repeat_analysis_id for p in pairs])
    at = now()
    scopes: list[tuple[str, uuid.UUID | None, list[RepeatPair]]] = []
    by_clinic: dict[uuid.UUID, list[RepeatPair]] = defaultdict(list)
    for pair in pairs:
        by_clinic[pair.clinic_id].append(pair)
    scopes.extend(("clinic", clinic_id, own) for clinic_id, own in sorted(by_clinic.items(), key=lambda i: str(i[0])))
    scopes.append(("all_clinics", None, [p for p in pairs if not p.demo_clinic]))

    db.session.execute(delete(RepeatabilityResult).where(RepeatabilityResult.algorithm_version == algorithm_version))
    written = 0
    for scope, clinic_id, scope_pairs in scopes:
        for group in (None, *FITZPATRICK_GROUP_NAMES):
            chosen = [p for p in scope_pairs if group is None or p.fitzpatrick_group == group]
            for measure in SERIES_MEASURES:
                for region in SERIES_REGIONS:
                    row = _result_row(chosen, values, measure, region, scope=scope, clinic_id=clinic_id,
                                      group=group, version=algorithm_version, at=at)
                    if row is not None:
                        db.session.add(row)
                        written += 1
    db.session.flush()
    return written


@job_handler(RECOMPUTE_JOB)
def recompute_repeatability(ctx: JobContext) -> str | None:
    """Job: recompute every clinic's and the pooled repeatability of one algorithm version.

    Payload: ``algorithm_version`` (str) and ``photo_id`` (the repeat whose analysis arrived; it
    only makes the job's dedupe key).
    """
    written = recompute(str(ctx.payload.get("algorithm_version", ALGORITHM_VERSION)))
    return f"{written} rows"


def enqueue_recompute_when_paired(photo: Photo, algorithm_version: str, *,
                                  replaced: uuid.UUID | None = None) -> None:
    """After ``photo``'s analysis: enqueue the recomputation if it completes a repeat pair.

    Call in the analysis job's transaction, after its analysis row was added. ``replaced``: the
    id of the analysis it replaced (a follow-up registered again), whose values the stored
    repeatability was computed from: a recomputation of its own.
    """
    if photo.repeat_of_id is not None:
        repeat_id, other_id = photo.id, photo.repeat_of_id
    else:
        repeat_id = db.session.scalar(select(Photo.id).where(Photo.repeat_of_id == photo.id).limit(1))
        other_id = repeat_id
    if repeat_id is None:
        return
    db.session.flush()
    analysed = db.session.scalar(
        select(PhotoAnalysis.id).where(PhotoAnalysis.photo_id == other_id,
                                       PhotoAnalysis.algorithm_version == algorithm_version).limit(1))
    if analysed is not None:
        enqueue(RECOMPUTE_JOB, {"algorithm_version": algorithm_version, "photo_id": str(repeat_id)},
                dedupe_key=f"{repeat_id}:{algorithm_version}" + (f":{replaced}" if replaced is not None else ""))


# ------------------------------------------------------------------ which MDC95


@dataclass(frozen=True)
class MdcChoice:
    """The MDC95 one result is judged with, and where it comes from.

    Attributes
    ----------
    mdc95 : float or None
        The measure's units; None when no source has one (then no flag is raised).
    source : str or None
        One of :data:`MDC_SOURCES`; None with ``mdc95``.
    n_pairs : int
        Repeat pairs behind it (0 for the recapture study).
    """

    mdc95: float | None
    source: str | None
    n_pairs: int = 0

    @property
    def label(self) -> str:
        """Short words for a chart legend or a table: where the MDC95 comes from."""
        if self.source == "clinic":
            return f"this clinic's repeat photos, {self.n_pairs} pairs"
        if self.source == "all_clinics":
            return f"all clinics' repeat photos, {self.n_pairs} pairs"
        if self.source == "recapture_study":
            return "recapture study"
        return "no MDC"


def qualifies(row: RepeatabilityResult | None) -> bool:
    """Whether a stored row is good enough to replace the recapture study (the thresholds)."""
    return (row is not None and row.mdc95 is not None and row.n_pairs >= MIN_PAIRS
            and row.icc_ci_low is not None and row.icc_ci_low >= MIN_ICC_LOWER_BOUND)


def stored_results(algorithm_version: str, *, clinic_id: uuid.UUID | None,
                   fitzpatrick_group: str | None = None) -> dict[tuple[str, str], RepeatabilityResult]:
    """Stored rows of one clinic (or, with ``clinic_id=None``, of all clinics pooled), keyed by
    (region, measure); ``fitzpatrick_group=None`` for every skin type."""
    scope = "clinic" if clinic_id is not None else "all_clinics"
    statement = select(RepeatabilityResult).where(
        RepeatabilityResult.algorithm_version == algorithm_version, RepeatabilityResult.scope == scope,
        RepeatabilityResult.clinic_id == clinic_id if clinic_id is not None else RepeatabilityResult.clinic_id.is_(None),
        RepeatabilityResult.fitzpatrick_group == fitzpatrick_group if fitzpatrick_group is not None
        else RepeatabilityResult.fitzpatrick_group.is_(None),
    )
    return {(row.region, row.measure): row for row in db.session.scalars(statement)}


def mdc_provider(clinic_id: uuid.UUID | None, algorithm_version: str,
                 study_table: dict[tuple[str, str], object]):
    """A function ``(region, measure) -> MdcChoice`` applying the provenance rule for one clinic.

    Parameters
    ----------
    clinic_id : UUID or None
        The patient's clinic (None: only the pooled rows and the study are tried).
    algorithm_version : str
    study_table : dict
        The recapture study's entries valid for ``algorithm_version``, keyed by (region, measure),
        each with ``mdc95`` (``backend.services.progress.mdc_table``).
    """
    own = stored_results(algorithm_version, clinic_id=clinic_id) if clinic_id is not None else {}
    pooled = stored_results(algorithm_version, clinic_id=None)

    def choose(region: str, measure: str) -> MdcChoice:
        for source, rows in (("clinic", own), ("all_clinics", pooled)):
            row = rows.get((region, measure))
            if qualifies(row):
                return MdcChoice(row.mdc95, source, row.n_pairs)
        study = study_table.get((region, measure))
        if study is not None:
            return MdcChoice(study.mdc95, "recapture_study", 0)
        return MdcChoice(None, None, 0)

    return choose



# ------------------------------------------------------------------ what the clinic sees


def clinic_pair_values(clinic_id: uuid.UUID, measure: str, region: str,
                       algorithm_version: str = ALGORITHM_VERSION) -> list[tuple[float, float]]:
    """(first, repeat) values of one clinic's comparable repeat pairs (its Bland-Altman plot)."""
    pairs = [p for p in repeat_pairs(algorithm_version) if p.clinic_id == clinic_id]
    values = _values([p.first_analysis_id for p in pairs] + [p.repeat_analysis_id for p in pairs])
    out = []
    for pair in pairs:
        a = values.get((pair.first_analysis_id, region, measure))
        b = values.get((pair.repeat_analysis_id, region, measure))
        if a is not None and b is not None:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class RepeatabilityLine:
    """One measure and region on the repeatability page: the clinic's row, the pooled row and the
    MDC95 its patients' results are judged with."""

    measure: str
    region: str
    clinic: RepeatabilityResult | None
    pooled: RepeatabilityResult | None
    used: MdcChoice


def clinic_repeatability(clinic_id: uuid.UUID, study_table: dict[tuple[str, str], object],
                         algorithm_version: str = ALGORITHM_VERSION) -> list[RepeatabilityLine]:
    """Per measure and region (catalogue order): the clinic's and the pooled repeatability (all
    skin types) and the MDC95 in use (the provenance rule)."""
    own = stored_results(algorithm_version, clinic_id=clinic_id)
    pooled = stored_results(algorithm_version, clinic_id=None)
    choose = mdc_provider(clinic_id, algorithm_version, study_table)
    return [RepeatabilityLine(measure, region, own.get((region, measure)), pooled.get((region, measure)),
                              choose(region, measure))
            for measure in SERIES_MEASURES for region in SERIES_REGIONS]


def clinic_rows_by_skin_type(clinic_id: uuid.UUID, algorithm_version: str = ALGORITHM_VERSION,
                             region: str = "all_skin") -> list[RepeatabilityResult]:
    """The clinic's rows of one region per Fitzpatrick group (groups lightest first, then measures in
    series order); shown, not used for flags (those use every skin type together)."""
    rows = db.session.scalars(select(RepeatabilityResult).where(
        RepeatabilityResult.algorithm_version == algorithm_version, RepeatabilityResult.scope == "clinic",
        RepeatabilityResult.clinic_id == clinic_id, RepeatabilityResult.region == region,
        RepeatabilityResult.fitzpatrick_group.is_not(None))).all()
    measure_order = {m: i for i, m in enumerate(SERIES_MEASURES)}
    group_order = {g: i for i, g in enumerate(FITZPATRICK_GROUP_NAMES)}
    return sorted(rows, key=lambda r: (group_order.get(r.fitzpatrick_group, 99), measure_order.get(r.measure, 99)))
