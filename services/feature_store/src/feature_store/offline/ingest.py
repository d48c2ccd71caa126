"""Batch ingestion into the offline store: validate every row against one schema version, then
write all rows and the statistics in one transaction (COPY on PostgreSQL, chunked executemany on
SQLite).

A row is the entity's join key column(s), `event_timestamp`, optionally `created_timestamp`
(default: the ingestion time) and feature columns; a feature column left out is null. Timestamps
without a timezone are UTC.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from mlops_kit.bounds import EPOCH_US_MAX, EPOCH_US_MIN
from mlops_kit.errors import Unprocessable
from sqlalchemy import select
from sqlalchemy.orm import Session

from feature_store.errors import FeatureSetNotFound, InvalidRequest, TypeMismatch
from feature_store.offline.frames import Frame
from feature_store.registry.views import FeatureSetView
from feature_store.stats import update_statistics
from feature_store.tables import FeatureSet
from feature_store.types import MAX_STRING, InvalidValue, checked_micros, coerce, from_micros, to_micros

EVENT_TS = "event_timestamp"
CREATED_TS = "created_timestamp"
MAX_REPORTED = 10
CHUNK = 10_000
COLUMNS = 'feature_set_id, entity_key, event_ts, created_ts, version, "values"'


class UnknownColumn(Unprocessable):
    code = "UNKNOWN_COLUMN"


class MissingColumn(Unprocessable):
    code = "MISSING_COLUMN"


@dataclass
class Prepared:
    """Validated rows, ready to write."""

    keys: list[str]
    event_ts: list[int]
    created_ts: list[int]
    values: list[dict[str, Any]]
    version: int

    @property
    def size(self) -> int:
        return len(self.keys)


class Errors:
    """The first few problems, by row."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, row: int, column: str, reason: str) -> None:
        self.total += 1
        self.items.append({"row": row, "column": column, "reason": reason})

    def full(self) -> bool:
        return self.total >= MAX_REPORTED * 10

    def raise_if_any(self, rows: int) -> None:
        if not self.items:
            return
        first = sorted(self.items, key=lambda e: e["row"])[:MAX_REPORTED]
        head = first[0]
        raise TypeMismatch(
            f"row {head['row']}, column {head['column']!r}: {head['reason']}"
            + (f" (and {self.total - 1} more problems)" if self.total > 1 else ""),
            {"errors": first, "error_count": self.total, "rows": rows},
        )


