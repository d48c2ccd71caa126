"""Point-in-time-correct retrieval, computed inside the database.

For each entity row and feature set, the chosen offline row is the one with the greatest
`event_ts <= row timestamp`, and when the set has a TTL also `event_ts >= row timestamp - ttl`
(inclusive: a value exactly `ttl` old is still valid, as in Feast); ties on `event_ts` go to the
greatest `created_ts`, then to the last written. No match: nulls, the row is kept. A feature
absent from the chosen row's schema version is null.

The distinct (entity key, timestamp) pairs are loaded into a temporary table (COPY on
PostgreSQL), then one query per feature set picks the rows, walking ix_offline_rows_lookup
backwards: a CROSS JOIN LATERAL (... LIMIT 1) on PostgreSQL (only matches come back), a
correlated subquery on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from feature_store.errors import InvalidRequest, TypeMismatch
from feature_store.offline.frames import Frame
from feature_store.registry.views import FeatureDef, FeatureSetView
from feature_store.types import InvalidValue, coerce, present, to_micros

EVENT_TS = "event_timestamp"
TEMP = "pit_entities"


@dataclass(frozen=True)
class Target:
    """One output column: a feature of a feature set, read as `feature.type`."""

    view: FeatureSetView
    feature: FeatureDef
    column: str


def entity_times(frame: Frame) -> list[int]:
    if EVENT_TS not in frame.columns:
        raise TypeMismatch(f"entity rows need an {EVENT_TS!r} column", {"column": EVENT_TS})
    raw = frame.columns[EVENT_TS]
    native = frame.native.get(EVENT_TS) == "timestamp"  # already µs
    if native and None not in raw:
        return raw
    out: list[int] = []
    for i, value in enumerate(raw):
        try:
            if value is None:
                raise InvalidValue(f"{EVENT_TS} is required")
            out.append(value if native else to_micros(value))
        except InvalidValue as exc:
            raise TypeMismatch(
                f"entity row {i}, column {EVENT_TS!r}: {exc}",
                {"errors": [{"row": i, "column": EVENT_TS, "reason": str(exc)}]},
            ) from None
    return out


def entity_keys(view: FeatureSetView, frame: Frame) -> list[str]:
    missing = [k for k in view.join_keys if k not in frame.columns]
    if missing:
        raise InvalidRequest(
            f"entity rows lack join key {missing[0]!r} of entity {view.entity!r} (feature set {view.name!r})",
            {"entity": view.entity, "join_keys": list(view.join_keys), "missing": missing},
        )
    join = view.join_keys
    cols = [frame.columns[k] for k in join]
    out: list[str] = []
    for i in range(frame.size):
        raw = cols[0][i] if len(join) == 1 else {k: c[i] for k, c in zip(join, cols, strict=True)}
        try:
            out.append(view.entity_key(raw))
        except InvalidRequest as exc:
            raise TypeMismatch(
                f"entity row {i}: {exc.message}",
                {"errors": [{"row": i, "column": ",".join(join), "reason": exc.message}]},
            ) from None
    return out


def retrieve(session: Session, frame: Frame, targets: Sequence[Target]) -> list[list[Any]]:
    """One list of stored-form values per target, aligned with the frame's rows."""
    times = entity_times(frame)
    views = {t.view.id: t.view for t in targets}
    group_of: dict[int, int] = {}  # view id -> group (views of one entity share the entity rows' keys)
    groups: dict[tuple[Any, ...], int] = {}
    row_pids: list[list[int]] = []  # per group: the pair id of each entity row
    pairs: list[tuple[int, int, str, int]] = []  # (group, pair id, entity key, ts)
    for view in views.values():
        entity = (view.join_keys, view.entity_value_type)
        if entity not in groups:
            groups[entity] = len(row_pids)
            row_pids.append(_pairs(groups[entity], entity_keys(view, frame), times, pairs))
        group_of[view.id] = groups[entity]
    postgres = session.get_bind().dialect.name == "postgresql"
    _load(session, pairs, postgres)
    try:
        chosen = {
            view.id: _chosen_rows(session, view, group_of[view.id], postgres) for view in views.values()
        }
    finally:
        if not postgres:
            session.execute(text(f"DROP TABLE IF EXISTS temp.{TEMP}"))
    return [_column(t, chosen[t.view.id], row_pids[group_of[t.view.id]]) for t in targets]


