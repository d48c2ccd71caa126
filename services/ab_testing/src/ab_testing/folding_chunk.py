"""Folding one chunk of a shard's log: read the events and the aggregates they change, compute
the new aggregates and the changes of the variants' sums (`plan`), write them and drop the
events from the log in one transaction (`apply`)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from mlops_kit.db import Database, sqlite_file_lock
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ab_testing import folding_repository as repo
from ab_testing.folding_columns import (
    NO_ROW,
    Key,
    StatKey,
    columns,
    mean_columns,
    ratio_change,
    sum_by,
)
from ab_testing.routing_repository import record_exposures
from ab_testing.tables import Experiment

FOLD_LOCK = 0x0AB0F000  # + shard: pg_advisory_xact_lock key, one folder per shard across replicas
SQLITE_CACHE_KIB = 65_536

Metric = dict[str, Any]


@dataclass
class Plan:
    """What folding a chunk writes: computed from reads alone, written in one short transaction."""

    taken: list[int]  # the log rows folded
    events: int
    user_rows: dict[str, dict[Key, list[Any]]] = field(default_factory=dict)  # experiment -> rows
    stats: dict[str, dict[StatKey, list[float]]] = field(default_factory=dict)
    exposed: dict[tuple[str, int, str], str] = field(default_factory=dict)  # first aggregates


def plan(session: Session, shard: int, limit: int) -> Plan | None:
    """Read the shard's oldest events (at least one request's, about `limit`) and the users'
    aggregates they change, and compute the new aggregates and the sums' changes."""
    conn = session.connection()
    taken, rows = _read_log(conn, shard, limit)
    if not taken:
        return None
    chunk = Plan(taken, len(rows))
    by_experiment: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_experiment[row[0]].append(row)
    experiments = repo.experiments_by_id(session, list(by_experiment))
    for exp_id, part in by_experiment.items():
        experiment = experiments.get(exp_id)
        if experiment is not None:  # else deleted since: its events go with it
            _plan_experiment(conn, chunk, experiment, part)
    return chunk


def _read_log(conn: Connection, shard: int, limit: int) -> tuple[list[int], list[list[Any]]]:
    """The oldest log rows' ids and events: whole rows, at least one, about `limit` events."""
    taken: list[int] = []
    rows: list[list[Any]] = []
    for log_id, events in repo.pending_sizes(conn, shard, limit):
        if taken and len(rows) + events > limit:
            break
        taken.append(log_id)
        rows.extend(orjson.loads(repo.pending_payload(conn, log_id)))
    return taken, rows


def _plan_experiment(conn: Connection, chunk: Plan, experiment: Experiment, rows: list[Any]) -> None:
    metrics = {m["name"]: m for m in experiment.metrics}
    means = {n: m for n, m in metrics.items() if m["type"] in ("binary", "continuous")}
    ratios_of: dict[str, list[Metric]] = defaultdict(list)
    for m in metrics.values():
        if m["type"] == "ratio":
            ratios_of[m["numerator"]].append(m)
            ratios_of[m["denominator"]].append(m)
    delta = _deltas(rows)
    old = repo.load_user_rows(conn, experiment.id, _needed(delta, ratios_of))
    new = _merged(delta, old)
    # per-variant sums change by the new contribution minus the old one, computed by columns
    stats: dict[StatKey, list[float]] = {}
    by_metric: dict[str, list[Key]] = defaultdict(list)
    for key in new:
        by_metric[key[1]].append(key)
    _mean_changes(means, by_metric, new, old, stats)
    _ratio_changes(ratios_of, by_metric, new, old, stats)
    chunk.user_rows[experiment.id] = new
    chunk.stats[experiment.id] = stats
    _first_exposures(chunk, experiment.id, new, old)


def _deltas(rows: list[Any]) -> dict[Key, list[Any]]:
    """This chunk's change per (phase, component metric, user): [total, count, covariate, variant]."""
    delta: dict[Key, list[Any]] = {}
    for _, phase, metric, user, variant, value, covariate in rows:
        key = (phase, metric, user)
        d = delta.get(key)
        if d is None:
            d = delta[key] = [0.0, 0, None, variant]
        if value is not None:
            d[0] += value
            d[1] += 1
        if covariate is not None:
            d[2] = covariate
    return delta


def _needed(delta: dict[Key, list[Any]], ratios_of: dict[str, list[Metric]]) -> set[Key]:
    """The rows whose old values matter: the changed ones, and the partners of ratio metrics."""
    needed = set(delta)
    if ratios_of:
        for phase, metric, user in delta:
            for ratio in ratios_of.get(metric, ()):
                needed.add((phase, ratio["numerator"], user))
                needed.add((phase, ratio["denominator"], user))
    return needed


