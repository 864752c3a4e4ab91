"""File formats of an export: CSV cells and tables, Parquet copies, the zip."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from backend.services.export.codebook import Variable

#: Fixed member timestamp: the zip's bytes depend on its content only.
ZIP_MEMBER_TIME = (1980, 1, 1, 0, 0, 0)


def format_cell(value: Any) -> str:
    """CSV text of a value: empty for None/NaN, ``true``/``false``, ``repr`` for floats (exact)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_bytes(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 CSV (RFC 4180 quoting, ``\\n`` line ends) of ``rows`` in ``columns`` order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(row.get(column)) for column in columns])
    return buffer.getvalue().encode("utf-8")


ARROW_TYPES = {"integer": "int64", "number": "float64", "boolean": "bool_"}


def parquet_bytes(variables: Sequence[Variable], rows: Sequence[dict[str, Any]]) -> bytes:
    """The table as Parquet with the codebook's types (strings for categories and dates)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for v in variables:
        arrow_type = getattr(pa, ARROW_TYPES.get(v.type, "string"))()
        values = [row.get(v.name) for row in rows]
        if arrow_type == pa.string():
            values = [None if x is None else format_cell(x) for x in values]
        arrays[v.name] = pa.array(values, type=arrow_type)
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays), sink)
    return sink.getvalue()


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """A deflated zip of ``files`` (name -> bytes) in their order, with fixed member times."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_MEMBER_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()
