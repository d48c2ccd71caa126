"""Hourly buckets of the prediction log, kept after the raw rows are pruned.

Per (model, version, hour): the number of rows and a bounded uniform sample of them (the rows
with the smallest sampling keys, a hash of each row's place in the log, so merging two samples
keeps exactly the rows one sample of both would), and the same for labelled rows (the key is
a hash of the row's id). A window over hours whose raw rows are gone is answered from the
samples: every hour is thinned to one common rate, so the hours weigh as their row counts do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from model_registry.monitoring import logstore
from model_registry.monitoring import repository as repo
from model_registry.monitoring import segments as seg
from model_registry.tables import MonitoringBucket

HOUR_US = 3_600_000_000
LABEL = "label"
ALL_ROWS = 2**62
_U64 = np.uint64


def keys_of(ids: NDArray[np.int64]) -> NDArray[np.uint64]:
    """splitmix64 of each id: uniform pseudo-random sampling keys, the same on every replica."""
    with np.errstate(over="ignore"):
        z = ids.astype(_U64) * _U64(0x9E3779B97F4A7C15) + _U64(0x632BE59BD9B4E019)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def segment_keys(segment_id: int, n: int) -> NDArray[np.uint64]:
    return keys_of(segment_id * seg.MAX_SEGMENT_ROWS + np.arange(n, dtype=np.int64))


def bottom(sample: seg.Segment, k: int) -> seg.Segment:
    assert sample.keys is not None
    if len(sample) <= k:
        return sample
    return sample.take(np.sort(np.argpartition(sample.keys, k - 1)[:k]))


@dataclass
class Hour:
    rows: int
    sample: seg.Segment | None

    def add(self, rows: int, part: seg.Segment, k: int) -> None:
        self.rows += rows
        self.sample = bottom(part if self.sample is None else seg.concat([self.sample, part]), k)

    @property
    def capacity(self) -> int:
        """A full sample's size (it holds fewer rows than the hour); else every row is kept."""
        if self.sample is not None and len(self.sample) < self.rows:
            return len(self.sample)
        return ALL_ROWS


def _merge_raw(hours: dict[int, Hour], hour: int, piece: seg.Segment) -> None:
    """Raw rows not in the bucket yet, sampled as the bucket's sample was."""
    state = hours.setdefault(hour, Hour(0, None))
    state.add(len(piece), piece, state.capacity)


def _by_hour(part: seg.Segment) -> Iterable[tuple[int, seg.Segment]]:
    hours = part.timestamps // HOUR_US * HOUR_US
    for hour in np.unique(hours).tolist():
        yield int(hour), part.take(np.flatnonzero(hours == hour))


def _decoded(blob: bytes | None, wanted: set[str] | None = None) -> seg.Segment | None:
    return None if blob is None else seg.decode(blob, wanted)


# ---- rolling segments up --------------------------------------------------------------------------


def roll_up(session: Session, segments: list[Any], sample_rows: int) -> None:
    """Add each segment's rows to its hours' counts and samples (the caller holds the maintenance
    lock and marks the segments rolled up in the same transaction)."""
    for row in segments:
        part = seg.decode(row.data)
        part.keys = segment_keys(row.id, len(part))
        pieces = dict(_by_hour(part))
        starts = {h: logstore.from_micros(h) for h in pieces}
        found = repo.get_buckets(session, row.model_id, row.version, starts.values())
        for hour, piece in pieces.items():
            bucket = found.get(hour) or repo.add_bucket(
                session, _new(row.model_id, row.version, starts[hour])
            )
            state = Hour(bucket.rows or 0, _decoded(bucket.sample))
            state.add(len(piece), piece, sample_rows)
            bucket.rows = state.rows
            bucket.sample = seg.encode(state.sample) if state.sample is not None else None
        session.flush()


def _new(model_id: int, version: str, start: datetime) -> MonitoringBucket:
    return MonitoringBucket(
        model_id=model_id,
        version=version,
        start=start,
        rows=0,
        sample=None,
        raw_pruned=False,
        labelled=0,
        labelled_sample=None,
        labels_pruned=False,
    )


def labelled_segment(rows: list[Any]) -> seg.Segment:
    """Labelled per-row records as a segment (prediction, probability, label), keyed by row id."""
    ids = np.array([r.id for r in rows], dtype=np.int64)
    return seg.Segment(
        [r.request_id for r in rows],
        np.array([logstore.micros(r.timestamp) for r in rows], dtype=np.int64),
        {
            logstore.PREDICTION: _objects([r.prediction for r in rows]),
            logstore.PROBABILITY: _objects([r.probability for r in rows]),
            LABEL: _objects([r.label for r in rows]),
        },
        keys_of(ids),
    )


