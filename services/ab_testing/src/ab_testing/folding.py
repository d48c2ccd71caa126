"""Folding pending events into sufficient statistics.

Each user has one aggregate per (component) metric and phase (`user_metrics`); a metric's
per-variant sums (`metric_stats`: n, sum, sum of squares, covariate cross-products for CUPED,
numerator/denominator products for ratio metrics) change by the difference between the user's
old and new contribution. Analysis reads only those sums.

The log is folded in chunks of many requests: a user's aggregate is read and written once per
chunk however many of their events it holds, and the database writes each changed page once.
One folder at a time (PostgreSQL: a transaction-level advisory lock; SQLite: a lock file), in
event order; a chunk's events leave the log in the transaction that writes their effect. The
folder runs in a process of its own, so ingestion and folding use two cores.

- `folding_columns`: the arithmetic (numpy, by columns);
- `folding_chunk`: one chunk, planned from reads and applied in one transaction; `catch_up`;
- `folding_repository`: every statement;
- `folder`: the background folders (processes or a thread).
"""

from __future__ import annotations

from mlops_kit.db import Database

from ab_testing.folder import STOP_SIGNALS, Folder, tune_gc
from ab_testing.folding_chunk import FOLD_LOCK, SQLITE_CACHE_KIB, catch_up, fold_chunk
from ab_testing.folding_columns import Key, user_values
from ab_testing.folding_repository import STAT_FIELDS, pending_event_count, pending_shards

__all__ = [
    "FOLD_LOCK",
    "SQLITE_CACHE_KIB",
    "STAT_FIELDS",
    "STOP_SIGNALS",
    "Folder",
    "Key",
    "catch_up",
    "fold_chunk",
    "fold_for_read",
    "pending_events",
    "pending_shards",
    "tune_gc",
    "user_values",
]


def pending_events(db: Database) -> int:
    """Accepted events not in the statistics yet."""
    return pending_event_count(db)


def fold_for_read(db: Database, seconds: float, chunk: int = 50_000) -> int:
    """Before a read of the statistics: fold what is pending, for at most about `seconds` (after a
    burst the folders may be far behind); returns how many events are still pending (0: the
    statistics include every accepted event)."""
    catch_up(db, chunk, seconds=seconds)
    return pending_events(db)