def _merged(delta: dict[Key, list[Any]], old: dict[Key, list[Any]]) -> dict[Key, list[Any]]:
    """The changed aggregates: the stored ones plus this chunk's change (a user keeps the variant
    and, without a new one, the covariate they had)."""
    new: dict[Key, list[Any]] = {}
    for key, (total, count, covariate, variant) in delta.items():
        before = old.get(key)
        if before is None:
            new[key] = [total, count, covariate, variant]
        else:
            new[key] = [
                before[0] + total,
                before[1] + count,
                before[2] if covariate is None else covariate,
                before[3],
            ]
    return new


def _mean_changes(
    means: dict[str, Metric],
    by_metric: dict[str, list[Key]],
    new: dict[Key, list[Any]],
    old: dict[Key, list[Any]],
    stats: dict[StatKey, list[float]],
) -> None:
    for name, keys in by_metric.items():
        mean = means.get(name)
        if mean is None:
            continue
        groups = [(p, new[(p, name, u)][3], name) for p, _, u in keys]
        now = columns([(r[0], r[1], r[2]) for r in map(new.__getitem__, keys)])
        was = columns([(r[0], r[1], r[2]) if (r := old.get(k)) else NO_ROW for k in keys])
        sum_by(groups, mean_columns(mean, now) - mean_columns(mean, was), stats)


def _ratio_changes(
    ratios_of: dict[str, list[Metric]],
    by_metric: dict[str, list[Key]],
    new: dict[Key, list[Any]],
    old: dict[Key, list[Any]],
    stats: dict[StatKey, list[float]],
) -> None:
    for ratio in {r["name"]: r for rs in ratios_of.values() for r in rs}.values():
        users: dict[tuple[int, str], str] = {}  # (phase, user) -> variant, for users whose parts changed
        for part in (ratio["numerator"], ratio["denominator"]):
            for p, _, u in by_metric.get(part, ()):
                users.setdefault((p, u), new[(p, part, u)][3])
        if not users:
            continue
        change = ratio_change(ratio["numerator"], ratio["denominator"], list(users), new, old)
        sum_by([(p, v, ratio["name"]) for (p, _), v in users.items()], change, stats)


def _first_exposures(
    chunk: Plan, experiment_id: str, new: dict[Key, list[Any]], old: dict[Key, list[Any]]
) -> None:
    # a user is exposed when their first aggregate in the phase is created
    known = {(p, u) for p, _, u in old}
    for (p, _, u), row in new.items():
        if (p, u) not in known:
            chunk.exposed.setdefault((experiment_id, p, u), row[3])


def apply(session: Session, chunk: Plan) -> None:
    conn = session.connection()
    for experiment_id, rows in chunk.user_rows.items():
        repo.write_user_rows(conn, experiment_id, rows)
    for experiment_id, stats in chunk.stats.items():
        repo.add_stats(session, experiment_id, stats)
    record_exposures(session, chunk.exposed)
    repo.delete_pending(conn, chunk.taken)


def fold_chunk(db: Database, shard: int = 0, limit: int = 50_000) -> int:
    """Fold the shard's oldest pending events (about `limit`); returns how many (0: none left).
    Shards hold disjoint users, so folders of different shards never touch the same aggregate
    (the variants' sums they share are only ever incremented). On SQLite the reading and
    computing happen outside the write transaction, so ingestion and the other shards keep
    writing meanwhile; on PostgreSQL it is one transaction under the shard's advisory lock."""
    if db.is_sqlite:
        return _fold_chunk_sqlite(db, shard, limit)
    with db.session(write=True) as session:
        repo.advisory_xact_lock(session.connection(), FOLD_LOCK + shard)
        chunk = plan(session, shard, limit)
        if chunk is None:
            return 0
        apply(session, chunk)
        session.commit()
        return chunk.events


def _fold_chunk_sqlite(db: Database, shard: int, limit: int) -> int:
    # one folder per shard at a time among the processes sharing the file: the aggregates a
    # folder read stay current until it has written
    with sqlite_file_lock(db.url, f"fold-{shard}"):
        with db.session(write=False) as reader:
            # a page cache that holds the aggregates a chunk reads (the default is 2 MiB)
            repo.set_sqlite_cache(reader.connection(), SQLITE_CACHE_KIB)
            chunk = plan(reader, shard, limit)
        if chunk is None:
            return 0
        with db.session(write=True) as session:
            # the writer's page cache: a chunk rewrites pages all over user_metrics
            repo.set_sqlite_cache(session.connection(), SQLITE_CACHE_KIB)
            apply(session, chunk)
            session.commit()
        return chunk.events


def catch_up(
    db: Database, chunk: int = 50_000, shard: int | None = None, *, seconds: float | None = None
) -> int:
    """Fold every pending event (of one shard, or of all), or what `seconds` allow (chunks are
    not cut short); returns how many were folded. With nothing left, the statistics include
    every event accepted before the call: reads of the statistics call it first."""
    deadline = None if seconds is None else time.monotonic() + seconds
    folded = 0
    while shards := ([shard] if shard is not None else repo.pending_shards(db)):
        done = sum(fold_chunk(db, s, chunk) for s in shards)
        if not done:
            break
        folded += done
        if deadline is not None and time.monotonic() >= deadline:
            break
    return folded
