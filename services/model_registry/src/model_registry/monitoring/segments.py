"""Columnar segments of the prediction log: one accepted batch (of one version) as one blob.

A segment holds, per row, the request id, the timestamp (epoch microseconds) and the values of
every logged column (the features, `prediction` and `probability`), each column in the tightest
of four encodings chosen from its values:

- `f8`: numbers and nulls (integers within ±2^53) as float64, NaN for null;
- `b1`: booleans and nulls as int8 (-1 null);
- `s`: strings and nulls as a dictionary of the distinct strings and int32 codes (-1 null);
- `j`: anything else (a column mixing types, integers past 2^53, lists) as a JSON list.

Decoded, an `f8` column is a float64 array; the others are object arrays of the logged Python
values (None for null), so the drift core sees the values it saw per row before, and a value of
the wrong type is still found at its row. Framework-free (numpy and orjson only).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

MAGIC = b"MSG1"
EXACT_INT = 2**53  # larger integers do not survive float64
MAX_SEGMENT_ROWS = 16_384  # a row's place in the log: segment id * this + its row
_HEAD = struct.Struct("<4sI")
_NONE_TYPE = type(None)
Values = NDArray[Any]  # float64 (f8 columns) or object


@dataclass
class Segment:
    """Rows of the log, column by column (every column has `len(request_ids)` values)."""

    request_ids: list[str]
    timestamps: NDArray[np.int64]  # epoch microseconds, UTC
    columns: dict[str, Values]
    keys: NDArray[np.uint64] | None = None  # sampling keys, kept with a bucket's sample

    def __len__(self) -> int:
        return len(self.request_ids)

    def take(self, rows: NDArray[np.intp]) -> Segment:
        ids = self.request_ids
        return Segment(
            [ids[i] for i in rows.tolist()],
            self.timestamps[rows],
            {name: values[rows] for name, values in self.columns.items()},
            None if self.keys is None else self.keys[rows],
        )


def missing_column(kind_of: Values, n: int) -> Values:
    """A column absent from a segment, shaped like the column of another segment."""
    if kind_of.dtype == np.float64:
        return np.full(n, np.nan)
    return np.full(n, None, dtype=object)


def concat(parts: Sequence[Segment]) -> Segment:
    """One segment of the rows of `parts` in order; a column some part lacks is null there."""
    names: dict[str, Values] = {}
    for part in parts:
        for name, values in part.columns.items():
            seen = names.get(name)
            if seen is None or (seen.dtype == np.float64 and values.dtype != np.float64):
                names[name] = values
    columns: dict[str, Values] = {}
    for name, like in names.items():
        pieces = [p.columns.get(name) for p in parts]
        filled = [
            missing_column(like, len(p)) if v is None else v for v, p in zip(pieces, parts, strict=True)
        ]
        if any(v.dtype != np.float64 for v in filled):
            filled = [_as_objects(v) for v in filled]
        columns[name] = np.concatenate(filled) if filled else np.empty(0)
    keys = [p.keys for p in parts]
    return Segment(
        [rid for p in parts for rid in p.request_ids],
        np.concatenate([p.timestamps for p in parts]) if parts else np.empty(0, np.int64),
        columns,
        None if not parts or any(k is None for k in keys) else np.concatenate(keys),  # type: ignore[arg-type]
    )


def _as_objects(values: Values) -> Values:
    if values.dtype != np.float64:
        return values
    out = values.astype(object)
    out[np.isnan(values)] = None
    return out


# ---- encoding -----------------------------------------------------------------------------------


def _types(values: Iterable[Any]) -> set[type]:
    return set(map(type, values))


def _encode_column(values: list[Any], known: set[type] | None = None) -> tuple[dict[str, Any], bytes]:
    types = (_types(values) if known is None else known) - {_NONE_TYPE}
    if types <= {float, int}:
        ints = [v for v in values if type(v) is int] if int in types else []
        if not ints or (min(ints) > -EXACT_INT and max(ints) < EXACT_INT):
            floats = np.array(values, dtype=np.float64)  # None becomes NaN
            return {"enc": "f8"}, floats.tobytes()
    if types == {bool}:
        flags = np.array([-1 if v is None else int(v) for v in values], dtype=np.int8)
        return {"enc": "b1"}, flags.tobytes()
    if types == {str}:
        index: dict[Any, int] = {v: i for i, v in enumerate(dict.fromkeys(values)) if v is not None}
        categories = list(index)
        index[None] = -1
        codes = np.fromiter(map(index.__getitem__, values), dtype=np.int32, count=len(values))
        return {"enc": "s", "categories": categories}, codes.tobytes()
    return {"enc": "j"}, orjson.dumps(values)


def _column_values(values: Values | list[Any]) -> list[Any]:
    if isinstance(values, np.ndarray):
        if values.dtype == np.float64:
            return [None if v != v else v for v in values.tolist()]
        return values.tolist()  # type: ignore[no-any-return]
    return values


def encode(segment: Segment, exact: bool = False) -> bytes:
    """The segment as bytes: a JSON header (columns, encodings, sizes) and the column buffers.
    `exact` keeps the Python type of every value of an object column (an integer stays one)."""
    buffers = [orjson.dumps(segment.request_ids), segment.timestamps.astype("<i8").tobytes()]
    columns = []
    for name, values in segment.columns.items():
        if isinstance(values, np.ndarray) and values.dtype == np.float64:
            head, data = {"enc": "f8"}, values.astype("<f8").tobytes()
        elif exact:
            head, data = {"enc": "j"}, orjson.dumps(_column_values(values))
        else:
            head, data = _encode_column(_column_values(values))
        columns.append({"name": name, **head, "size": len(data)})
        buffers.append(data)
    if segment.keys is not None:
        buffers.append(segment.keys.astype("<u8").tobytes())
    header = orjson.dumps(
        {
            "rows": len(segment),
            "ids": len(buffers[0]),
            "columns": columns,
            "keys": segment.keys is not None,
        }
    )
    return b"".join([_HEAD.pack(MAGIC, len(header)), header, *buffers])


def encode_columns(
    request_ids: list[str],
    timestamps: NDArray[np.int64],
    columns: dict[str, list[Any]],
    types: dict[str, set[type]] | None = None,
) -> bytes:
    """A new segment from lists of logged values (the ingest path); `types`: each column's value
    types when known (a superset does no harm)."""
    buffers = [orjson.dumps(request_ids), timestamps.astype("<i8").tobytes()]
    heads = []
    for name, values in columns.items():
        head, data = _encode_column(values, (types or {}).get(name))
        heads.append({"name": name, **head, "size": len(data)})
        buffers.append(data)
    header = orjson.dumps({"rows": len(request_ids), "ids": len(buffers[0]), "columns": heads, "keys": False})
    return b"".join([_HEAD.pack(MAGIC, len(header)), header, *buffers])


# ---- decoding -----------------------------------------------------------------------------------


def _decode_column(head: dict[str, Any], data: memoryview, n: int) -> Values:
    enc = head["enc"]
    if enc == "f8":
        return np.frombuffer(data, dtype="<f8").astype(np.float64, copy=True)
    if enc == "b1":
        flags = np.frombuffer(data, dtype=np.int8)
        return np.array([None, False, True], dtype=object)[flags + 1]
    if enc == "s":
        codes = np.frombuffer(data, dtype="<i4")
        table = np.array([*head["categories"], None], dtype=object)
        decoded: np.ndarray = table[codes]  # code -1 is the trailing None
        return decoded
    values = np.empty(n, dtype=object)
    values[:] = orjson.loads(data)
    return values


def decode(blob: bytes, wanted: set[str] | None = None) -> Segment:
    """The segment of `encode`; with `wanted`, only those columns are decoded."""
    magic, size = _HEAD.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("not a prediction log segment")
    view = memoryview(blob)
    at = _HEAD.size
    header = orjson.loads(view[at : at + size])
    at += size
    n = header["rows"]
    request_ids = orjson.loads(view[at : at + header["ids"]])
    at += header["ids"]
    timestamps = np.frombuffer(view[at : at + 8 * n], dtype="<i8").astype(np.int64)
    at += 8 * n
    columns: dict[str, Values] = {}
    for head in header["columns"]:
        if wanted is None or head["name"] in wanted:
            columns[head["name"]] = _decode_column(head, view[at : at + head["size"]], n)
        at += head["size"]
    keys = np.frombuffer(view[at : at + 8 * n], dtype="<u8").astype(np.uint64) if header["keys"] else None
    return Segment(request_ids, timestamps, columns, keys)


def column_names(blob: bytes) -> list[str]:
    _, size = _HEAD.unpack_from(blob)
    header = orjson.loads(memoryview(blob)[_HEAD.size : _HEAD.size + size])
    return [c["name"] for c in header["columns"]]