def _objects(values: list[Any]) -> NDArray[Any]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def keep_labelled(session: Session, rows: list[Any], sample_rows: int) -> None:
    """Fold the labelled rows about to be pruned into their hours' labelled samples."""
    groups: dict[tuple[int, str], list[Any]] = {}
    for r in rows:
        if r.labelled_at is not None:
            groups.setdefault((r.model_id, r.version), []).append(r)
    for (model_id, version), members in groups.items():
        pieces = dict(_by_hour(labelled_segment(members)))
        starts = {h: logstore.from_micros(h) for h in pieces}
        found = repo.get_buckets(session, model_id, version, starts.values())
        for hour, piece in pieces.items():
            bucket = found.get(hour) or repo.add_bucket(session, _new(model_id, version, starts[hour]))
            state = Hour(bucket.labelled or 0, _decoded(bucket.labelled_sample))
            state.add(len(piece), piece, sample_rows)
            bucket.labelled = state.rows
            bucket.labelled_sample = (
                seg.encode(state.sample, exact=True) if state.sample is not None else None
            )
        session.flush()


# ---- answering from the samples ------------------------------------------------------------------


@dataclass
class Sampled:
    rows: seg.Segment  # oldest first
    total: int  # rows the window holds (whole hours)
    names: set[str]


def _thin(hours: dict[int, Hour], limit: int) -> seg.Segment:
    """One sample of all hours at a common rate (at most `limit` rows), oldest first."""
    total = sum(h.rows for h in hours.values())
    if not total:
        return seg.concat([])
    rate = min(1.0, limit / total, *(len(h.sample) / h.rows for h in hours.values() if h.sample and h.rows))
    parts = [bottom(h.sample, max(0, round(rate * h.rows))) for h in hours.values() if h.sample is not None]
    rows = seg.concat([p for p in parts if len(p)])
    if not len(rows) or rows.keys is None:
        return rows
    order = np.lexsort((rows.keys, rows.timestamps))
    return rows.take(order)


def _clip(rows: seg.Segment, bounds: tuple[datetime | None, datetime | None]) -> seg.Segment:
    times = rows.timestamps
    mask = np.ones(len(rows), dtype=bool)
    if bounds[0] is not None:
        mask &= times >= logstore.micros(bounds[0])
    if bounds[1] is not None:
        mask &= times < logstore.micros(bounds[1])
    return rows if mask.all() else rows.take(np.flatnonzero(mask))


def sampled_window(
    session: Session,
    model_id: int,
    version: str,
    bounds: tuple[datetime | None, datetime | None],
    limit: int,
    wanted: set[str],
) -> Sampled:
    """The window from the hourly samples, with the rows not rolled up yet sampled alike."""
    start = bounds[0].replace(minute=0, second=0, microsecond=0) if bounds[0] else None
    hours: dict[int, Hour] = {}
    names: set[str] = set()
    for bucket in repo.buckets_between(session, model_id, version, start, bounds[1]):
        if bucket.sample is not None:
            names.update(seg.column_names(bucket.sample))
        hours[logstore.micros(bucket.start)] = Hour(bucket.rows, _decoded(bucket.sample, wanted))
    for row in repo.segments_newest_first(session, model_id, version, start, bounds[1], unrolled=True):
        names.update(seg.column_names(row.data))
        part = seg.decode(row.data, wanted)
        part.keys = segment_keys(row.id, len(part))
        for hour, piece in _by_hour(part):
            _merge_raw(hours, hour, piece)
    total = sum(h.rows for h in hours.values())
    logged = {logstore.PREDICTION, logstore.PROBABILITY, logstore.VARIANT}
    return Sampled(_clip(_thin(hours, limit), bounds), total, names - logged)


def sampled_labelled(
    session: Session,
    model_id: int,
    version: str,
    bounds: tuple[datetime | None, datetime | None],
    limit: int,
    raw: list[Any],
) -> Sampled:
    """Labelled rows from the hours' labelled samples plus the raw labelled rows still kept."""
    start = bounds[0].replace(minute=0, second=0, microsecond=0) if bounds[0] else None
    hours: dict[int, Hour] = {}
    for bucket in repo.buckets_between(session, model_id, version, start, bounds[1]):
        if bucket.labelled:
            hours[logstore.micros(bucket.start)] = Hour(bucket.labelled, _decoded(bucket.labelled_sample))
    if raw:
        for hour, piece in _by_hour(labelled_segment(raw)):
            _merge_raw(hours, hour, piece)
    total = sum(h.rows for h in hours.values())
    return Sampled(_clip(_thin(hours, limit), bounds), total, set())
