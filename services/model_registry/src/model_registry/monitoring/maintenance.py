"""The prediction log's background upkeep: roll segments up into hourly buckets, prune raw rows
past their retention (after folding what the buckets need), drop buckets past theirs.

Each step is a short transaction of its own under one lock (`registry.monitoring.maintenance`),
so several replicas may run the loop: they take turns, and each re-reads what is left to do
under the lock (nothing is rolled up or pruned twice). Ingest never waits for this work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
from mlops_kit.audit import utcnow
from mlops_kit.db import Database, lock_key
from sqlalchemy.orm import Session

from model_registry.monitoring import buckets
from model_registry.monitoring import repository as repo

log = logging.getLogger("mlops.model_registry.monitoring")
LOCK = "registry.monitoring.maintenance"
SEGMENTS_PER_STEP = 20
ROWS_PER_STEP = 20_000


@dataclass(frozen=True)
class Retention:
    raw: timedelta  # feature segments
    labels: timedelta  # per-row records (request ids, predictions, labels)
    aggregates: timedelta  # hourly buckets
    sample_rows: int  # per bucket and hour


@dataclass
class Done:
    rolled_up: int = 0
    segments_pruned: int = 0
    rows_pruned: int = 0
    buckets_pruned: int = 0


def _step(db: Database, work: Callable[[Session], int]) -> int:
    with db.session(write=True) as session:
        lock_key(session, LOCK)
        done = work(session)
        session.commit()
    return done


def roll_up_step(session: Session, retention: Retention) -> int:
    segments = repo.unrolled_segments(session, SEGMENTS_PER_STEP)
    buckets.roll_up(session, segments, retention.sample_rows)
    repo.mark_rolled_up(session, [s.id for s in segments])
    return len(segments)


def prune_segments_step(session: Session, before: datetime) -> int:
    expired = repo.expired_segments(session, before, SEGMENTS_PER_STEP * 10)
    for s in expired:
        repo.mark_pruned(session, s.model_id, s.version, _hour(s.t_min), s.t_max, labels=False)
    repo.delete_segments(session, [s.id for s in expired])
    return len(expired)


def prune_rows_step(session: Session, before: datetime, sample_rows: int) -> int:
    expired = repo.expired_rows(session, before, ROWS_PER_STEP)
    buckets.keep_labelled(session, expired, sample_rows)
    spans: dict[tuple[int, str], tuple[datetime, datetime]] = {}
    for r in expired:
        lo, hi = spans.get((r.model_id, r.version), (r.timestamp, r.timestamp))
        spans[(r.model_id, r.version)] = (min(lo, r.timestamp), max(hi, r.timestamp))
    for (model_id, version), (lo, hi) in spans.items():
        repo.mark_pruned(session, model_id, version, _hour(lo), hi, labels=True)
    repo.delete_rows(session, [r.id for r in expired])
    return len(expired)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def run_once(db: Database, retention: Retention, now: datetime | None = None) -> Done:
    """Every step until nothing is left (the time `now` decides what has expired)."""
    now = now or utcnow()
    done = Done()
    while n := _step(db, lambda s: roll_up_step(s, retention)):
        done.rolled_up += n
    while n := _step(db, lambda s: prune_segments_step(s, now - retention.raw)):
        done.segments_pruned += n
    while n := _step(db, lambda s: prune_rows_step(s, now - retention.labels, retention.sample_rows)):
        done.rows_pruned += n
    done.buckets_pruned = _step(db, lambda s: repo.delete_buckets_before(s, now - retention.aggregates))
    return done


class Maintenance:
    """`run_once` every `interval` seconds in a worker thread, from the app's start to its stop."""

    def __init__(self, db: Database, retention: Retention, interval: float) -> None:
        self.db, self.retention, self.interval = db, retention, interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="monitoring-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await anyio.to_thread.run_sync(run_once, self.db, self.retention)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("prediction log maintenance failed")
