"""Ingestion's statements: event ids (de-duplication) and the log of pending events.

Written on the drivers (one psycopg statement over arrays, sqlite3's executemany): this is the
ingestion hot path, one round trip per statement whatever the batch size."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from sqlalchemy import Connection

EventKey = tuple[str, str]  # (experiment id, event id)
_SQLITE_IN_LIMIT = 30_000  # parameters per IN (...): below SQLite's limit of 32766


def store_event_ids(conn: Connection, keys: list[EventKey]) -> set[EventKey]:
    """Insert the ids that are not stored yet; returns those (the others were duplicates)."""
    if conn.dialect.name == "postgresql":
        return _store_event_ids_postgres(conn, keys)
    return _store_event_ids_sqlite(conn, keys)


def _store_event_ids_postgres(conn: Connection, keys: list[EventKey]) -> set[EventKey]:
    # one statement; a concurrent insert of the same id waits for the other transaction
    inserted = conn.exec_driver_sql(
        "INSERT INTO event_ids (experiment_id, event_id) SELECT * FROM unnest(%b::text[], %b::text[]) "
        "ON CONFLICT DO NOTHING RETURNING experiment_id, event_id",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).all()
    return {(e, i) for e, i in inserted}


def _store_event_ids_sqlite(conn: Connection, keys: list[EventKey]) -> set[EventKey]:
    # SQLite (one writer at a time): optimistic, since duplicates are rare (a resent batch)
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    raw.execute("SAVEPOINT event_ids")
    try:
        raw.executemany("INSERT INTO event_ids (experiment_id, event_id) VALUES (?, ?)", keys)
        raw.execute("RELEASE event_ids")
        return set(keys)
    except sqlite3.IntegrityError:
        raw.execute("ROLLBACK TO event_ids")
        raw.execute("RELEASE event_ids")
    seen = _stored_event_ids_sqlite(raw, keys)
    new = [k for k in keys if k not in seen]
    raw.executemany("INSERT INTO event_ids (experiment_id, event_id) VALUES (?, ?)", new)
    return set(new)


def _stored_event_ids_sqlite(raw: sqlite3.Connection, keys: list[EventKey]) -> set[EventKey]:
    seen: set[EventKey] = set()
    by_experiment: dict[str, list[str]] = {}
    for e, i in keys:
        by_experiment.setdefault(e, []).append(i)
    for e, event_ids in by_experiment.items():
        for start in range(0, len(event_ids), _SQLITE_IN_LIMIT):
            part = event_ids[start : start + _SQLITE_IN_LIMIT]
            marks = ",".join("?" * len(part))
            found = raw.execute(
                f"SELECT event_id FROM event_ids WHERE experiment_id = ? AND event_id IN ({marks})",
                (e, *part),
            )
            seen.update((e, i) for (i,) in found)
    return seen


def insert_pending(conn: Connection, parts: dict[int, list[tuple[Any, ...]]]) -> None:
    """One row of the log per shard: its events as one JSON payload."""
    conn.exec_driver_sql(
        "INSERT INTO pending_events (shard, events, payload) VALUES (%s, %s, %s)"
        if conn.dialect.name == "postgresql"
        else "INSERT INTO pending_events (shard, events, payload) VALUES (?, ?, ?)",
        [(shard, len(part), orjson.dumps(part)) for shard, part in parts.items()],
    )
