"""Materialization jobs: copy, for every entity, its newest offline row of an event-time range
into the online store, in the background of the service process, with progress.

A job runs as an asyncio task of the process that accepted it: entities are read in chunks of
CHUNK (keyset on entity_key, newest row per entity by a window function), written with
`app.state.online.write` (newest (event_ts, created_ts) wins, so re-running a range or an older
range never rolls a value back), and progress is committed after every chunk. On success the
feature set's `materialized_until_us` watermark moves to the job's end when the job's range
starts at or before it (or has no start), so `{"incremental": true}` continues from there.

A process that stops mid-job leaves it RUNNING: `fail_interrupted_jobs` (run at start-up) marks
PENDING and RUNNING jobs FAILED, to be started again (materialization is idempotent). With several
replicas on one database that would also fail the jobs of live replicas, so only one replica
(or none) should run it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
from fastapi import FastAPI
from mlops_kit.audit import utcnow
from sqlalchemy import case, func, select, update
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
    if incremental:  # already up to date: an empty range, the job succeeds with nothing to copy
        watermark = session.scalar(select(FeatureSet.materialized_until_us).where(FeatureSet.id == view.id))
        start_us = None if watermark is None else watermark + 1
    elif start_us is not None and start_us > end_us:
        raise InvalidRequest(
            "start is after end", {"start": from_micros(start_us), "end": from_micros(end_us)}
        )
    job = MaterializationJob(
        feature_set_id=view.id, start_us=start_us, end_us=end_us, incremental=incremental, created_at=utcnow()
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


async def run_job(app: FastAPI, job_id: int, view: FeatureSetView) -> None:
    db = app.state.db
    try:
        start_us, end_us = await anyio.to_thread.run_sync(_begin, db, job_id, view.id)
        online = app.state.online
        if online is None:
            raise RuntimeError("this service has no online store")
        after, done = None, 0
        while True:
            rows, after = await anyio.to_thread.run_sync(_chunk, db, view.id, start_us, end_us, after)
            if not rows:
                break
            await online.write(view, rows)
            done += len(rows)
            await anyio.to_thread.run_sync(_progress, db, job_id, done)
        await anyio.to_thread.run_sync(_succeed, db, job_id, view.id, start_us, end_us)
    except Exception as exc:
        log.exception("materialization job %s failed", job_id)
        await anyio.to_thread.run_sync(_fail, db, job_id, f"{type(exc).__name__}: {exc}")


def _range(query: Any, start_us: int | None, end_us: int) -> Any:
    query = query.where(OfflineRow.event_ts <= end_us)
    return query if start_us is None else query.where(OfflineRow.event_ts >= start_us)


def _begin(db: Any, job_id: int, fs_id: int) -> tuple[int | None, int]:
    with db.session(write=True) as session, session.begin():
        job = session.get(MaterializationJob, job_id)
        entities = _range(
            select(func.count(func.distinct(OfflineRow.entity_key))).where(
                OfflineRow.feature_set_id == fs_id
            ),
            job.start_us,
            job.end_us,
        )
        job.rows_total = session.scalar(entities) or 0
        job.status, job.started_at = "RUNNING", utcnow()
        return job.start_us, job.end_us


def _chunk(
    db: Any, fs_id: int, start_us: int | None, end_us: int, after: str | None
) -> tuple[list[tuple[str, int, int, dict[str, Any]]], str | None]:
    """The newest row of each of the next CHUNK entities (by key) with rows in the range."""
    with db.session(write=False) as session:
        keys = _range(
            select(OfflineRow.entity_key).where(OfflineRow.feature_set_id == fs_id), start_us, end_us
        )
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
            start_us,
            end_us,
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


def _succeed(db: Any, job_id: int, fs_id: int, start_us: int | None, end_us: int) -> None:
    with db.session(write=True) as session, session.begin():
        fs = session.scalars(select(FeatureSet).where(FeatureSet.id == fs_id).with_for_update()).first()
        if fs is not None:
            mark = fs.materialized_until_us
            contiguous = start_us is None or (mark is not None and start_us <= mark + 1)
            if contiguous and (mark is None or end_us > mark):
                fs.materialized_until_us = end_us
        session.execute(
            update(MaterializationJob)
            .where(MaterializationJob.id == job_id)
            .values(status="SUCCEEDED", finished_at=utcnow())
        )


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
