"""A stand-in for REDCap's importer: the rules its data dictionary upload and its longitudinal
record import apply, written from REDCap's documentation (independent of the export code)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

STANDARD_COLUMNS = [
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
]
FIELD_TYPES = {"text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc", "file", "slider",
               "descriptive", "sql"}
VALIDATIONS = {"", "integer", "number", "date_ymd", "datetime_ymd", "email", "phone", "time", "zipcode"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CHOICE_CODE = re.compile(r"^[A-Za-z0-9_]+$")
SPECIAL = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")


class ImportRefused(AssertionError):
    """What REDCap would answer with an error list."""


def _rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def load_dictionary(text: str) -> dict[str, dict[str, str]]:
    """The fields of a data dictionary upload, by name (raises :class:`ImportRefused`)."""
    header, rows = _rows(text)
    if header != STANDARD_COLUMNS:
        raise ImportRefused(f"dictionary columns are not REDCap's 18: {header}")
    if not rows or rows[0]["Variable / Field Name"] != "record_id":
        raise ImportRefused("the first field must be the record id")
    fields: dict[str, dict[str, str]] = {}
    forms_seen: list[str] = []
    for row in rows:
        name, form, kind = row["Variable / Field Name"], row["Form Name"], row["Field Type"]
        if not NAME.match(name) or len(name) > 100 or name in fields:
            raise ImportRefused(f"bad or duplicate field name {name!r}")
        if not NAME.match(form):
            raise ImportRefused(f"bad form name {form!r}")
        if forms_seen and forms_seen[-1] != form:
            if form in forms_seen:
                raise ImportRefused(f"fields of form {form} are not contiguous")
            forms_seen.append(form)
        elif not forms_seen:
            forms_seen.append(form)
        if kind not in FIELD_TYPES:
            raise ImportRefused(f"{name}: unknown field type {kind}")
        choices = row["Choices, Calculations, OR Slider Labels"]
        if kind in ("dropdown", "radio", "checkbox"):
            codes = [part.split(",", 1)[0].strip() for part in choices.split("|")]
            if not choices or not all(CHOICE_CODE.match(code) for code in codes) or len(set(codes)) != len(codes):
                raise ImportRefused(f"{name}: bad choices {choices!r}")
            row["_codes"] = codes
        elif choices and kind != "calc":
            raise ImportRefused(f"{name}: choices on a {kind} field")
        validation = row["Text Validation Type OR Show Slider Number"]
        if validation not in VALIDATIONS or (validation and kind != "text"):
            raise ImportRefused(f"{name}: validation {validation!r} on a {kind} field")
        for limit in ("Text Validation Min", "Text Validation Max"):
            if row[limit]:
                _check_value({**row, "_codes": []}, row[limit], name)
        fields[name] = row
    return fields


def _check_value(field: dict[str, str], value: str, name: str) -> None:
    kind, validation = field["Field Type"], field["Text Validation Type OR Show Slider Number"]
    try:
        if kind == "yesno" and value not in ("0", "1"):
            raise ValueError
        if kind in ("dropdown", "radio") and value not in field["_codes"]:
            raise ValueError
        if validation == "integer":
            number = int(value)
            low, high = field["Text Validation Min"], field["Text Validation Max"]
            if (low and number < int(low)) or (high and number > int(high)):
                raise ValueError
        if validation == "number":
            float(value)
        if validation == "date_ymd":
            if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
                raise ValueError
            dt.date.fromisoformat(value)
    except ValueError:
        raise ImportRefused(f"{name}: value {value!r} does not fit {kind}/{validation}") from None


def import_records(dictionary_text: str, records_text: str, designation_text: str) -> list[dict[str, str]]:
    """Check a longitudinal record import; returns the accepted rows (raises :class:`ImportRefused`)."""
    fields = load_dictionary(dictionary_text)
    _, designation_rows = _rows(designation_text)
    designated: dict[str, set[str]] = {}
    for row in designation_rows:
        designated.setdefault(row["unique_event_name"], set()).add(row["form"])
    forms = {f["Form Name"] for f in fields.values()}
    if not all(re.match(r"^[a-z][a-z0-9_]*_arm_\d+$", e) for e in designated) or not set().union(
            *designated.values()) <= forms:
        raise ImportRefused("bad instrument designation")
    header, rows = _rows(records_text)
    if header[:2] != ["record_id", "redcap_event_name"]:
        raise ImportRefused("longitudinal imports start with record_id, redcap_event_name")
    unknown = [c for c in header if c not in fields and c not in SPECIAL]
    if unknown:
        raise ImportRefused(f"columns not in the dictionary: {unknown}")
    keys = set()
    for row in rows:
        record, event = row["record_id"], row["redcap_event_name"]
        if not record or event not in designated:
            raise ImportRefused(f"row without record id or with unknown event {event!r}")
        repeat_form, instance = row.get("redcap_repeat_instrument", ""), row.get("redcap_repeat_instance", "")
        if repeat_form and (repeat_form not in designated[event] or not instance.isdigit() or int(instance) < 1):
            raise ImportRefused(f"bad repeating instance {repeat_form}/{instance} at {event}")
        key = (record, event, repeat_form, instance)
        if key in keys:
            raise ImportRefused(f"duplicate row {key}")
        keys.add(key)
        for column, value in row.items():
            if column in SPECIAL or column == "record_id" or value == "":
                continue
            form = fields[column]["Form Name"]
            if form not in designated[event] or (repeat_form and form != repeat_form):
                raise ImportRefused(f"{column} ({form}) is not collected in {event}/{repeat_form or '-'}")
            _check_value(fields[column], value, column)
    return rows
