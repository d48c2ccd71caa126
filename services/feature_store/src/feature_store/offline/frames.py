"""Tabular request bodies (JSON records, CSV, Parquet, multipart file) as columns.

A `Frame` holds one Python list per column. Columns read from CSV or Parquet remember which
value type pyarrow already gave them (`native`), so values of that type skip per-value checks.
Arrow timestamps become integer µs since the epoch (a timestamp without a timezone is UTC).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from feature_store.errors import InvalidBody, InvalidRequest, UnsupportedMediaType

PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
CSV_TYPES = ("text/csv", "application/csv")


@dataclass
class Frame:
    columns: dict[str, list[Any]]
    size: int
    native: dict[str, str] = field(default_factory=dict)  # column -> value type it already has
    table: pa.Table | None = None  # the Arrow table it came from, when it came from one


@dataclass
class Body:
    """A request body read off the wire: its format and bytes (or the parsed JSON object)."""

    format: str  # json | csv | parquet
    data: bytes


def _native(t: pa.DataType) -> str | None:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    return None


def _column(array: pa.ChunkedArray) -> tuple[list[Any], str | None]:
    native = _native(array.type)
    if native == "timestamp":
        if pa.types.is_timestamp(array.type) and array.type.tz is not None:
            array = array.cast(pa.timestamp("us", tz="UTC"))
        array = array.cast(pa.timestamp("us")).cast(pa.int64())
    return array.to_pylist(), native


def frame_from_table(table: pa.Table) -> Frame:
    columns: dict[str, list[Any]] = {}
    native: dict[str, str] = {}
    for name, array in zip(table.column_names, table.columns, strict=True):
        if name in columns:
            raise InvalidRequest(f"column {name!r} appears twice", {"column": name})
        columns[name], kind = _column(array)
        if kind:
            native[name] = kind
    return Frame(columns, table.num_rows, native, table)


def frame_from_records(rows: Any, what: str) -> Frame:
    """JSON records (a list of objects); a key missing from a row is null there."""
    if not isinstance(rows, list):
        raise InvalidRequest(f"{what} must be a list of objects")
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidRequest(f"{what}[{i}] is not an object", {"row": i})
        for key in row:
            names.setdefault(key, None)
    columns = {name: [row.get(name) for row in rows] for name in names}
    return Frame(columns, len(rows))


def read_table(body: Body, string_columns: tuple[str, ...] = ()) -> pa.Table:
    """Parse CSV or Parquet bytes; CSV columns named in `string_columns` are never type-inferred."""
    try:
        if body.format == "parquet":
            return pq.read_table(io.BytesIO(body.data))
        convert = pacsv.ConvertOptions(
            column_types={c: pa.string() for c in string_columns}, strings_can_be_null=True
        )
        return pacsv.read_csv(io.BytesIO(body.data), convert_options=convert)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidBody(
            f"could not read the {body.format.upper()} body: {exc}", {"format": body.format}
        ) from None


def format_of(content_type: str, filename: str | None, asked: str | None) -> str:
    if asked:
        if asked not in ("json", "csv", "parquet"):
            raise InvalidRequest(f"unknown format {asked!r}: use json, csv or parquet")
        return asked
    name = (filename or "").lower()
    if content_type in PARQUET_TYPES or name.endswith((".parquet", ".pq")):
        return "parquet"
    if content_type in CSV_TYPES or name.endswith(".csv"):
        return "csv"
    if content_type in ("application/json", "") or content_type.endswith("+json") or name.endswith(".json"):
        return "json"
    raise UnsupportedMediaType(
        f"unsupported content type {content_type!r}: send application/json, text/csv, "
        "application/vnd.apache.parquet, or application/octet-stream with ?format=csv|parquet",
        {"content_type": content_type},
    )
