"""Repeatability of each measure from the clinics' own repeat captures (photo pairs taken minutes
apart at one visit): one row per scope, Fitzpatrick group, measure and region, as computed by the
``recompute_repeatability`` job (:mod:`backend.services.repeatability`).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from backend.models.clinical import one_of

#: ``clinic``: one clinic's pairs; ``all_clinics``: every clinic's pairs pooled (no clinic named).
REPEATABILITY_SCOPES = ("clinic", "all_clinics")


class RepeatabilityResult(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """Test-retest statistics of one measure in one region from repeat-capture pairs.

    Attributes
    ----------
    scope : str
        One of :data:`REPEATABILITY_SCOPES`.
    clinic_id : UUID or None
        The clinic of a ``clinic`` row; None for ``all_clinics`` (which reveals no clinic).
    fitzpatrick_group : str or None
        ``imaging.catalogue.FITZPATRICK_GROUP_NAMES`` entry, or None for every skin type.
    algorithm_version : str
        Only pairs whose two analyses are of this version were used.
    computed_at : datetime
        When the job computed the row (UTC).
    measure, region : str
        Measure key and region key (``all_skin`` for the whole face).
    n_pairs : int
    n_clinics : int
        Clinics whose pairs were used (1 for a ``clinic`` row; at least 3 for ``all_clinics``).
    within_subject_sd, icc, icc_ci_low, icc_ci_high, sem, mdc95, bias, loa_low, loa_high : float or None
        See :func:`imaging.reliability.repeat_pair_statistics`; None when not computable (too
        few pairs, no variance).
    """

    __tablename__ = "repeatability_results"
    __table_args__ = (
        CheckConstraint(one_of("scope", REPEATABILITY_SCOPES), name="scope_known"),
        CheckConstraint("(scope = 'clinic') = (clinic_id IS NOT NULL)", name="clinic_iff_clinic_scope"),
        Index("ix_repeatability_results_lookup", "algorithm_version", "scope", "clinic_id"),
    )

    scope: Mapped[str] = mapped_column(String(12))
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), default=None)
    fitzpatrick_group: Mapped[str | None] = mapped_column(String(8), default=None)
    algorithm_version: Mapped[str] = mapped_column(String(32))
    computed_at: Mapped[dt.datetime]
    measure: Mapped[str] = mapped_column(String(120))
    region: Mapped[str] = mapped_column(String(40))
    n_pairs: Mapped[int]
    n_clinics: Mapped[int]
    within_subject_sd: Mapped[float | None] = mapped_column(Float, default=None)
    icc: Mapped[float | None] = mapped_column(Float, default=None)
    icc_ci_low: Mapped[float | None] = mapped_column(Float, default=None)
    icc_ci_high: Mapped[float | None] = mapped_column(Float, default=None)
    sem: Mapped[float | None] = mapped_column(Float, default=None)
    mdc95: Mapped[float | None] = mapped_column(Float, default=None)
    bias: Mapped[float | None] = mapped_column(Float, default=None)
    loa_low: Mapped[float | None] = mapped_column(Float, default=None)
    loa_high: Mapped[float | None] = mapped_column(Float, default=None)
