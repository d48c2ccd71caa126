"""Folding pending events into sufficient statistics.

Each user has one aggregate per (component) metric and phase (`user_metrics`); a metric's
per-variant sums (`metric_stats`: n, sum, sum of squares, covariate cross-products for CUPED,
numerator/denominator products for ratio metrics) change by the difference between the user's
old and new contribution. Analysis reads only those sums.

Per-user value of a metric: binary — 1 if any event had a positive value, else 0; continuous —
the sum of the user's values (``aggregation: "mean"``: their mean); ratio — the user's summed
numerator and denominator component metrics.

The log is folded in chunks of many requests: a user's aggregate is read and written once per
chunk however many of their events it holds, and the database writes each changed page once.
One folder at a time (PostgreSQL: a transaction-level advisory lock; SQLite: a lock file), in
event order; a chunk's events leave the log in the transaction that writes their effect. The
folder runs in a process of its own, so ingestion and folding use two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import anyio
import numpy as np
import orjson
from mlops_kit.db import Database, sqlite_file_lock
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from ab_testing.routing import record_exposures, upsert_insert
from ab_testing.tables import Experiment, MetricStats

log = logging.getLogger("mlops.ab.folding")

FOLD_LOCK = 0x0AB0F000  # + shard: pg_advisory_xact_lock key, one folder per shard across replicas
SQLITE_CACHE_KIB = 65_536
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

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

Key = tuple[int, str, str]  # (phase, component metric, user)


def user_values(metric: dict[str, Any], total: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Each user's value of a binary or continuous metric from their summed values and event
    count: binary 1 if the sum is positive, else 0; continuous the sum (``aggregation: "mean"``:
    the mean, for users with events)."""
    if metric["type"] == "binary":
        return (total > 0).astype(np.float64)
    if metric.get("aggregation") == "mean":
        return np.divide(total, events, out=total.astype(np.float64), where=events > 0)
    return total


_NO_ROW = (0.0, 0, None)  # a user without an aggregate: contributes nothing


