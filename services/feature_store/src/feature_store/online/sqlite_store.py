"""The embedded online store: its own SQLite file (WAL), one row per (feature set, entity).

Reads of a request's keys are one indexed statement per feature set, run on the event loop with a
dedicated connection (a WAL read never waits for the writer and takes microseconds, less than a
thread hand-off); very large reads go to a worker thread. Writes always run in a worker thread on
the one writer connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread
import orjson

from feature_store.online.base import OnlineRow, OnlineStore, Record, RecordKey, newest_per_entity
from feature_store.registry.views import FeatureSetView

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_records (
    feature_set_id INTEGER NOT NULL,
    entity_key TEXT NOT NULL,
    event_ts INTEGER NOT NULL,
    created_ts INTEGER NOT NULL,
    vals BLOB NOT NULL,
    PRIMARY KEY (feature_set_id, entity_key)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO online_records (feature_set_id, entity_key, event_ts, created_ts, vals)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (feature_set_id, entity_key) DO UPDATE SET
    event_ts = excluded.event_ts, created_ts = excluded.created_ts, vals = excluded.vals
WHERE excluded.event_ts > online_records.event_ts
   OR (excluded.event_ts = online_records.event_ts AND excluded.created_ts >= online_records.created_ts)
"""
_SELECT = (
    "SELECT entity_key, event_ts, created_ts, vals FROM online_records "
    "WHERE feature_set_id = ? AND entity_key IN "
)
INLINE_READ_LIMIT = 500  # keys read on the event loop; more go to a worker thread
_CHUNK = 900  # bound parameters per statement, under every SQLite build's limit


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SqliteOnlineStore(OnlineStore):
    kind = "sqlite"

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = _connect(path)
        self._writer.execute(_SCHEMA)
        self._write_lock = threading.Lock()
        self._reader = _connect(path)
        self._local = threading.local()
        self._thread_conns: list[sqlite3.Connection] = []

    async def write(self, view: FeatureSetView, rows: Sequence[OnlineRow]) -> int:
        if not rows:
            return 0
        params = [
            (view.id, key, ev, cr, orjson.dumps(values)) for key, ev, cr, values in newest_per_entity(rows)
        ]
        return await anyio.to_thread.run_sync(self._write_sync, params)

    def _write_sync(self, params: list[tuple[int, str, int, int, bytes]]) -> int:
        with self._write_lock:
            conn = self._writer
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return conn.total_changes - before

    async def read(self, keys: Sequence[RecordKey]) -> list[Record | None]:
        if len(keys) <= INLINE_READ_LIMIT:
            return _read(self._reader, keys)
        return await anyio.to_thread.run_sync(self._read_in_thread, keys)

    def _read_in_thread(self, keys: Sequence[RecordKey]) -> list[Record | None]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
            self._thread_conns.append(conn)
        return _read(conn, keys)

    async def delete_feature_set(self, feature_set_id: int) -> None:
        await anyio.to_thread.run_sync(
            self._execute, "DELETE FROM online_records WHERE feature_set_id = ?", (feature_set_id,)
        )

    async def clear(self) -> None:
        await anyio.to_thread.run_sync(self._execute, "DELETE FROM online_records", ())

    def _execute(self, sql: str, params: tuple[int, ...]) -> None:
        with self._write_lock:
            self._writer.execute(sql, params)

    async def ping(self) -> None:
        self._reader.execute("SELECT 1").fetchone()

    async def close(self) -> None:
        for conn in (self._reader, self._writer, *self._thread_conns):
            conn.close()


def _read(conn: sqlite3.Connection, keys: Sequence[RecordKey]) -> list[Record | None]:
    by_set: dict[int, set[str]] = {}
    for set_id, key in keys:
        by_set.setdefault(set_id, set()).add(key)
    found: dict[tuple[int, str], Record] = {}
    for set_id, wanted in by_set.items():
        entity_keys = list(wanted)
        for start in range(0, len(entity_keys), _CHUNK):
            chunk = entity_keys[start : start + _CHUNK]
            sql = _SELECT + "(" + ",".join("?" * len(chunk)) + ")"
            for key, event_ts, created_ts, vals in conn.execute(sql, (set_id, *chunk)):
                found[(set_id, key)] = (event_ts, created_ts, orjson.loads(vals))
    return [found.get(k) for k in keys]
