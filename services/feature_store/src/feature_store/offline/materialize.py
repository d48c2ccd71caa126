"""Materialization jobs: copy, for every entity, its newest offline row of an event-time range
into the online store, in the background of the service process, with progress.

A job runs as an asyncio task of the process that accepted it: entities are read in chunks of
CHUNK (keyset on entity_key, newest row per entity by a window function), written with
`app.state.online.write` (newest (event_ts, created_ts) wins, so re-running a range or an older
range never rolls a value back), and progress is committed after every chunk. On success the
feature set's `materialized_until_us` watermark moves to the job's end when the job's range
starts at or before it (or has no start), so `{"incremental": true}` continues from there.

Event time alone would miss late data: a row ingested after a job but with an event time at or
before its watermark. So the feature set also keeps `materialized_row_id`, the newest offline row
(ids follow the ingestion order) a job that copied every row ingested so far has seen, and an
incremental job copies rows with an event time after the watermark *or* an id after that row,
all up to its end. The newest row per entity is written; the online store's newest-wins rule
still keeps a newer online value from being overwritten by an older event time.

A process that stops mid-job leaves it RUNNING: `fail_interrupted_jobs` (run at start-up) marks
PENDING and RUNNING jobs FAILED, to be started again (materialization is idempotent). With several
replicas on one database that would also fail the jobs of live replicas, so only one replica
(or none) should run it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import FastAPI
from mlops_kit.audit import utcnow
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from feature_store.errors import FeatureSetNotFound, InvalidRequest, JobNotFound
from feature_store.registry.views import FeatureSetView
from feature_store.tables import FeatureSet, MaterializationJob, OfflineRow
from feature_store.types import from_micros, iso

log = logging.getLogger("feature_store.materialize")
CHUNK = 2_000
STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")


def create_job(
    session: Session, view: FeatureSetView, start_us: int | None, end_us: int, incremental: bool
) -> MaterializationJob:
    after_row_id = None
    if incremental:  # already up to date: an empty range, the job succeeds with nothing to copy
        marks = select(FeatureSet.materialized_until_us, FeatureSet.materialized_row_id)
        watermark, row_mark = session.execute(marks.where(FeatureSet.id == view.id)).one()
        # no row mark yet (jobs before it was kept): copy everything up to the end once
        start_us = None if watermark is None or row_mark is None else watermark + 1
        after_row_id = None if start_us is None else row_mark
    elif start_us is not None and start_us > end_us:
        raise InvalidRequest(
            "start is after end", {"start": from_micros(start_us), "end": from_micros(end_us)}
        )
    job = MaterializationJob(
        feature_set_id=view.id,
        start_us=start_us,
        end_us=end_us,
        incremental=incremental,
        after_row_id=after_row_id,
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def job_read(job: MaterializationJob, feature_set: str) -> dict[str, Any]:
    done, total = job.rows_done, job.rows_total
    percent = 100.0 if job.status == "SUCCEEDED" else (round(100.0 * done / total, 1) if total else 0.0)
    return {
        "id": job.id,
        "feature_set": feature_set,
        "status": job.status,
        "start": from_micros(job.start_us) if job.start_us is not None else None,
        "end": from_micros(job.end_us),
        "incremental": job.incremental,
        "rows_total": total,
        "rows_done": done,
        "percent": percent,
        "error": job.error,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def get_job(session: Session, job_id: int) -> dict[str, Any]:
    row = session.execute(
        select(MaterializationJob, FeatureSet.name)
        .join(FeatureSet, FeatureSet.id == MaterializationJob.feature_set_id)
        .where(MaterializationJob.id == job_id)
    ).first()
    if row is None:
        raise JobNotFound(f"materialization job {job_id} does not exist", {"job": job_id})
    return job_read(row[0], row[1])


def list_jobs(
    session: Session, feature_set: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    query = select(MaterializationJob, FeatureSet.name).join(
        FeatureSet, FeatureSet.id == MaterializationJob.feature_set_id
    )
    if feature_set is not None:
        if session.scalar(select(FeatureSet.id).where(FeatureSet.name == feature_set)) is None:
            raise FeatureSetNotFound(
                f"feature set {feature_set!r} does not exist", {"feature_set": feature_set}
            )
        query = query.where(FeatureSet.name == feature_set)
    if status is not None:
        query = query.where(MaterializationJob.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(MaterializationJob.id.desc()).limit(limit).offset(offset))
    return [job_read(job, name) for job, name in rows], total


def start(app: FastAPI, job_id: int, view: FeatureSetView) -> None:
    """Run the job as a task of this process (kept referenced until it ends)."""
    tasks: set[asyncio.Task[None]] | None = getattr(app.state, "materialization_tasks", None)
    if tasks is None:
        tasks = app.state.materialization_tasks = set()
    task = asyncio.get_running_loop().create_task(run_job(app, job_id, view))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@dataclass(frozen=True)
class Scope:
    """The offline rows a job copies: event time in [start, end], or (incremental) event time up
    to end and ingested after row `after_row_id`. `until_row_id`: the newest row when it began."""

    start_us: int | None
    end_us: int
    after_row_id: int | None
    until_row_id: int | None


async def run_job(app: FastAPI, job_id: int, view: FeatureSetView) -> None:
    db = app.state.db
    try:
        scope = await anyio.to_thread.run_sync(_begin, db, job_id, view.id)
        online = app.state.online
        if online is None:
            raise RuntimeError("this service has no online store")
        after, done = None, 0
        while True:
            rows, after = await anyio.to_thread.run_sync(_chunk, db, view.id, scope, after)
            if not rows:
                break
            await online.write(view, rows)
            done += len(rows)
            await anyio.to_thread.run_sync(_progress, db, job_id, done)
        await anyio.to_thread.run_sync(_succeed, db, job_id, view.id, scope)
    except Exception as exc:
        log.exception("materialization job %s failed", job_id)
        await anyio.to_thread.run_sync(_fail, db, job_id, f"{type(exc).__name__}: {exc}")


def _range(query: Any, scope: Scope) -> Any:
    query = query.where(OfflineRow.event_ts <= scope.end_us)
    if scope.start_us is None:
        return query
    if scope.after_row_id is None:
        return query.where(OfflineRow.event_ts >= scope.start_us)
    return query.where(or_(OfflineRow.event_ts >= scope.start_us, OfflineRow.id > scope.after_row_id))


def _begin(db: Any, job_id: int, fs_id: int) -> Scope:
    with db.session(write=True) as session, session.begin():
        # ingestion holds this row lock until it commits: past it, every row up to the newest id
        # read below is committed (ids are handed out before commit, so a later id may commit first)
        session.scalar(select(FeatureSet.id).where(FeatureSet.id == fs_id).with_for_update())
        newest = select(func.max(OfflineRow.id)).where(OfflineRow.feature_set_id == fs_id)
        job = session.get(MaterializationJob, job_id)
        scope = Scope(job.start_us, job.end_us, job.after_row_id, session.scalar(newest))
        job.status, job.started_at = "RUNNING", utcnow()
    # counted after the lock is released: ingestion does not wait for the count
    entities = _range(
        select(func.count(func.distinct(OfflineRow.entity_key))).where(OfflineRow.feature_set_id == fs_id),
        scope,
    )
    with db.session(write=False) as session:
        total = session.scalar(entities) or 0
    with db.session(write=True) as session, session.begin():
        session.execute(
            update(MaterializationJob).where(MaterializationJob.id == job_id).values(rows_total=total)
        )
    return scope


def _chunk(
    db: Any, fs_id: int, scope: Scope, after: str | None
) -> tuple[list[tuple[str, int, int, dict[str, Any]]], str | None]:
    """The newest row of each of the next CHUNK entities (by key) with rows in the scope."""
    with db.session(write=False) as session:
        keys = _range(select(OfflineRow.entity_key).where(OfflineRow.feature_set_id == fs_id), scope)
        if after is not None:
            keys = keys.where(OfflineRow.entity_key > after)
        batch = list(session.scalars(keys.distinct().order_by(OfflineRow.entity_key).limit(CHUNK)))
        if not batch:
            return [], after
        rank = (
            func.row_number()
            .over(
                partition_by=OfflineRow.entity_key,
                order_by=(OfflineRow.event_ts.desc(), OfflineRow.created_ts.desc(), OfflineRow.id.desc()),
            )
            .label("rank")
        )
        inner = _range(
            select(OfflineRow.entity_key, OfflineRow.event_ts, OfflineRow.created_ts, OfflineRow.values, rank)
            .where(OfflineRow.feature_set_id == fs_id, OfflineRow.entity_key >= batch[0])
            .where(OfflineRow.entity_key <= batch[-1]),
            scope,
        ).subquery()
        picked = select(inner.c.entity_key, inner.c.event_ts, inner.c.created_ts, inner.c["values"]).where(
            inner.c.rank == 1
        )
        rows = [(k, e, c, v) for k, e, c, v in session.execute(picked)]
        return rows, batch[-1]


def _progress(db: Any, job_id: int, done: int) -> None:
    with db.session(write=True) as session, session.begin():
        session.execute(
            update(MaterializationJob)
            .where(MaterializationJob.id == job_id)
            # rows written after the count (a push during the job) can make `done` pass the total
            .values(
                rows_done=done,
                rows_total=case(
                    (MaterializationJob.rows_total < done, done), else_=MaterializationJob.rows_total
                ),
            )
        )


def _succeed(db: Any, job_id: int, fs_id: int, scope: Scope) -> None:
    with db.session(write=True) as session, session.begin():
        fs = session.scalars(select(FeatureSet).where(FeatureSet.id == fs_id).with_for_update()).first()
        if fs is not None:
            _advance_marks(fs, scope)
        session.execute(
            update(MaterializationJob)
            .where(MaterializationJob.id == job_id)
            .values(status="SUCCEEDED", finished_at=utcnow())
        )


def _advance_marks(fs: FeatureSet, scope: Scope) -> None:
    mark, row_mark = fs.materialized_until_us, fs.materialized_row_id
    contiguous = scope.start_us is None or (mark is not None and scope.start_us <= mark + 1)
    if contiguous and (mark is None or scope.end_us > mark):
        fs.materialized_until_us = scope.end_us
    # the job copied every row ingested up to `until_row_id` with an event time up to its end;
    # the rows with later event times are still after the event-time watermark (end reaches it)
    every_ingested = scope.start_us is None or (
        scope.after_row_id is not None and row_mark is not None and scope.after_row_id <= row_mark
    )
    reaches = mark is None or scope.end_us >= mark
    if every_ingested and contiguous and reaches and scope.until_row_id is not None:
        fs.materialized_row_id = max(row_mark or 0, scope.until_row_id)


def _fail(db: Any, job_id: int, error: str) -> None:
    try:
        with db.session(write=True) as session, session.begin():
            session.execute(
                update(MaterializationJob)
                .where(MaterializationJob.id == job_id)
                .values(status="FAILED", error=error[:4000], finished_at=utcnow())
            )
    except Exception:
        log.exception("could not mark materialization job %s failed", job_id)


def fail_interrupted_jobs(app: FastAPI) -> int:
    """Mark jobs a stopped process left PENDING or RUNNING as FAILED (start-up hook)."""
    with app.state.db.session(write=True) as session, session.begin():
        result = session.execute(
            update(MaterializationJob)
            .where(MaterializationJob.status.in_(("PENDING", "RUNNING")))
            .values(
                status="FAILED",
                error="interrupted: the service stopped before the job finished",
                finished_at=utcnow(),
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