def _mean_columns(metric: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """Per user, the contribution of a binary or continuous metric to the 10 sums, from columns
    (total, events, covariate (NaN: none)); a user without events counts only for zero-filled
    metrics (as a 0 with n unchanged)."""
    total, events, x = rows[:, 0], rows[:, 1], rows[:, 2]
    has = events > 0
    y = user_values(metric, total, events)
    counted = has | bool(metric.get("zero_fill"))
    with_x = counted & ~np.isnan(x)
    x0 = np.where(with_x, x, 0.0)
    y = np.where(counted, y, 0.0)
    out = np.zeros((len(rows), 10))
    out[:, 0] = has
    out[:, 1] = y
    out[:, 2] = y * y
    out[:, 3] = with_x
    out[:, 4] = x0
    out[:, 5] = x0 * x0
    out[:, 6] = x0 * y
    return out


def _ratio_columns(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per user, a ratio metric's contribution from its numerator's and denominator's (total,
    events) columns: (1, a, a², 0, 0, 0, 0, b, b², ab) once either has an event."""
    counted = (num[:, 1] > 0) | (den[:, 1] > 0)
    a = np.where(counted, num[:, 0], 0.0)
    b = np.where(counted, den[:, 0], 0.0)
    out = np.zeros((len(num), 10))
    out[:, 0] = counted
    out[:, 1] = a
    out[:, 2] = a * a
    out[:, 7] = b
    out[:, 8] = b * b
    out[:, 9] = a * b
    return out


def _ratio_change(
    num: str, den: str, pairs: list[tuple[int, str]], new: dict[Key, list[Any]], old: dict[Key, list[Any]]
) -> np.ndarray:
    """The change of a ratio metric's contribution for (phase, user) pairs whose parts changed."""

    def current(key: Key) -> list[Any] | None:
        return new.get(key) or old.get(key)

    def part(name: str, pick: Callable[[Key], list[Any] | None]) -> np.ndarray:
        return _columns([(r[0], r[1], None) if (r := pick((p, name, u))) else _NO_ROW for p, u in pairs])

    return _ratio_columns(part(num, current), part(den, current)) - _ratio_columns(
        part(num, old.get), part(den, old.get)
    )


def _sum_by(
    groups: list[tuple[int, str, str]], values: np.ndarray, into: dict[tuple[int, str, str], list[float]]
) -> None:
    codes: dict[tuple[int, str, str], int] = {}
    index = np.fromiter((codes.setdefault(g, len(codes)) for g in groups), dtype=np.int64, count=len(groups))
    sums = np.stack(
        [np.bincount(index, weights=values[:, k], minlength=len(codes)) for k in range(10)], axis=1
    )
    for group, code in codes.items():
        target = into.setdefault(group, [0.0] * 10)
        for k in range(10):
            target[k] += float(sums[code, k])


def _columns(rows: list[tuple[float, int, float | None]]) -> np.ndarray:
    return np.array(rows, dtype=np.float64) if rows else np.zeros((0, 3))


def _sql(conn: Connection, text: str) -> str:
    """Our statements are written with SQLite's ``?``; psycopg's mark is ``%s``."""
    return text.replace("?", "%s") if conn.dialect.name == "postgresql" else text


@dataclass
class _Plan:
    """What folding a chunk writes: computed from reads alone, written in one short transaction."""

    taken: list[int]  # the log rows folded
    events: int
    user_rows: dict[str, dict[Key, list[Any]]] = field(default_factory=dict)  # experiment -> rows
    stats: dict[str, dict[tuple[int, str, str], list[float]]] = field(default_factory=dict)
    exposed: dict[tuple[str, int, str], str] = field(default_factory=dict)  # first aggregates


def _plan(session: Session, shard: int, limit: int) -> _Plan | None:
    """Read the shard's oldest events (at least one request's, about `limit`) and the users'
    aggregates they change, and compute the new aggregates and the sums' changes."""
    conn = session.connection()
    sizes = conn.exec_driver_sql(
        _sql(conn, "SELECT id, events FROM pending_events WHERE shard = ? ORDER BY id LIMIT ?"),
        (shard, limit),
    ).all()
    taken: list[int] = []
    rows: list[list[Any]] = []
    for log_id, events in sizes:
        if taken and len(rows) + events > limit:
            break
        taken.append(log_id)
        (payload,) = conn.exec_driver_sql(
            _sql(conn, "SELECT payload FROM pending_events WHERE id = ?"), (log_id,)
        ).one()
        rows.extend(orjson.loads(payload))
    if not taken:
        return None
    plan = _Plan(taken, len(rows))
    by_experiment: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_experiment[row[0]].append(row)
    found = session.scalars(select(Experiment).where(Experiment.id.in_(list(by_experiment))))
    experiments = {e.id: e for e in found}
    for exp_id, part in by_experiment.items():
        experiment = experiments.get(exp_id)
        if experiment is not None:  # else deleted since: its events go with it
            _plan_experiment(conn, plan, experiment, part)
    return plan


def _plan_experiment(conn: Connection, plan: _Plan, experiment: Experiment, rows: list[Any]) -> None:
    metrics = {m["name"]: m for m in experiment.metrics}
    means = {n: m for n, m in metrics.items() if m["type"] in ("binary", "continuous")}
    ratios_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in metrics.values():
        if m["type"] == "ratio":
            ratios_of[m["numerator"]].append(m)
            ratios_of[m["denominator"]].append(m)
    # this chunk's change per (phase, component metric, user): [total, count, covariate, variant]
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
    # the rows whose old values matter: the changed ones, and the partners of ratio metrics
    needed = set(delta)
    if ratios_of:
        for phase, metric, user in delta:
            for ratio in ratios_of.get(metric, ()):
                needed.add((phase, ratio["numerator"], user))
                needed.add((phase, ratio["denominator"], user))
    old = _load_user_rows(conn, experiment.id, needed)
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
    # per-variant sums change by the new contribution minus the old one, computed by columns
    stats: dict[tuple[int, str, str], list[float]] = {}
    by_metric: dict[str, list[Key]] = defaultdict(list)
    for key in new:
        by_metric[key[1]].append(key)
    for name, keys in by_metric.items():
        mean = means.get(name)
        if mean is None:
            continue
        groups = [(p, new[(p, name, u)][3], name) for p, _, u in keys]
        now = _columns([(r[0], r[1], r[2]) for r in map(new.__getitem__, keys)])
        was = _columns([(r[0], r[1], r[2]) if (r := old.get(k)) else _NO_ROW for k in keys])
        _sum_by(groups, _mean_columns(mean, now) - _mean_columns(mean, was), stats)
    for ratio in {r["name"]: r for rs in ratios_of.values() for r in rs}.values():
        users: dict[tuple[int, str], str] = {}  # (phase, user) -> variant, for users whose parts changed
        for part in (ratio["numerator"], ratio["denominator"]):
            for p, _, u in by_metric.get(part, ()):
                users.setdefault((p, u), new[(p, part, u)][3])
        if not users:
            continue
        change = _ratio_change(ratio["numerator"], ratio["denominator"], list(users), new, old)
        _sum_by([(p, v, ratio["name"]) for (p, _), v in users.items()], change, stats)
    plan.user_rows[experiment.id] = new
    plan.stats[experiment.id] = stats
    # a user is exposed when their first aggregate in the phase is created
    known = {(p, u) for p, _, u in old}
    for (p, _, u), row in new.items():
        if (p, u) not in known:
            plan.exposed.setdefault((experiment.id, p, u), row[3])


def _apply(session: Session, plan: _Plan) -> None:
    conn = session.connection()
    for experiment_id, rows in plan.user_rows.items():
        _write_user_rows(conn, experiment_id, rows)
    for experiment_id, stats in plan.stats.items():
        _write_stats(session, experiment_id, stats)
    record_exposures(session, plan.exposed)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DELETE FROM pending_events WHERE id = ANY(%s)", (plan.taken,))
    else:
        marks = ",".join("?" * len(plan.taken))
        conn.exec_driver_sql(f"DELETE FROM pending_events WHERE id IN ({marks})", tuple(plan.taken))


def fold_chunk(db: Database, shard: int = 0, limit: int = 50_000) -> int:
    """Fold the shard's oldest pending events (about `limit`); returns how many (0: none left).
    Shards hold disjoint users, so folders of different shards never touch the same aggregate
    (the variants' sums they share are only ever incremented). On SQLite the reading and
    computing happen outside the write transaction, so ingestion and the other shards keep
    writing meanwhile; on PostgreSQL it is one transaction under the shard's advisory lock."""
    if db.is_sqlite:
        # one folder per shard at a time among the processes sharing the file: the aggregates a
        # folder read stay current until it has written
        with sqlite_file_lock(db.url, f"fold-{shard}"):
            with db.session(write=False) as reader:
                # a page cache that holds the aggregates a chunk reads (the default is 2 MiB)
                reader.connection().exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                plan = _plan(reader, shard, limit)
            if plan is None:
                return 0
            with db.session(write=True) as session:
                # the writer's page cache: a chunk rewrites pages all over user_metrics
                session.connection().exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                _apply(session, plan)
                session.commit()
            return plan.events
    with db.session(write=True) as session:
        session.connection().exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (FOLD_LOCK + shard,))
        plan = _plan(session, shard, limit)
        if plan is None:
            return 0
        _apply(session, plan)
        session.commit()
        return plan.events


