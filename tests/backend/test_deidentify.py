"""De-identification rules: participant codes, date shifts, age bands, k-anonymity."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from backend.services import deidentify
from backend.services.deidentify import QuasiIdentifiers, age_band, age_in_years, k_anonymise


@pytest.mark.parametrize(("age", "width", "band"), [
    (17, 5, "<18"), (18, 5, "18-19"), (23, 5, "20-24"), (44, 10, "40-49"), (44, 20, "40-59"),
    (89, 5, "85-89"), (89, 20, "80-89"), (90, 5, "90+"), (104, 10, "90+"),
])
def test_age_bands_collapse_over_89_and_under_18(age: int, width: int, band: str) -> None:
    assert age_band(age, width) == band


def test_age_in_years_counts_completed_years() -> None:
    assert age_in_years(dt.date(1980, 6, 15), dt.date(2026, 6, 14)) == 45
    assert age_in_years(dt.date(1980, 6, 15), dt.date(2026, 6, 15)) == 46


def test_codes_are_random_and_shifts_within_range() -> None:
    codes = {deidentify.new_participant_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(c.startswith("P-") and len(c) == 10 for c in codes)
    shifts = [deidentify.new_date_shift_days() for _ in range(2000)]
    low, high = deidentify.DATE_SHIFT_RANGE_DAYS
    assert all(low <= s <= high for s in shifts)
    assert len(set(shifts)) > 300  # spread over the range, not a constant


def qi(age: int, fitz: int = 3, clinic: str = "C01", sex: str = "female") -> QuasiIdentifiers:
    return QuasiIdentifiers(age, sex, fitz, clinic, "photoaging", "adipose", "peel", False)


def class_sizes(values: dict[str, dict[str, str]]) -> Counter:
    return Counter(deidentify.class_key(v) for v in values.values())


def test_already_k_anonymous_data_is_released_unchanged() -> None:
    people = {f"P-{i}": qi(41) for i in range(5)}
    result = k_anonymise(people, k=5)
    assert result.steps_applied == [] and result.suppressed == []
    assert {v["age_band"] for v in result.values.values()} == {"40-44"}
    assert result.values["P-0"]["fitzpatrick_type"] == "III"


def test_generalisation_merges_before_suppressing() -> None:
    # Ages 40-49 and types III/IV: unique at 5-year bands and exact types; one class of 6 once
    # bands are 10 years and types are paired.
    people = {f"P-{i}": qi(40 + i, 3 + i % 2) for i in range(6)}
    result = k_anonymise(people, k=5, max_suppression=0.0)
    assert result.steps_applied == ["age bands widened to 10 years",
                                    "Fitzpatrick types merged to I-II / III-IV / V-VI"]
    assert result.suppressed == []
    assert set(class_sizes(result.values).values()) == {6}
    assert result.report()["min_class_size"] == 6


def test_small_remaining_classes_are_suppressed_and_k_is_met() -> None:
    people = {f"P-{i}": qi(42) for i in range(8)}
    people["P-old"] = qi(93)
    people["P-male"] = qi(42, sex="male")
    result = k_anonymise(people, k=5, max_suppression=0.25)
    assert result.suppressed == ["P-male", "P-old"]
    assert min(class_sizes(result.values).values()) >= 5
    report = result.report()
    assert report["participants_suppressed"] == 2 and report["participants_released"] == 8


def test_k_one_releases_everyone_exactly() -> None:
    people = {"P-a": qi(93), "P-b": qi(30, 6, "C02", "male")}
    result = k_anonymise(people, k=1)
    assert result.values["P-a"]["age_band"] == "90+"
    assert result.values["P-b"] == {**result.values["P-b"], "fitzpatrick_type": "VI", "clinic_code": "C02"}


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        k_anonymise({}, k=0)
    with pytest.raises(ValueError):
        k_anonymise({}, k=5, max_suppression=1.5)
