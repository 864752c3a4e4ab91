"""ICC(2,1), SEM and MDC95 against a published worked example and an independent ANOVA."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from imaging.reliability import (
    anova_mean_squares,
    exceeds_mdc,
    icc_2_1,
    koo_li_band,
    minimal_detectable_change,
    reliability,
    standard_error_of_measurement,
)

#: Shrout & Fleiss (1979), "Intraclass correlations: uses in assessing rater reliability",
#: Psychol Bull 86(2):420-428, Table 2: 6 targets (rows) rated by 4 judges (columns).
SHROUT_FLEISS_RATINGS = np.array(
    [
        [9, 2, 5, 8],
        [6, 1, 3, 2],
        [8, 4, 6, 8],
        [7, 1, 2, 6],
        [10, 5, 6, 9],
        [6, 2, 4, 7],
    ],
    dtype=float,
)
#: Their Table 3 mean squares (BMS, JMS, EMS) and Table 4 ICC(2,1) = .29.
SHROUT_FLEISS_BMS, SHROUT_FLEISS_JMS, SHROUT_FLEISS_EMS = 11.24, 32.49, 1.02
SHROUT_FLEISS_ICC_2_1 = 0.29


def test_reproduces_shrout_fleiss_worked_example():
    ms = anova_mean_squares(SHROUT_FLEISS_RATINGS)
    assert ms.msr == pytest.approx(SHROUT_FLEISS_BMS, abs=0.005)
    assert ms.msc == pytest.approx(SHROUT_FLEISS_JMS, abs=0.005)
    assert ms.mse == pytest.approx(SHROUT_FLEISS_EMS, abs=0.005)
    assert icc_2_1(SHROUT_FLEISS_RATINGS) == pytest.approx(SHROUT_FLEISS_ICC_2_1, abs=0.005)


def _icc_by_variance_components(matrix: np.ndarray) -> float:
    """Independent route: a long-format two-way ANOVA with scipy's F distribution as a check,
    then ICC(A,1) from the variance components (McGraw & Wong 1996, Table 4 estimators)."""
    n, k = matrix.shape
    subject = np.repeat(np.arange(n), k)
    session = np.tile(np.arange(k), n)
    y = matrix.ravel()
    # Least-squares fit of the additive model y = mu + a_subject + b_session.
    design = np.column_stack([np.ones_like(y)]
                             + [(subject == i).astype(float) for i in range(1, n)]
                             + [(session == j).astype(float) for j in range(1, k)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    ss_error = float(residual @ residual)
    ss_subject = float(sum(k * (y[subject == i].mean() - y.mean()) ** 2 for i in range(n)))
    ss_session = float(sum(n * (y[session == j].mean() - y.mean()) ** 2 for j in range(k)))
    df_error = (n - 1) * (k - 1)
    ms_subject, ms_session, ms_error = ss_subject / (n - 1), ss_session / (k - 1), ss_error / df_error
    # The F test must be well-defined for this data (guards the decomposition itself).
    assert 0.0 <= stats.f.sf(ms_subject / ms_error, n - 1, df_error) <= 1.0
    var_subject = (ms_subject - ms_error) / k
    var_session = (ms_session - ms_error) / n
    return var_subject / (var_subject + var_session + ms_error)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_independent_anova_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n, k = 12, 5
    truth = rng.normal(50, 10, (n, 1))
    session_bias = rng.normal(0, 2, (1, k))
    scores = truth + session_bias + rng.normal(0, 3, (n, k))
    assert icc_2_1(scores) == pytest.approx(_icc_by_variance_components(scores), rel=1e-9)


def test_icc_orders_noise_levels_and_penalises_systematic_bias():
    rng = np.random.default_rng(7)
    truth = rng.normal(0, 1, (30, 1))
    quiet = truth + rng.normal(0, 0.1, (30, 4))
    noisy = truth + rng.normal(0, 1.0, (30, 4))
    assert icc_2_1(quiet) > 0.95 > icc_2_1(noisy)
    # A constant offset on one recapture keeps consistency but breaks absolute agreement.
    biased = quiet + np.array([[0.0, 0.0, 0.0, 2.0]])
    assert icc_2_1(biased) < icc_2_1(quiet) - 0.2


def test_sem_and_mdc_formulas():
    assert standard_error_of_measurement(4.0, 0.75) == pytest.approx(2.0)
    assert minimal_detectable_change(2.0) == pytest.approx(1.96 * math.sqrt(2) * 2.0)
    result = reliability(SHROUT_FLEISS_RATINGS)
    sd = SHROUT_FLEISS_RATINGS.std(ddof=1)
    assert result.sd == pytest.approx(sd)
    assert result.sem == pytest.approx(sd * math.sqrt(1 - result.icc))
    assert result.mdc95 == pytest.approx(1.96 * math.sqrt(2) * result.sem)
    assert result.band == "poor"
    assert (result.n_subjects, result.n_recaptures) == (6, 4)
    assert set(result.to_dict()) == {"icc", "sem", "mdc95", "sd", "band", "n_subjects", "n_recaptures"}


@pytest.mark.parametrize(
    "icc, band",
    [(0.2, "poor"), (0.5, "moderate"), (0.74, "moderate"), (0.75, "good"), (0.9, "good"),
     (0.91, "excellent"), (float("nan"), "poor")],
)
def test_koo_li_bands(icc, band):
    assert koo_li_band(icc) == band


def test_exceeds_mdc():
    assert exceeds_mdc(-3.0, 2.5)
    assert not exceeds_mdc(2.0, 2.5)
    assert not exceeds_mdc(float("nan"), 2.5)


@pytest.mark.parametrize("bad", [[1, 2, 3], [[1.0, 2.0]], [[1.0, float("nan")], [2.0, 3.0]]])
def test_refuses_unusable_input(bad):
    with pytest.raises(ValueError):
        icc_2_1(bad)


def test_published_table_covers_every_study_measure_for_this_version():
    from imaging.catalogue import STUDIED_MEASURES
    from imaging.reliability import load_reliability_table
    from imaging.version import ALGORITHM_VERSION

    published = load_reliability_table()
    table = published.all_skin
    assert set(table) == set(STUDIED_MEASURES)
    assert published.algorithm_version == ALGORITHM_VERSION, (
        "the measures changed: regenerate the table with `.venv/bin/python bench/reliability.py --write`")
    for name, entry in table.items():
        assert entry.mdc95 == pytest.approx(1.96 * math.sqrt(2) * entry.sem), name
        assert entry.band == koo_li_band(entry.icc)


def test_published_table_has_every_face_region_and_its_date():
    from imaging.catalogue import REGION_NAMES, STUDIED_MEASURES
    from imaging.reliability import load_reliability_table

    table = load_reliability_table()
    assert list(table.regions) == list(REGION_NAMES)
    for region, entries in table.regions.items():
        # The forehead is redness's reference: it has no redness of its own.
        expected = set(STUDIED_MEASURES) - ({"redness"} if region == "forehead" else set())
        assert set(entries) == expected, region
    # Noise by skin type: every Fitzpatrick group of the real-face set has its own entries.
    assert set(table.groups) == {"I-II", "III-IV", "V-VI"}
    for group, sections in table.groups.items():
        assert set(sections["all_skin"]) == set(STUDIED_MEASURES), group
        assert table.entry("redness", "all_skin", group) == sections["all_skin"]["redness"]
    assert table.generated_at and table.generated_at.startswith("20")
    entries = table.by_region()
    assert entries[("all_skin", "redness")] == table.all_skin["redness"]
    assert entries[("nose", "texture")] == table.regions["nose"]["texture"]


def test_a_hand_written_table_needs_only_mdc_icc_and_band(tmp_path):
    from imaging.reliability import load_reliability_table

    path = tmp_path / "table.json"
    path.write_text('{"algorithm_version": "1999.1.1", "measures": {"redness": {"mdc95": 1.5, "icc": 0.9, '
                    '"band": "excellent"}}}')
    table = load_reliability_table(path)
    assert table.algorithm_version == "1999.1.1" and table.generated_at is None and table.regions == {}
    entry = table.all_skin["redness"]
    assert (entry.mdc95, entry.icc, entry.band) == (1.5, 0.9, "excellent") and math.isnan(entry.sem)


def test_readme_reliability_tables_are_the_published_study():
    from pathlib import Path

    from imaging.reliability import markdown_tables

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    expected = markdown_tables()
    assert expected in readme, "README reliability tables differ: paste `python -m imaging.reliability`:\n" + expected