def prepare(view: FeatureSetView, version: int, frame: Frame, now_us: int | None = None) -> Prepared:
    """Check the columns and every value; rows are numbered from 0 in the order given."""
    features = {f.name: f.type for f in view.features(version)}
    _check_columns(view, features, frame)
    errors = Errors()
    keys = _entity_keys(view, frame, errors)
    event_ts = _times(frame, EVENT_TS, errors, required=True)
    if CREATED_TS in frame.columns:
        created = _times(frame, CREATED_TS, errors, required=False)
        default = now_us if now_us is not None else time.time_ns() // 1000
        created = [default if c is None else c for c in created]
    else:
        created = [now_us if now_us is not None else time.time_ns() // 1000] * frame.size
    names = [n for n in frame.columns if n in features]
    columns = [_feature_column(frame, n, features[n], errors) for n in names]
    errors.raise_if_any(frame.size)
    values = (
        [dict(zip(names, vals, strict=True)) for vals in zip(*columns, strict=True)]
        if names
        else [{} for _ in range(frame.size)]
    )
    return Prepared(keys, event_ts, created, values, version)


def _check_columns(view: FeatureSetView, features: dict[str, str], frame: Frame) -> None:
    known = set(features) | set(view.join_keys) | {EVENT_TS, CREATED_TS}
    unknown = [c for c in frame.columns if c not in known]
    if unknown:
        raise UnknownColumn(
            f"unknown column {unknown[0]!r}: feature set {view.name!r} has no such feature",
            {"columns": unknown, "features": list(features), "join_keys": list(view.join_keys)},
        )
    for needed in (*view.join_keys, EVENT_TS):
        if needed not in frame.columns:
            raise MissingColumn(f"column {needed!r} is missing", {"column": needed})


def _entity_keys(view: FeatureSetView, frame: Frame, errors: Errors) -> list[str]:
    keys: list[str] = []
    join = view.join_keys
    single = frame.columns[join[0]] if len(join) == 1 else None
    for i in range(frame.size):
        try:
            raw = single[i] if single is not None else {k: frame.columns[k][i] for k in join}
            keys.append(view.entity_key(raw))
        except InvalidRequest as exc:
            column = join[0] if single is not None else ",".join(join)
            errors.add(i, column, exc.message)
            keys.append("")
            if errors.full():
                break
    return keys


def _times(frame: Frame, column: str, errors: Errors, *, required: bool) -> list[Any]:
    raw = frame.columns[column]
    native = frame.native.get(column) == "timestamp"  # already µs
    if native and (not required or None not in raw) and _in_range(raw):
        return raw
    out: list[Any] = []
    for i, value in enumerate(raw):
        if value is None:
            if required:
                errors.add(i, column, f"{column} is required")
            out.append(None)
            continue
        try:
            out.append(checked_micros(value) if native else to_micros(value))
        except InvalidValue as exc:
            errors.add(i, column, str(exc))
            out.append(None)
    return out


def _native_fits(raw: list[Any], type_: str) -> bool:
    """Whether a column read natively (Parquet/Arrow) holds only what storage takes."""
    if type_ == "timestamp":
        return _in_range(raw)
    if type_ == "string":
        return all(len(v) <= MAX_STRING and "\x00" not in v for v in raw if v is not None)
    return True


def _in_range(micros: list[Any]) -> bool:
    present = [v for v in micros if v is not None]
    return not present or (min(present) >= EPOCH_US_MIN and max(present) <= EPOCH_US_MAX)


def _feature_column(frame: Frame, name: str, type_: str, errors: Errors) -> list[Any]:
    raw = frame.columns[name]
    native = frame.native.get(name) == type_
    if native and _native_fits(raw, type_):
        return raw
    # a native timestamp column is already µs; everything else is converted value by value
    convert = checked_micros if native and type_ == "timestamp" else None
    out: list[Any] = []
    for i, value in enumerate(raw):
        try:
            out.append(convert(value) if convert and value is not None else coerce(value, type_))
        except InvalidValue as exc:
            if not errors.full():
                errors.add(i, name, str(exc))
            out.append(None)
    return out


def write(session: Session, view: FeatureSetView, prepared: Prepared) -> dict[str, Any]:
    """Insert the rows and merge their statistics; the caller's transaction commits."""
    locked = session.scalar(select(FeatureSet.id).where(FeatureSet.id == view.id).with_for_update())
    if locked is None:
        raise FeatureSetNotFound(f"feature set {view.name!r} does not exist", {"feature_set": view.name})
    rows = (
        (view.id, k, e, c, prepared.version, orjson.dumps(v).decode())
        for k, e, c, v in zip(
            prepared.keys, prepared.event_ts, prepared.created_ts, prepared.values, strict=True
        )
    )
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, rows)
    else:
        _executemany(session, rows)
    update_statistics(session, view, prepared.version, prepared.values)
    return {
        "feature_set": view.name,
        "version": prepared.version,
        "rows_written": prepared.size,
        "event_time": {
            "min": from_micros(min(prepared.event_ts)) if prepared.size else None,
            "max": from_micros(max(prepared.event_ts)) if prepared.size else None,
        },
    }


def _copy(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    raw: Any = session.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY offline_rows ({COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _executemany(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    conn = session.connection()
    sql = f"INSERT INTO offline_rows ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            conn.exec_driver_sql(sql, chunk)
            chunk = []
    if chunk:
        conn.exec_driver_sql(sql, chunk)