def _load_user_rows(conn: Connection, experiment_id: str, keys: Iterable[Key]) -> dict[Key, list[Any]]:
    groups: dict[tuple[int, str], list[str]] = defaultdict(list)
    for phase, metric, user in keys:
        groups[(phase, metric)].append(user)
    found: dict[Key, list[Any]] = {}
    head = "SELECT user_id, total, events, covariate, variant FROM user_metrics WHERE experiment_id = "
    for (phase, metric), users in groups.items():
        if conn.dialect.name == "postgresql":
            # one primary-key probe per user, whatever the planner believes: while the table grows
            # faster than its statistics it would scan it with `user_id = ANY(...)` or a plain join,
            # comparing every row with every user (LIMIT 1 keeps the lookup a probe)
            result: Iterable[Any] = conn.exec_driver_sql(
                "SELECT m.* FROM unnest(%b::text[]) AS wanted(user_id) CROSS JOIN LATERAL ("
                "SELECT user_id, total, events, covariate, variant FROM user_metrics "
                "WHERE experiment_id = %s AND phase = %s AND metric = %s "
                "AND user_id = wanted.user_id LIMIT 1) AS m",
                (users, experiment_id, phase, metric),
            ).all()
            for user, total, events, covariate, variant in result:
                found[(phase, metric, user)] = [total, events, covariate, variant]
            continue
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        for start in range(0, len(users), 30_000):
            part = users[start : start + 30_000]
            sql = head + f"? AND phase = ? AND metric = ? AND user_id IN ({','.join('?' * len(part))})"
            for user, total, events, covariate, variant in raw.execute(
                sql, (experiment_id, phase, metric, *part)
            ):
                found[(phase, metric, user)] = [total, events, covariate, variant]
    return found


