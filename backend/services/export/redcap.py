"""REDCap files of a study export, generated from the codebook's variable definitions.

- ``redcap/data_dictionary.csv``: REDCap's 18-column data dictionary; ``record_id`` (the
  participant code) first, then one instrument per table (participants, visits, measurements,
  assessments, adverse_events). Field names are ``<instrument prefix>_<variable>`` because REDCap
  field names are unique across a project; types, choices, ranges, units (field note) and labels
  come from :data:`backend.services.export.codebook.TABLES`, the one definition of the variables.
- ``redcap/records.csv``: the de-identified rows in REDCap's longitudinal import format: one row
  per record and event (``redcap_event_name``: one event per milestone, ``<milestone>_arm_1``
  after the ``visit_`` prefix), repeating instruments (measurements, assessments, adverse events)
  with ``redcap_repeat_instrument`` and ``redcap_repeat_instance``. Yes/no fields are 1/0.
- ``redcap/instrument_designation.csv``: which instrument is collected at which event.

The summary table is aggregate, not per record, and stays out of REDCap.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backend.services.export.codebook import TABLES, Variable

#: REDCap's data dictionary columns, in its order.
DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)
RECORD_ID = "record_id"
EVENT = "redcap_event_name"
REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
ARM = 1
#: Event of the rows that belong to no milestone (participant data, adverse events).
BASELINE_MILESTONE = "baseline"
#: REDCap keeps this many characters of an event name in its unique event name.
EVENT_NAME_LENGTH = 18
#: Columns that become REDCap's record and event keys instead of fields.
KEY_COLUMNS = ("participant_id", "milestone")
DESIGNATION_COLUMNS = ("arm_num", "unique_event_name", "form")


@dataclass(frozen=True)
class Instrument:
    """One REDCap instrument: an export table."""

    table: str
    form: str
    prefix: str
    repeating: bool
    #: Collected at every milestone's event (else at the baseline event only).
    per_milestone: bool


INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("participants.csv", "participants", "pt", repeating=False, per_milestone=False),
    Instrument("visits.csv", "visits", "vis", repeating=False, per_milestone=True),
    Instrument("measurements.csv", "measurements", "msr", repeating=True, per_milestone=True),
    Instrument("assessments.csv", "assessments", "asm", repeating=True, per_milestone=True),
    Instrument("adverse_events.csv", "adverse_events", "ae", repeating=True, per_milestone=False),
)


def field_name(instrument: Instrument, variable: Variable) -> str:
    """The REDCap field of a codebook variable (unique across the project)."""
    return f"{instrument.prefix}_{variable.name}"


def unique_event_name(milestone: str) -> str:
    """REDCap's unique event name of a milestone's event (``visit_1_month`` -> ``visit_1_month_arm_1``)."""
    event = re.sub(r"[^a-z0-9]+", "_", f"visit_{milestone}".lower()).strip("_")[:EVENT_NAME_LENGTH].rstrip("_")
    return f"{event}_arm_{ARM}"


def _fields(instrument: Instrument) -> list[Variable]:
    return [v for v in TABLES[instrument.table] if v.name not in KEY_COLUMNS]


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def dictionary_row(instrument: Instrument, variable: Variable) -> dict[str, str]:
    """The data dictionary row of one codebook variable."""
    field_type, validation, choices = "text", "", ""
    if variable.type == "boolean":
        field_type = "yesno"
    elif variable.choices:
        field_type = "dropdown"
        choices = " | ".join(f"{code}, {code.replace('_', ' ')}" for code in variable.choices)
    elif variable.type in ("integer", "number"):
        validation = variable.type
    elif variable.unit == "ISO date":
        validation = "date_ymd"
    note = "; ".join(part for part in (f"Unit: {variable.unit}" if variable.unit else "", variable.allowed
                                       if not variable.choices else "") if part)
    return {
        "Variable / Field Name": field_name(instrument, variable), "Form Name": instrument.form,
        "Field Type": field_type, "Field Label": variable.description,
        "Choices, Calculations, OR Slider Labels": choices, "Field Note": note,
        "Text Validation Type OR Show Slider Number": validation,
        "Text Validation Min": _number(variable.minimum), "Text Validation Max": _number(variable.maximum),
        "Field Annotation": f"source: {variable.source}" + (f"; {variable.derivation}" if variable.derivation else ""),
    }


def dictionary_rows() -> list[dict[str, str]]:
    """The data dictionary: ``record_id`` first, then every instrument's fields in codebook order."""
    participant_id = next(v for v in TABLES["participants.csv"] if v.name == "participant_id")
    rows = [{"Variable / Field Name": RECORD_ID, "Form Name": INSTRUMENTS[0].form, "Field Type": "text",
             "Field Label": participant_id.description, "Field Note": participant_id.allowed,
             "Field Annotation": f"source: {participant_id.source}; {participant_id.derivation}"}]
    for instrument in INSTRUMENTS:
        rows += [dictionary_row(instrument, v) for v in _fields(instrument)]
    return rows


def import_value(variable: Variable, value: Any) -> str:
    """A cell as REDCap imports it: yes/no as 1/0, empty for missing, floats exact."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if variable.type == "boolean":
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def record_columns() -> list[str]:
    return [RECORD_ID, EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE,
            *(field_name(i, v) for i in INSTRUMENTS for v in _fields(i))]


def records(tables: dict[str, Sequence[dict[str, Any]]]) -> list[dict[str, str]]:
    """Rows of ``records.csv``: non-repeating instruments of one record and event share a row."""
    merged: dict[tuple[str, str], dict[str, str]] = {}
    repeats: list[dict[str, str]] = []
    instances: dict[tuple[str, str, str], int] = defaultdict(int)
    for instrument in INSTRUMENTS:
        for row in tables[instrument.table]:
            record = str(row["participant_id"])
            event = unique_event_name(row["milestone"] if instrument.per_milestone else BASELINE_MILESTONE)
            values = {field_name(instrument, v): import_value(v, row.get(v.name)) for v in _fields(instrument)}
            if instrument.repeating:
                instances[(record, event, instrument.form)] += 1
                repeats.append({RECORD_ID: record, EVENT: event, REPEAT_INSTRUMENT: instrument.form,
                                REPEAT_INSTANCE: str(instances[(record, event, instrument.form)]), **values})
            else:
                merged.setdefault((record, event), {RECORD_ID: record, EVENT: event}).update(values)
    return sorted([*merged.values(), *repeats],
                  key=lambda r: (r[RECORD_ID], r[EVENT], r.get(REPEAT_INSTRUMENT, ""),
                                 int(r.get(REPEAT_INSTANCE) or 0)))


def designations(milestones: Sequence[str]) -> list[dict[str, str]]:
    """``instrument_designation.csv``: baseline-only instruments at the baseline event, the others at every one."""
    events = [BASELINE_MILESTONE, *(m for m in milestones if m != BASELINE_MILESTONE)]
    return [{"arm_num": str(ARM), "unique_event_name": unique_event_name(milestone), "form": instrument.form}
            for milestone in events for instrument in INSTRUMENTS
            if instrument.per_milestone or milestone == BASELINE_MILESTONE]
