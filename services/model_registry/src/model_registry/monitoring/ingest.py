"""Reference data as typed columns (JSON records here; CSV and Parquet in `columnar.py`), then a
chunked profile build.

Rows are numbered from 0 (the first record, or the first CSV line after the header); every
problem names its row and column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from numpy.typing import ArrayLike

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


def columns_of(names: list[str]) -> None:
    if not names:
        raise InvalidReferenceData("the reference data has no columns")
    if len(names) > MAX_COLUMNS:
        raise InvalidReferenceData(f"at most {MAX_COLUMNS} columns", {"columns": len(names)})
    long = [n for n in names if not n or len(n) > MAX_NAME or "\x00" in n]
    if long:
        raise InvalidReferenceData(f"column names must be 1-{MAX_NAME} characters", {"column": long[0][:300]})
    if len(set(names)) != len(names):
        raise InvalidReferenceData("the reference data repeats a column name")


def check_declared(types: Mapping[str, Kind], columns: Iterable[str]) -> None:
    unknown = sorted(set(types) - set(columns))
    if unknown:
        raise InvalidReferenceData(f"types given for unknown columns {unknown}", {"columns": unknown})


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


def load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidReferenceData("the body is not valid JSON") from None


def parse_json(raw: bytes) -> tuple[Columns, dict[str, Kind]]:
    return json_columns(load_json(raw))


def json_columns(
    data: Any, types: Mapping[str, Kind] | None = None, exclude: frozenset[str] = frozenset()
) -> tuple[Columns, dict[str, Kind]]:
    """Records (a list, or `{"rows", "types"}`) as columns; `exclude` names columns left out."""
    declared = dict(types or {})
    if isinstance(data, dict):
        inline = data.get("types") or {}
        if not isinstance(inline, dict):
            raise InvalidReferenceData('"types" must be an object {column: kind}')
        declared |= check_types(inline)
        data = data.get("rows")
    if not isinstance(data, list) or not data:
        raise InvalidReferenceData('expected a non-empty list of records, or {"rows": [...], "types": {...}}')
    names: dict[str, None] = {}
    for row, record in enumerate(data):
        if not isinstance(record, dict):
            raise InvalidReferenceData(f"row {row} is not an object", {"row": row})
        for key, value in record.items():
            if key in exclude:
                continue
            if isinstance(value, dict | list):
                raise _mismatch(key, row, value, "a number, string, boolean or null")
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
                raise _mismatch(key, row, value, "a number storage can hold")
            names.setdefault(key, None)
    columns_of(list(names))
    columns = {name: [record.get(name) for record in data] for name in names}
    check_declared(declared, columns)
    kinds = {name: declared.get(name) or _json_kind(name, values) for name, values in columns.items()}
    return columns, kinds


# ---- the profile ------------------------------------------------------------------------------


class Feed:
    """A ProfileBuilder fed consecutive chunks of rows; a bad value names its row in the whole input."""

    def __init__(self, kinds: Mapping[str, Kind]) -> None:
        self.builder = ProfileBuilder(kinds)
        self.rows = 0

    @contextmanager
    def chunk(self, size: int) -> Iterator[None]:
        """Convert and add one chunk of `size` rows inside this block: a ColumnTypeError raised in
        it (row counted from the chunk's first row) becomes a 422 naming the row in the input."""
        try:
            yield
        except ColumnTypeError as exc:
            raise _mismatch(exc.column, exc.row + self.rows, _UNKNOWN, exc.kind) from None
        self.rows += size

    def add(self, columns: Mapping[str, ArrayLike], size: int) -> None:
        with self.chunk(size):
            self.builder.update(columns)

    def finish(self) -> tuple[Profile, int]:
        if not self.rows:
            raise InvalidReferenceData("the reference data has no rows")
        return self.builder.finalize(), self.rows


def build(columns: Columns, kinds: dict[str, Kind]) -> tuple[Profile, int]:
    """The core's profile, fed CHUNK_ROWS rows at a time."""
    feed = Feed(kinds)
    rows = len(next(iter(columns.values())))
    for start in range(0, rows, CHUNK_ROWS):
        part = {name: values[start : start + CHUNK_ROWS] for name, values in columns.items()}
        feed.add(part, min(CHUNK_ROWS, rows - start))
    return feed.finish()
