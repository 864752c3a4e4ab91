"""REDCap files of the study export: the dictionary and the longitudinal records pass a simulated
REDCap import, and the dictionary is the codebook's variables (one source)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.services.export import redcap
from backend.services.export.codebook import TABLES
from backend.services.export.writers import csv_bytes
from tests.backend.export_helpers import build_study_world, export_zip, read_csv
from tests.backend.redcap_import import ImportRefused, import_records, load_dictionary


def test_redcap_files_import_and_carry_every_released_row(app: Flask, client: FlaskClient) -> None:
    w = build_study_world(app, client)
    archive = export_zip(client, w)
    dictionary = archive.read("redcap/data_dictionary.csv").decode()
    records = archive.read("redcap/records.csv").decode()
    designation = archive.read("redcap/instrument_designation.csv").decode()
    rows = import_records(dictionary, records, designation)

    participants = read_csv(archive, "participants.csv")
    assert {r["participant_id"] for r in participants} == {r["record_id"] for r in rows}
    assert len(participants) >= 5
    measurements = read_csv(archive, "measurements.csv")
    imported = [r for r in rows if r["redcap_repeat_instrument"] == "measurements"]
    assert len(imported) == len(measurements)
    first = measurements[0]
    event = f"visit_{first['milestone']}_arm_1"
    assert any(r["record_id"] == first["participant_id"] and r["redcap_event_name"] == event
               and r["msr_measure"] == first["measure"] and r["msr_region"] == first["region"]
               and float(r["msr_value"]) == float(first["value"]) for r in imported)
    # One row per record and event for the non-repeating instruments (participants + visits at baseline).
    baseline = [r for r in rows if r["redcap_event_name"] == "visit_baseline_arm_1" and not r["redcap_repeat_instrument"]]
    assert len(baseline) == len(participants) and all(r["pt_sex"] and r["vis_scheduled_day"] == "0" for r in baseline)
    events = [r for r in rows if r["redcap_repeat_instrument"] == "adverse_events"]
    assert len(events) == len(read_csv(archive, "adverse_events.csv"))
    assert {r["vis_completed"] for r in rows if r["vis_completed"]} <= {"0", "1"}


def test_dictionary_is_generated_from_the_codebook() -> None:
    """Every codebook variable of every per-record table is a field with the codebook's label."""
    fields = load_dictionary(csv_bytes(redcap.DICTIONARY_COLUMNS, redcap.dictionary_rows()).decode())
    labels = {(f["Form Name"], f["Field Label"]) for f in fields.values()}
    for table, variables in TABLES.items():
        if table == "summary.csv":
            continue
        form = table.removesuffix(".csv")
        for variable in variables:
            if variable.name in ("participant_id", "milestone"):
                continue
            assert (form, variable.description) in labels, (table, variable.name)
            field = fields[f"{next(i.prefix for i in redcap.INSTRUMENTS if i.form == form)}_{variable.name}"]
            if variable.choices:
                assert field["_codes"] == list(variable.choices)
    assert fields["asm_gais"]["Text Validation Min"] == "1" and fields["asm_gais"]["Text Validation Max"] == "5"


@pytest.mark.parametrize("bad", ["Bad Name", "1starts_with_digit", "has-dash"])
def test_the_simulated_import_refuses_bad_field_names(bad: str) -> None:
    rows = redcap.dictionary_rows()
    rows[1] = {**rows[1], "Variable / Field Name": bad}
    with pytest.raises(ImportRefused):
        load_dictionary(csv_bytes(redcap.DICTIONARY_COLUMNS, rows).decode())
