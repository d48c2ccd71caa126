"""Reference data to a request body: records go as JSON; tables (a pandas DataFrame, a pyarrow
Table, a CSV / JSON / Parquet file) as CSV — or as Parquet once the registry takes it.

`SEND_PARQUET` is the one switch: set it when the registry accepts Parquet bodies (issue 13), and
frames, tables and Parquet files go as Parquet (pyarrow needed; without it, CSV). The registry takes
Parquet, so it is on; CSV and Parquet are sent as streamed uploads (octet-stream with ?format=).
pandas and pyarrow are imported only when such data is given.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEND_PARQUET = True
CSV = "text/csv"
JSON = "application/json"
PARQUET = "application/vnd.apache.parquet"
CHUNK = 256 * 1024
KINDS = ("numeric", "categorical", "boolean")

Progress = Callable[[int, int | None], None]


@dataclass
class ReferenceBody:
    """One upload: its bytes (a file read as it is sent, or an encoded buffer), their content type,
    and the column types the query string declares (JSON bodies carry theirs inside)."""

    content_type: str
    size: int
    open: Callable[[], io.BufferedIOBase | io.BytesIO]
    query_types: dict[str, str] = field(default_factory=dict)

    def chunks(self, progress: Progress | None = None) -> Iterator[bytes]:
        sent = 0
        with self.open() as fh:
            while chunk := fh.read(CHUNK):
                sent += len(chunk)
                if progress:
                    progress(sent, self.size)
                yield chunk


def reference_body(data: Any, types: Mapping[str, str] | None = None) -> ReferenceBody:
    """The body for a DataFrame, a pyarrow Table, a list of records, or a file path."""
    declared = _check_types(types or {})
    if isinstance(data, str | Path):
        return _file_body(Path(data), declared)
    if _is_pandas(data):
        return _table_body(_pandas_types(data), declared, data)
    if _is_arrow(data):
        return _table_body(_arrow_types(data), declared, data)
    if isinstance(data, Sequence) and not isinstance(data, bytes):
        return _records_body(list(data), declared)
    raise TypeError(
        f"reference data must be a pandas DataFrame, a pyarrow Table, records or a path, not {type(data)}"
    )


def _check_types(types: Mapping[str, str]) -> dict[str, str]:
    bad = {k: v for k, v in types.items() if v not in KINDS}
    if bad:
        raise ValueError(f"unknown column types {bad}; use one of {list(KINDS)}")
    return dict(types)


def _buffer(data: bytes, content_type: str, types: dict[str, str] | None = None) -> ReferenceBody:
    return ReferenceBody(content_type, len(data), lambda: io.BytesIO(data), types or {})


# ---- records -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (json cannot write them)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a number, string, boolean or null")


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _records_body(records: list[Any], types: dict[str, str]) -> ReferenceBody:
    if not all(isinstance(r, Mapping) for r in records):
        raise TypeError("reference records must be mappings {column: value}")
    rows = [{k: _finite(v) for k, v in r.items()} for r in records]
    body: Any = {"rows": rows, "types": types} if types else rows
    return _buffer(json.dumps(body, default=_plain, allow_nan=False).encode(), JSON)


# ---- tables ------------------------------------------------------------------------------------


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas") and hasattr(data, "to_csv")


def _is_arrow(data: Any) -> bool:
    return type(data).__module__.startswith("pyarrow") and hasattr(data, "column_names")


def _has_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _pandas_types(frame: Any) -> dict[str, str]:
    """What CSV would lose: text columns that look numeric stay categorical, booleans stay boolean."""
    out: dict[str, str] = {}
    for name in frame.columns:
        column = frame[name]
        kind = column.dtype.kind
        if kind == "b":
            out[str(name)] = "boolean"
        elif kind in "OUSTM" or str(column.dtype) in ("category", "string", "str"):
            present = {type(v) for v in column.dropna()}
            if present and present <= {bool}:
                out[str(name)] = "boolean"
            elif present <= {str} or kind != "O":
                out[str(name)] = "categorical"
    return out


def _arrow_types(table: Any) -> dict[str, str]:
    import pyarrow as pa

    out: dict[str, str] = {}
    for column in table.schema:
        kind = column.type
        if pa.types.is_boolean(kind):
            out[column.name] = "boolean"
        elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            out[column.name] = "categorical"
    return out


def _table_body(inferred: dict[str, str], declared: dict[str, str], data: Any) -> ReferenceBody:
    types = {**inferred, **declared}
    if SEND_PARQUET and _has_pyarrow():
        return _buffer(_parquet_bytes(data), PARQUET, types)
    if _is_pandas(data):
        return _buffer(data.to_csv(index=False).encode(), CSV, types)
    import pyarrow.csv

    out = io.BytesIO()
    pyarrow.csv.write_csv(data, out)
    return _buffer(out.getvalue(), CSV, types)


def _parquet_bytes(data: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(data, preserve_index=False) if _is_pandas(data) else data
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


# ---- files -------------------------------------------------------------------------------------


def _file_body(path: Path, types: dict[str, str]) -> ReferenceBody:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file")
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix == ".csv":
        return ReferenceBody(CSV, size, lambda: open(path, "rb"), types)  # streamed as it is
    if suffix in (".parquet", ".pq"):
        if SEND_PARQUET:
            return ReferenceBody(PARQUET, size, lambda: open(path, "rb"), types)
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return _table_body(_arrow_types(table), types, table)
    if suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as fh:
            return _records_body([json.loads(line) for line in fh if line.strip()], types)
    if suffix == ".json":
        if not types:
            return ReferenceBody(JSON, size, lambda: open(path, "rb"))
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            return _records_body(loaded.get("rows") or [], {**loaded.get("types", {}), **types})
        return _records_body(loaded, types)
    raise ValueError(f"{path}: reference files are .csv, .json, .jsonl or .parquet")
