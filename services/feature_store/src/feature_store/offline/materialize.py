"""Materialization jobs: copy, for every entity, its newest offline row of an event-time range
into the online store, in the background of the service process, with progress.

A job runs as an asyncio task of the process that accepted it: entities are read in chunks of
CHUNK (keyset on entity_key, newest row per entity by a window function), written with
the online store's `write` (newest (event_ts, created_ts) wins, so re-running a range or an older
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
from typing import Any

import anyio
from mlops_kit.audit import utcnow
from mlops_kit.db import Database
from sqlalchemy.orm import Session

from feature_store.errors import FeatureSetNotFound, InvalidRequest, JobNotFound
from feature_store.offline import repository as repo
from feature_store.offline.repository import Scope
from feature_store.online.base import OnlineStore
from feature_store.registry import repository as registry
from feature_store.registry.views import FeatureSetView
from feature_store.tables import FeatureSet, MaterializationJob
from feature_store.types import from_micros, iso

log = logging.getLogger("feature_store.materialize")
CHUNK = 2_000
STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")


def create_job(
    session: Session, view: FeatureSetView, start_us: int | None, end_us: int, incremental: bool
) -> MaterializationJob:
    after_row_id = None
    if incremental:  # already up to date: an empty range, the job succeeds with nothing to copy
        watermark, row_mark = repo.marks(session, view.id)
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
    repo.add_job(session, job)
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
    row = repo.job_with_set(session, job_id)
    if row is None:
        raise JobNotFound(f"materialization job {job_id} does not exist", {"job": job_id})
    return job_read(row[0], row[1])


def list_jobs(
    session: Session, feature_set: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    if feature_set is not None and not registry.feature_set_exists(session, feature_set):
        raise FeatureSetNotFound(f"feature set {feature_set!r} does not exist", {"feature_set": feature_set})
    rows, total = repo.job_page(session, feature_set, status, limit, offset)
    return [job_read(job, name) for job, name in rows], total


class JobRunner:
    """Runs jobs as tasks of this process, kept referenced until they end (one per app, made in
    its lifespan)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, online: OnlineStore | None, job_id: int, view: FeatureSetView) -> None:
        task = asyncio.get_running_loop().create_task(run_job(self.db, online, job_id, view))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def run_job(db: Database, online: OnlineStore | None, job_id: int, view: FeatureSetView) -> None:
    try:
        scope = await anyio.to_thread.run_sync(_begin, db, job_id, view.id)
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


def _begin(db: Database, job_id: int, fs_id: int) -> Scope:
    with db.session(write=True) as session, session.begin():
        # ingestion holds this row lock until it commits: past it, every row up to the newest id
        # read below is committed (ids are handed out before commit, so a later id may commit first)
        repo.lock_feature_set_row(session, fs_id)
        job = repo.job(session, job_id)
        assert job is not None
        scope = Scope(job.start_us, job.end_us, job.after_row_id, repo.newest_row_id(session, fs_id))
        job.status, job.started_at = "RUNNING", utcnow()
    # counted after the lock is released: ingestion does not wait for the count
    with db.session(write=False) as session:
        total = repo.entities_in_scope(session, fs_id, scope)
    with db.session(write=True) as session, session.begin():
        repo.set_total(session, job_id, total)
    return scope


def _chunk(
    db: Database, fs_id: int, scope: Scope, after: str | None
) -> tuple[list[tuple[str, int, int, dict[str, Any]]], str | None]:
    """The newest row of each of the next CHUNK entities (by key) with rows in the scope."""
    with db.session(write=False) as session:
        batch = repo.entity_keys(session, fs_id, scope, after, CHUNK)
        if not batch:
            return [], after
        return repo.newest_rows(session, fs_id, scope, batch[0], batch[-1]), batch[-1]


def _progress(db: Database, job_id: int, done: int) -> None:
    with db.session(write=True) as session, session.begin():
        repo.set_progress(session, job_id, done)


def _succeed(db: Database, job_id: int, fs_id: int, scope: Scope) -> None:
    with db.session(write=True) as session, session.begin():
        fs = repo.feature_set_for_update(session, fs_id)
        if fs is not None:
            _advance_marks(fs, scope)
        repo.finish(session, job_id, "SUCCEEDED")


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


def _fail(db: Database, job_id: int, error: str) -> None:
    try:
        with db.session(write=True) as session, session.begin():
            repo.finish(session, job_id, "FAILED", error[:4000])
    except Exception:
        log.exception("could not mark materialization job %s failed", job_id)


def fail_interrupted_jobs(db: Database) -> int:
    """Mark jobs a stopped process left PENDING or RUNNING as FAILED (start-up step)."""
    with db.session(write=True) as session, session.begin():
        return repo.fail_unfinished(session, "interrupted: the service stopped before the job finished")
