"""Historical retrieval answers: JSON columns + rows, or Parquet."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from feature_store.offline.frames import Frame
from feature_store.offline.pit import Target
from feature_store.types import present

ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "list[int]": pa.list_(pa.int64()),
    "list[float]": pa.list_(pa.float64()),
}


def json(frame: Frame, targets: Sequence[Target], columns: Sequence[list[Any]]) -> bytes:
    """`{"columns": [...], "rows": [[...], ...]}`: entity columns as given, then the features
    (timestamps as ISO 8601, NaN as null)."""
    shown = [
        [present(v, t.feature.type) for v in col] if t.feature.type == "timestamp" else col
        for t, col in zip(targets, columns, strict=True)
    ]
    entity = [_shown_entity(name, frame) for name in frame.columns]
    names = [*frame.columns, *(t.column for t in targets)]
    return orjson.dumps({"columns": names, "rows": list(zip(*entity, *shown, strict=True))})


def _shown_entity(name: str, frame: Frame) -> list[Any]:
    """JSON input is echoed as given; Parquet/CSV timestamps (held as µs) are shown as ISO."""
    values = frame.columns[name]
    if frame.native.get(name) == "timestamp":
        return [present(v, "timestamp") for v in values]
    return values


def parquet(frame: Frame, targets: Sequence[Target], columns: Sequence[list[Any]]) -> bytes:
    arrays: list[pa.Array | pa.ChunkedArray] = []
    names: list[str] = []
    for name in frame.columns:
        names.append(name)
        arrays.append(frame.table.column(name) if frame.table is not None else _infer(frame.columns[name]))
    for t, col in zip(targets, columns, strict=True):
        names.append(t.column)
        arrays.append(pa.array(col, ARROW_TYPES.get(t.feature.type)))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=names), sink)
    return sink.getvalue()


def _infer(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