def _write_user_rows(conn: Connection, experiment_id: str, rows: dict[Key, list[Any]]) -> None:
    if not rows:
        return
    update = (
        " ON CONFLICT (experiment_id, phase, metric, user_id) DO UPDATE SET "
        "total = excluded.total, events = excluded.events, covariate = excluded.covariate"
    )
    columns = (
        "INSERT INTO user_metrics (experiment_id, phase, metric, user_id, total, events, covariate, variant) "
    )
    if conn.dialect.name == "postgresql":
        # one statement over arrays: a statement per row costs a round trip and a parse each
        phases, metrics, users = zip(*rows, strict=True)
        totals, events, covariates, variants = zip(*rows.values(), strict=True)
        conn.exec_driver_sql(
            columns + "SELECT %s, * FROM unnest(%b::int[], %b::text[], %b::text[], %b::float8[], "
            "%b::int[], %b::float8[], %b::text[])" + update,
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
        return
    conn.exec_driver_sql(
        columns + "VALUES (?, ?, ?, ?, ?, ?, ?, ?)" + update,
        [(experiment_id, *key, *row) for key, row in rows.items()],
    )


def _write_stats(
    session: Session, experiment_id: str, stats: dict[tuple[int, str, str], list[float]]
) -> None:
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


def tune_gc() -> None:
    """Ingestion and folding allocate a few objects per event by the hundred thousand: with the
    default thresholds the collector ran every 700 of them and rescanned every long-lived object
    (a third of the time). Those are frozen out of it, and young objects wait longer."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def pending_shards(db: Database) -> list[int]:
    with db.reader.connect() as conn:
        return [
            r[0] for r in conn.exec_driver_sql("SELECT DISTINCT shard FROM pending_events ORDER BY shard")
        ]


def catch_up(
    db: Database, chunk: int = 50_000, shard: int | None = None, *, seconds: float | None = None
) -> int:
    """Fold every pending event (of one shard, or of all), or what `seconds` allow (chunks are
    not cut short); returns how many were folded. With nothing left, the statistics include
    every event accepted before the call: reads of the statistics call it first."""
    deadline = None if seconds is None else time.monotonic() + seconds
    folded = 0
    while shards := ([shard] if shard is not None else pending_shards(db)):
        done = sum(fold_chunk(db, s, chunk) for s in shards)
        if not done:
            break
        folded += done
        if deadline is not None and time.monotonic() >= deadline:
            break
    return folded


def pending_events(db: Database) -> int:
    """Accepted events not in the statistics yet."""
    with db.reader.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COALESCE(SUM(events), 0) FROM pending_events").scalar_one())


def fold_for_read(db: Database, seconds: float, chunk: int = 50_000) -> int:
    """Before a read of the statistics: fold what is pending, for at most about `seconds` (after a
    burst the folders may be far behind); returns how many events are still pending (0: the
    statistics include every accepted event)."""
    catch_up(db, chunk, seconds=seconds)
    return pending_events(db)


def _folder_main(url: str, shard: int, chunk: int, interval: float, wakeups: Any, drained: Any) -> None:
    """A folder process: every `interval` (or when woken), folds its shard until it is empty; it
    ends when the service closes its pipe or dies (end of file). SIGTERM or SIGINT end it at once:
    a chunk is one transaction, so nothing is half-folded and the service folds the rest."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    tune_gc()
    db = Database.connect(url, pool_size=2)
    generation = 0
    try:
        while True:
            start = generation
            try:
                if not catch_up(db, chunk, shard):
                    drained[shard] = start
            except Exception:
                log.exception("folding pending events failed; they stay pending and are retried")
            if wakeups.poll(interval):
                generation = max(generation, _read_wakeups(wakeups))
    except EOFError:
        return
    finally:
        db.dispose()


def _read_wakeups(wakeups: Any) -> int:
    """The newest wake-up generation waiting in the pipe (EOFError once the service closed it)."""
    newest = 0
    while wakeups.poll():
        newest = max(newest, int(wakeups.recv()))
    return newest


@contextlib.contextmanager
def _stop_signals_ignored() -> Iterator[None]:
    """Start a child with SIGINT and SIGTERM ignored (a disposition that survives exec), so a stop
    signal to the group while it still imports does not print a traceback; the folder takes them
    back once it runs. The service's own signals are blocked meanwhile: deferred, never lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class Folder:
    """Folds the log in the background: one process per shard (default; the service's process
    keeps its core for requests), or a thread of the service folding every shard.

    The service talks to its folders through pipes and shared counters, not multiprocessing
    locks: a folder killed by a signal can neither leave a lock held nor a semaphore leaked.
    """

    STOP_SECONDS = 3.0  # folders get this long to end, and the last fold as long: a stop takes < 10 s

    def __init__(self, db: Database, chunk: int, interval: float, *, shards: int, in_process: bool = False):
        self.db = db
        self.chunk = chunk
        self.interval = interval
        self.shards = shards
        self.in_process = in_process
        self._ctx = multiprocessing.get_context("spawn")
        self._generation = 0  # wake-ups sent; a shard is drained once found empty after the newest
        self._drained = self._ctx.RawArray("q", 1 if in_process else shards)
        self._thread_wake = threading.Event()
        self._pipes: list[Any] = [None] * shards
        self._processes: list[BaseProcess | None] = [None] * shards
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Fold now rather than at the next interval."""
        self._generation += 1
        self._thread_wake.set()
        for pipe in self._pipes:
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.send(self._generation)

    def wait_drained(self, timeout: float) -> bool:
        """Wake the folders and wait until each has found its shard empty (tests, shutdown)."""
        self.wake()
        deadline = time.monotonic() + timeout
        while any(done < self._generation for done in self._drained):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    async def start(self) -> None:
        # whatever an earlier run left (perhaps sharded otherwise) is folded before folders split it
        await anyio.to_thread.run_sync(catch_up, self.db, self.chunk)
        if self.in_process:
            self._task = asyncio.create_task(self._loop(), name="event-folder")
            return
        for shard in range(self.shards):
            self._spawn(shard)
        self._task = asyncio.create_task(self._watch(), name="event-folder-watch")

    def _spawn(self, shard: int) -> None:
        if self._pipes[shard] is not None:
            self._pipes[shard].close()
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_folder_main,
            args=(self.db.url, shard, self.chunk, self.interval, reader, self._drained),
            name=f"ab-testing-folder-{shard}",
            daemon=True,
        )
        with _stop_signals_ignored():
            process.start()
        reader.close()  # the folder holds the only reader: it sees end of file when the service goes
        self._pipes[shard] = writer
        self._processes[shard] = process

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pipe in self._pipes:
            if pipe is not None:
                pipe.close()
        await anyio.to_thread.run_sync(self._join_or_kill)
        # what was accepted is folded before the service goes, as far as a prompt stop allows;
        # the rest stays pending and is folded at the next start
        await anyio.to_thread.run_sync(lambda: catch_up(self.db, self.chunk, seconds=self.STOP_SECONDS))

    def _join_or_kill(self) -> None:
        """Folders end at their next look at the pipe; one that has not within STOP_SECONDS
        (still starting, or deep in a chunk) is killed: its chunk is rolled back, not lost."""
        deadline = time.monotonic() + self.STOP_SECONDS
        processes = [p for p in self._processes if p is not None]
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(1)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for shard, process in enumerate(self._processes):
                if process is not None and not process.is_alive():
                    log.error("folder process %d exited (code %s); starting another", shard, process.exitcode)
                    self._spawn(shard)

    async def _loop(self) -> None:
        while True:
            await anyio.to_thread.run_sync(self._thread_wake.wait, self.interval)
            self._thread_wake.clear()
            start = self._generation
            try:
                if not await anyio.to_thread.run_sync(catch_up, self.db, self.chunk):
                    self._drained[0] = start
            except Exception:
                log.exception("folding pending events failed; they stay pending and are retried")
