"""The prediction log's storage: a batch becomes narrow per-row records (request id, version,
time, prediction, probability; labels join them later) plus one columnar segment per version
holding the rows' values; a window is read back by decoding the segments with numpy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from model_registry.monitoring import repository as repo
from model_registry.monitoring import segments as seg
from model_registry.monitoring.logparse import LoggedBatch
from model_registry.monitoring.times import datetimes, from_micros, micros

# the logged prediction and probability, beside the features (NUL never reaches a feature name)
PREDICTION, PROBABILITY = "\x00prediction", "\x00probability"
VARIANT = "\x00variant"  # the serving variant, in segments of batches that named one
Column = list[Any] | NDArray[Any]
__all__ = ["PREDICTION", "PROBABILITY", "Column", "datetimes", "from_micros", "micros"]


# ---- writing ------------------------------------------------------------------------------------


def _subset(values: list[Any], rows: list[int] | None) -> list[Any]:
    return values if rows is None else [values[i] for i in rows]


def _segment_row(
    model_id: int, version: str, batch: LoggedBatch, rows: list[int] | None, now: datetime
) -> dict[str, Any]:
    times = batch.timestamps if rows is None else batch.timestamps[rows]
    columns = {name: _subset(values, rows) for name, values in batch.features.items()}
    columns = {n: v for n, v in columns.items() if batch.types.get(n) != {type(None)}}
    columns[PREDICTION] = _subset(batch.predictions, rows)
    columns[PROBABILITY] = _subset(batch.probabilities, rows)
    types = batch.types
    if batch.variants is not None:
        columns[VARIANT] = _subset(batch.variants, rows)
        types = {**types, VARIANT: {str, type(None)}}
    return {
        "model_id": model_id,
        "version": version,
        "rows": len(times),
        "t_min": from_micros(int(times.min())),
        "t_max": from_micros(int(times.max())),
        "logged_at": now,
        "rolled_up": False,
        "data": seg.encode_columns(_subset(batch.request_ids, rows), times, columns, types),
    }


def store(session: Session, model_id: int, batch: LoggedBatch, first: list[int], now: datetime) -> list[int]:
    """The rows `first` (indices in batch order, request ids unique among them) that were not
    logged yet: their per-row records and segments (the caller holds the model's lock).
    Returns their indices."""
    seen = repo.logged_ids(session, model_id, [batch.request_ids[i] for i in first])
    fresh = [i for i in first if batch.request_ids[i] not in seen] if seen else first
    if not fresh:
        return fresh
    subset = None if len(fresh) == len(batch) else fresh
    repo.add_log_rows(
        session,
        model_id,
        _subset(batch.request_ids, subset),
        _subset(batch.versions, subset),
        batch.timestamps if subset is None else batch.timestamps[subset],
        _subset(batch.predictions, subset),
        _subset(batch.probabilities, subset),
        now,
    )
    by_version: dict[str, list[int]] = {}
    for i in fresh:
        by_version.setdefault(batch.versions[i], []).append(i)
    single = subset is None and len(by_version) == 1
    repo.add_segments(
        session,
        [_segment_row(model_id, v, batch, None if single else rows, now) for v, rows in by_version.items()],
    )
    return fresh


# ---- reading ------------------------------------------------------------------------------------


@dataclass
class RawWindow:
    """The most recent rows of a window, oldest first, and the feature names its segments hold."""

    rows: seg.Segment
    truncated: bool
    names: set[str]


def _in_bounds(times: NDArray[np.int64], lo: int | None, hi: int | None) -> NDArray[np.bool_] | None:
    mask = None
    if lo is not None:
        mask = times >= lo
    if hi is not None:
        mask = times < hi if mask is None else mask & (times < hi)
    return mask


def _enough(parts: list[seg.Segment], limit: int, newer_than: int) -> bool:
    total = sum(len(p) for p in parts)
    if total <= limit:
        return False
    return sum(int(np.count_nonzero(p.timestamps > newer_than)) for p in parts) > limit


def read_window(
    session: Session,
    model_id: int,
    version: str,
    bounds: tuple[datetime | None, datetime | None],
    limit: int,
    wanted: set[str] | None,
    variant: str | None = None,
) -> RawWindow:
    """The most recent `limit` rows of [start, end) (by time, then by logging order), only those
    served by `variant` when it is given."""
    lo = None if bounds[0] is None else micros(bounds[0])
    hi = None if bounds[1] is None else micros(bounds[1])
    parts: list[seg.Segment] = []
    order: list[NDArray[np.int64]] = []
    names: set[str] = set()
    for row in repo.segments_newest_first(session, model_id, version, bounds[0], bounds[1]):
        if parts and _enough(parts, limit, micros(row.t_max)):
            break
        names.update(seg.column_names(row.data))
        part = seg.decode(row.data, wanted if wanted is None or variant is None else {*wanted, VARIANT})
        mask = _in_bounds(part.timestamps, lo, hi)
        if variant is not None:
            served = _served_by(part, variant)
            mask = served if mask is None else mask & served
        rank = row.id * seg.MAX_SEGMENT_ROWS + np.arange(len(part), dtype=np.int64)
        if mask is not None and not mask.all():
            index = np.flatnonzero(mask)
            part, rank = part.take(index), rank[index]
        if len(part):
            parts.append(part)
            order.append(rank)
    names -= {PREDICTION, PROBABILITY, VARIANT}
    if not parts:
        return RawWindow(seg.concat([]), False, names)
    rows = seg.concat(parts)
    newest = np.lexsort((-np.concatenate(order), -rows.timestamps))[: limit + 1]
    truncated = newest.size > limit
    return RawWindow(rows.take(newest[:limit][::-1]), truncated, names)


def _served_by(part: seg.Segment, variant: str) -> NDArray[np.bool_]:
    values = part.columns.get(VARIANT)
    if values is None:
        return np.zeros(len(part), dtype=np.bool_)
    return np.fromiter((v == variant for v in values), dtype=np.bool_, count=len(part))


def _nulls(n: int) -> NDArray[Any]:
    return np.full(n, None, dtype=object)


def _scalar_probabilities(values: Column) -> Column:
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return values
    return np.array([None if isinstance(v, list) else v for v in values], dtype=object)


def profile_columns(names: Mapping[str, Any], rows: seg.Segment, seen: set[str]) -> dict[str, Column]:
    """Window columns for the profile's columns `names`: features, else the logged prediction and
    probability; a profile column nothing logged is all missing; other logged feature names are
    passed empty so the drift report lists them as unknown. `label` is compared only when logged
    as a feature."""
    n = len(rows)
    columns: dict[str, Column] = {}
    for name in names:
        if name in seen:
            columns[name] = rows.columns.get(name, _nulls(n))
        elif name == "prediction":
            columns[name] = rows.columns.get(PREDICTION, _nulls(n))
        elif name == "probability":
            columns[name] = _scalar_probabilities(rows.columns.get(PROBABILITY, _nulls(n)))
        elif name != "label":
            columns[name] = _nulls(n)
    for name in seen - set(names):
        columns[name] = []
    return columns
