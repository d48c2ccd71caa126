"""Exposures and their per-variant counts: every statement of the routing side.

The exposure insert stays on the drivers (sqlite3's executemany, one psycopg statement over
arrays): it runs for every batch the exposure buffer and the folder write."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from mlops_kit.audit import utcnow
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ab_testing.tables import ExposureCount

ExposureKey = tuple[str, int, str]  # (experiment id, phase, user) or (experiment id, phase, variant)


def upsert_insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def record_exposures(session: Session, batch: dict[ExposureKey, str]) -> int:
    """Insert first exposures (duplicates ignored) and count the new ones per variant."""
    if not batch:
        return 0
    now = utcnow()
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        added = _insert_exposures_sqlite(conn, batch, now)
    else:
        added = _insert_exposures_postgres(conn, batch, now)
    _add_exposure_counts(session, added)
    return sum(added.values())


def _insert_exposures_sqlite(
    conn: Connection, batch: dict[ExposureKey, str], now: datetime
) -> Counter[ExposureKey]:
    # the one writer; per variant, the rows an INSERT OR IGNORE adds are the new exposures
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    at = now.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    groups: dict[ExposureKey, list[tuple[str, int, str, str, str]]] = {}
    for (e, p, u), v in batch.items():
        groups.setdefault((e, p, v), []).append((e, p, u, v, at))
    added: Counter[ExposureKey] = Counter()
    cursor = raw.cursor()
    for group, rows in groups.items():
        cursor.executemany(
            "INSERT OR IGNORE INTO exposures (experiment_id, phase, user_id, variant, at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        if cursor.rowcount > 0:
            added[group] += cursor.rowcount
    cursor.close()
    return added


def _insert_exposures_postgres(
    conn: Connection, batch: dict[ExposureKey, str], now: datetime
) -> Counter[ExposureKey]:
    # one statement over arrays; the rows it returns are the users seen for the first time in
    # the phase (a concurrent writer of the same user waits, then skips it: they agree)
    keys = list(batch)
    returned = conn.exec_driver_sql(
        "INSERT INTO exposures (experiment_id, phase, user_id, variant, at) "
        "SELECT *, %s FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[]) "
        "ON CONFLICT DO NOTHING RETURNING experiment_id, phase, variant",
        (
            now,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [batch[k] for k in keys],
        ),
    ).all()
    added: Counter[ExposureKey] = Counter()
    for e, p, v in returned:
        added[(e, p, v)] += 1
    return added


def _add_exposure_counts(session: Session, added: Counter[ExposureKey]) -> None:
    insert = upsert_insert(session)
    for (e, p, v), n in added.items():
        upsert = insert(ExposureCount).values(experiment_id=e, phase=p, variant=v, users=n)
        session.execute(
            upsert.on_conflict_do_update(
                index_elements=["experiment_id", "phase", "variant"],
                set_={"users": ExposureCount.users + upsert.excluded.users},
            )
        )


def exposure_counts(session: Session, experiment_id: str, phase: int) -> dict[str, int]:
    return dict(
        session.execute(
            select(ExposureCount.variant, ExposureCount.users).where(
                ExposureCount.experiment_id == experiment_id, ExposureCount.phase == phase
            )
        ).all()
    )