def _pairs(
    group: int, keys: list[str], times: list[int], pairs: list[tuple[int, int, str, int]]
) -> list[int]:
    """Adds the group's distinct (key, ts) pairs; the pair id of each entity row."""
    seen: dict[tuple[str, int], int] = {}
    out: list[int] = []
    for key, ts in zip(keys, times, strict=True):
        pid = seen.get((key, ts))
        if pid is None:
            pid = seen[(key, ts)] = len(pairs)
            pairs.append((group, pid, key, ts))
        out.append(pid)
    return out


def _load(session: Session, pairs: list[tuple[int, int, str, int]], postgres: bool) -> None:
    conn = session.connection()
    if postgres:
        columns = "grp integer, pid integer, entity_key text, ts bigint"
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {TEMP} ({columns}) ON COMMIT DROP")
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {TEMP} (grp, pid, entity_key, ts) FROM STDIN") as copy:
            for pair in pairs:
                copy.write_row(pair)
        conn.exec_driver_sql(f"ANALYZE {TEMP}")
        return
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{TEMP}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {TEMP} (grp INTEGER, pid INTEGER, entity_key TEXT, ts INTEGER)"
    )
    for start in range(0, len(pairs), 10_000):
        conn.exec_driver_sql(f"INSERT INTO temp.{TEMP} VALUES (?, ?, ?, ?)", pairs[start : start + 10_000])


def _chosen_rows(
    session: Session, view: FeatureSetView, group: int, postgres: bool
) -> dict[int, tuple[int, dict[str, Any]]]:
    ttl = " AND o.event_ts >= e.ts - :ttl" if view.ttl_seconds else ""
    params = {"fs": view.id, "grp": group, "ttl": (view.ttl_seconds or 0) * 1_000_000}
    order = "ORDER BY o.event_ts DESC, o.created_ts DESC, o.id DESC LIMIT 1"
    match = f"o.feature_set_id = :fs AND o.entity_key = e.entity_key AND o.event_ts <= e.ts{ttl}"
    if postgres:
        sql = (
            f"SELECT e.pid, r.version, r.vals FROM {TEMP} e CROSS JOIN LATERAL "
            f'(SELECT o.version, o."values"::text AS vals FROM offline_rows o WHERE {match} {order}) r '
            "WHERE e.grp = :grp"
        )
    else:
        sql = (
            f'SELECT m.pid, r.version, r."values" FROM (SELECT e.pid, '
            f"(SELECT o.id FROM offline_rows o WHERE {match} {order}) AS rid "
            f"FROM temp.{TEMP} e WHERE e.grp = :grp) m JOIN offline_rows r ON r.id = m.rid"
        )
    loads = orjson.loads
    return {pid: (version, loads(vals)) for pid, version, vals in session.execute(text(sql), params)}


def _column(target: Target, chosen: dict[int, tuple[int, dict[str, Any]]], row_pids: list[int]) -> list[Any]:
    name, type_ = target.feature.name, target.feature.type
    convert = {
        v: next((f.type for f in defs if f.name == name), None) for v, defs in target.view.versions.items()
    }
    out: list[Any] = []
    for pid in row_pids:
        hit = chosen.get(pid)
        if hit is None:
            out.append(None)
            continue
        version, values = hit
        value = values.get(name)
        stored_type = convert.get(version)
        if value is not None and stored_type != type_:
            value = _retyped(value, stored_type, type_)
        out.append(value)
    return out


def _retyped(value: Any, stored: str | None, wanted: str) -> Any:
    """A value written under another schema version read as the wanted type, or null."""
    if stored is None:
        return None
    try:
        return coerce(present(value, stored), wanted)
    except InvalidValue:
        return None
