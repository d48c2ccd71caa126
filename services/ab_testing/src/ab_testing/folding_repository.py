"""The folder's statements: the log of pending events, the users' aggregates (`user_metrics`)
and the variants' sufficient statistics (`metric_stats`).

Reads and writes of aggregates go through the drivers (one psycopg statement over arrays,
sqlite3 in chunks of parameters): a chunk reads and writes tens of thousands of rows."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from mlops_kit.db import Database
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from ab_testing.routing_repository import upsert_insert
from ab_testing.tables import Experiment, MetricStats

STAT_FIELDS = (
    "n",
    "sum",
    "sum_sq",
    "n_cov",
    "sum_x",
    "sum_x_sq",
    "sum_xy",
    "sum_den",
    "sum_den_sq",
    "sum_num_den",
)
_SQLITE_IN_LIMIT = 30_000  # parameters per IN (...): below SQLite's limit of 32766

Key = tuple[int, str, str]  # (phase, component metric, user)
StatKey = tuple[int, str, str]  # (phase, variant, metric)


def _sql(conn: Connection, text: str) -> str:
    """Our statements are written with SQLite's ``?``; psycopg's mark is ``%s``."""
    return text.replace("?", "%s") if conn.dialect.name == "postgresql" else text


def advisory_xact_lock(conn: Connection, key: int) -> None:
    """PostgreSQL: wait for the transaction-level advisory lock `key` (released at its end)."""
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


def set_sqlite_cache(conn: Connection, kib: int) -> None:
    conn.exec_driver_sql(f"PRAGMA cache_size = -{kib}")


def pending_sizes(conn: Connection, shard: int, limit: int) -> Sequence[Any]:
    """(log id, events) of the shard's oldest log rows, at most `limit` of them."""
    return conn.exec_driver_sql(
        _sql(conn, "SELECT id, events FROM pending_events WHERE shard = ? ORDER BY id LIMIT ?"),
        (shard, limit),
    ).all()


def pending_payload(conn: Connection, log_id: int) -> Any:
    (payload,) = conn.exec_driver_sql(
        _sql(conn, "SELECT payload FROM pending_events WHERE id = ?"), (log_id,)
    ).one()
    return payload


def delete_pending(conn: Connection, ids: list[int]) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DELETE FROM pending_events WHERE id = ANY(%s)", (ids,))
    else:
        marks = ",".join("?" * len(ids))
        conn.exec_driver_sql(f"DELETE FROM pending_events WHERE id IN ({marks})", tuple(ids))


def pending_shards(db: Database) -> list[int]:
    with db.reader.connect() as conn:
        return [
            r[0] for r in conn.exec_driver_sql("SELECT DISTINCT shard FROM pending_events ORDER BY shard")
        ]


def pending_event_count(db: Database) -> int:
    with db.reader.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COALESCE(SUM(events), 0) FROM pending_events").scalar_one())


def experiments_by_id(session: Session, ids: list[str]) -> dict[str, Experiment]:
    return {e.id: e for e in session.scalars(select(Experiment).where(Experiment.id.in_(ids)))}


def load_user_rows(conn: Connection, experiment_id: str, keys: Iterable[Key]) -> dict[Key, list[Any]]:
    """The stored aggregates of these keys: [total, events, covariate, variant] by key."""
    groups: dict[tuple[int, str], list[str]] = defaultdict(list)
    for phase, metric, user in keys:
        groups[(phase, metric)].append(user)
    found: dict[Key, list[Any]] = {}
    load = _load_user_rows_postgres if conn.dialect.name == "postgresql" else _load_user_rows_sqlite
    for (phase, metric), users in groups.items():
        for user, total, events, covariate, variant in load(conn, experiment_id, phase, metric, users):
            found[(phase, metric, user)] = [total, events, covariate, variant]
    return found


def _load_user_rows_postgres(
    conn: Connection, experiment_id: str, phase: int, metric: str, users: list[str]
) -> Iterable[Any]:
    # one primary-key probe per user, whatever the planner believes: while the table grows
    # faster than its statistics it would scan it with `user_id = ANY(...)` or a plain join,
    # comparing every row with every user (LIMIT 1 keeps the lookup a probe)
    return conn.exec_driver_sql(
        "SELECT m.* FROM unnest(%b::text[]) AS wanted(user_id) CROSS JOIN LATERAL ("
        "SELECT user_id, total, events, covariate, variant FROM user_metrics "
        "WHERE experiment_id = %s AND phase = %s AND metric = %s "
        "AND user_id = wanted.user_id LIMIT 1) AS m",
        (users, experiment_id, phase, metric),
    ).all()


def _load_user_rows_sqlite(
    conn: Connection, experiment_id: str, phase: int, metric: str, users: list[str]
) -> Iterable[Any]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    head = "SELECT user_id, total, events, covariate, variant FROM user_metrics WHERE experiment_id = "
    for start in range(0, len(users), _SQLITE_IN_LIMIT):
        part = users[start : start + _SQLITE_IN_LIMIT]
        sql = head + f"? AND phase = ? AND metric = ? AND user_id IN ({','.join('?' * len(part))})"
        yield from raw.execute(sql, (experiment_id, phase, metric, *part))


_USER_ROWS_INSERT = (
    "INSERT INTO user_metrics (experiment_id, phase, metric, user_id, total, events, covariate, variant) "
)
_USER_ROWS_UPDATE = (
    " ON CONFLICT (experiment_id, phase, metric, user_id) DO UPDATE SET "
    "total = excluded.total, events = excluded.events, covariate = excluded.covariate"
)


def write_user_rows(conn: Connection, experiment_id: str, rows: dict[Key, list[Any]]) -> None:
    """Insert or overwrite the users' aggregates."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _write_user_rows_postgres(conn, experiment_id, rows)
        return
    conn.exec_driver_sql(
        _USER_ROWS_INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, ?)" + _USER_ROWS_UPDATE,
        [(experiment_id, *key, *row) for key, row in rows.items()],
    )


def _write_user_rows_postgres(conn: Connection, experiment_id: str, rows: dict[Key, list[Any]]) -> None:
    # one statement over arrays: a statement per row costs a round trip and a parse each
    phases, metrics, users = zip(*rows, strict=True)
    totals, events, covariates, variants = zip(*rows.values(), strict=True)
    conn.exec_driver_sql(
        _USER_ROWS_INSERT + "SELECT %s, * FROM unnest(%b::int[], %b::text[], %b::text[], %b::float8[], "
        "%b::int[], %b::float8[], %b::text[])" + _USER_ROWS_UPDATE,
        (
            experiment_id,
            list(phases),
            list(metrics),
            list(users),
            list(totals),
            list(events),
            list(covariates),
            list(variants),
        ),
    )


def add_stats(session: Session, experiment_id: str, stats: dict[StatKey, list[float]]) -> None:
    """Add the changes to the variants' sums (rows created at the first change)."""
    insert_ = upsert_insert(session)
    for (p, v, m), d in stats.items():
        values: dict[str, Any] = dict(zip(STAT_FIELDS, d, strict=True))
        values["n"] = round(values["n"])
        values["n_cov"] = round(values["n_cov"])
        stmt = insert_(MetricStats).values(
            experiment_id=experiment_id, phase=p, variant=v, metric=m, **values
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "phase", "variant", "metric"],
            set_={f: getattr(MetricStats, f) + getattr(stmt.excluded, f) for f in STAT_FIELDS},
        )
        session.execute(stmt)
