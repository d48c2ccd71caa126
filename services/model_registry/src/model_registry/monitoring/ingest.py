"""Reference data off the wire (JSON records or CSV) into typed columns, then a chunked profile build.

Rows are numbered from 0 (the first record, or the first CSV line after the header); every
problem names its row and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from typing import Any

from model_registry.errors import ColumnTypeMismatch, InvalidReferenceData
from model_registry.monitoring.columns import KINDS, ColumnTypeError, Kind
from model_registry.monitoring.profile import Profile, ProfileBuilder

CHUNK_ROWS = 10_000
MAX_COLUMNS = 1000
MAX_NAME = 256
MAX_INT = 2**63
Columns = dict[str, list[Any]]
_UNKNOWN = object()


def _mismatch(column: str, row: int, value: object, kind: str) -> ColumnTypeMismatch:
    shown = "the value" if value is _UNKNOWN else repr(value)[:100]
    return ColumnTypeMismatch(
        f"column {column!r} row {row}: {shown} is not {kind}",
        {"column": column, "row": row, "expected": kind},
    )


def check_types(types: Mapping[str, Any]) -> dict[str, Kind]:
    bad = {k: v for k, v in types.items() if v not in KINDS}
    if bad:
        raise InvalidReferenceData(f"unknown column types {bad}; use one of {list(KINDS)}", {"types": bad})
    return {k: v for k, v in types.items() if v in KINDS}


def parse_types(pairs: list[str]) -> dict[str, Kind]:
    """`column:kind` query values."""
    types: dict[str, str] = {}
    for pair in pairs:
        name, sep, kind = pair.rpartition(":")
        if not sep or not name:
            raise InvalidReferenceData(f"type {pair!r} is not column:kind", {"type": pair})
        types[name] = kind
    return check_types(types)


def _columns_of(names: list[str]) -> None:
    if not names:
        raise InvalidReferenceData("the reference data has no columns")
    if len(names) > MAX_COLUMNS:
        raise InvalidReferenceData(f"at most {MAX_COLUMNS} columns", {"columns": len(names)})
    long = [n for n in names if not n or len(n) > MAX_NAME or "\x00" in n]
    if long:
        raise InvalidReferenceData(f"column names must be 1-{MAX_NAME} characters", {"column": long[0][:300]})


# ---- JSON records -----------------------------------------------------------------------------


def _class(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "numeric"
    return "categorical"


def _json_kind(name: str, values: list[Any]) -> Kind:
    """All present values of one JSON type; a column mixing them is refused at its first odd row
    (declare it categorical to accept it)."""
    first: str | None = None
    for row, value in enumerate(values):
        cls = _class(value)
        if cls is None:
            continue
        if first is None:
            first = cls
        elif cls != first:
            raise _mismatch(name, row, value, first)
    return first or "categorical"  # type: ignore[return-value]


def parse_json(raw: bytes) -> tuple[Columns, dict[str, Kind]]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidReferenceData("the body is not valid JSON") from None
    types: dict[str, Kind] = {}
    if isinstance(data, dict):
        declared = data.get("types") or {}
        if not isinstance(declared, dict):
            raise InvalidReferenceData('"types" must be an object {column: kind}')
        types = check_types(declared)
        data = data.get("rows")
    if not isinstance(data, list) or not data:
        raise InvalidReferenceData('expected a non-empty list of records, or {"rows": [...], "types": {...}}')
    names: dict[str, None] = {}
    for row, record in enumerate(data):
        if not isinstance(record, dict):
            raise InvalidReferenceData(f"row {row} is not an object", {"row": row})
        for key, value in record.items():
            if isinstance(value, dict | list):
                raise _mismatch(key, row, value, "a number, string, boolean or null")
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
                raise _mismatch(key, row, value, "a number storage can hold")
            names.setdefault(key, None)
    _columns_of(list(names))
    columns = {name: [record.get(name) for record in data] for name in names}
    unknown = sorted(set(types) - set(columns))
    if unknown:
        raise InvalidReferenceData(f"types given for unknown columns {unknown}", {"columns": unknown})
    kinds = {name: types.get(name) or _json_kind(name, values) for name, values in columns.items()}
    return columns, kinds


# ---- CSV --------------------------------------------------------------------------------------


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _csv_kind(values: list[str | None]) -> Kind:
    present = [v for v in values if v is not None]
    if present and all(v.lower() in ("true", "false") for v in present):
        return "boolean"
    if present and all(_number(v) is not None for v in present):
        return "numeric"
    return "categorical"


def _csv_numeric(name: str, values: list[str | None]) -> list[float | None]:
    out: list[float | None] = []
    for row, value in enumerate(values):
        number = None if value is None else _number(value)
        if value is not None and number is None:
            raise _mismatch(name, row, value, "numeric")
        out.append(number)
    return out


def parse_csv(raw: bytes, types: dict[str, Kind]) -> tuple[Columns, dict[str, Kind]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidReferenceData("the CSV is not UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidReferenceData("the CSV is empty")
        _columns_of(header)
        if len(set(header)) != len(header):
            raise InvalidReferenceData("the CSV header repeats a column name")
        cells: list[list[str | None]] = [[] for _ in header]
        for row, line in enumerate(reader):
            if len(line) != len(header):
                raise InvalidReferenceData(
                    f"row {row} has {len(line)} fields, the header {len(header)}", {"row": row}
                )
            for values, cell in zip(cells, line, strict=True):
                values.append(cell if cell != "" else None)
    except csv.Error as exc:
        raise InvalidReferenceData(f"the CSV is malformed: {exc}") from None
    unknown = sorted(set(types) - set(header))
    if unknown:
        raise InvalidReferenceData(f"types given for unknown columns {unknown}", {"columns": unknown})
    if not cells[0]:
        raise InvalidReferenceData("the CSV has a header but no rows")
    kinds = {name: types.get(name) or _csv_kind(values) for name, values in zip(header, cells, strict=True)}
    columns: Columns = {}
    for name, values in zip(header, cells, strict=True):
        columns[name] = _csv_numeric(name, values) if kinds[name] == "numeric" else list(values)
    return columns, kinds


# ---- the profile ------------------------------------------------------------------------------


def build(columns: Columns, kinds: dict[str, Kind]) -> tuple[Profile, int]:
    """The core's profile, fed CHUNK_ROWS rows at a time; a bad value names its row in the whole input."""
    builder = ProfileBuilder(kinds)
    rows = len(next(iter(columns.values())))
    for start in range(0, rows, CHUNK_ROWS):
        try:
            builder.update({name: values[start : start + CHUNK_ROWS] for name, values in columns.items()})
        except ColumnTypeError as exc:
            raise _mismatch(exc.column, exc.row + start, _UNKNOWN, exc.kind) from None
    return builder.finalize(), rows
