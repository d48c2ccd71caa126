"""Every SQL statement of materialization jobs: the jobs, the feature set's watermarks, and the
offline rows a job copies. Flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import count_rows
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from feature_store.tables import FeatureSet, MaterializationJob, OfflineRow


@dataclass(frozen=True)
class Scope:
    """The offline rows a job copies: event time in [start, end], or (incremental) event time up
    to end and ingested after row `after_row_id`. `until_row_id`: the newest row when it began."""

    start_us: int | None
    end_us: int
    after_row_id: int | None
    until_row_id: int | None


def _in_scope(query: Any, scope: Scope) -> Any:
    query = query.where(OfflineRow.event_ts <= scope.end_us)
    if scope.start_us is None:
        return query
    if scope.after_row_id is None:
        return query.where(OfflineRow.event_ts >= scope.start_us)
    return query.where(or_(OfflineRow.event_ts >= scope.start_us, OfflineRow.id > scope.after_row_id))


# jobs ----------------------------------------------------------------------------------------


def add_job(session: Session, job: MaterializationJob) -> None:
    session.add(job)
    session.flush()


def job(session: Session, job_id: int) -> MaterializationJob | None:
    return session.get(MaterializationJob, job_id)


def job_with_set(session: Session, job_id: int) -> tuple[MaterializationJob, str] | None:
    """The job and its feature set's name."""
    row = session.execute(
        select(MaterializationJob, FeatureSet.name)
        .join(FeatureSet, FeatureSet.id == MaterializationJob.feature_set_id)
        .where(MaterializationJob.id == job_id)
    ).first()
    return None if row is None else (row[0], row[1])


def job_page(
    session: Session, feature_set: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[tuple[MaterializationJob, str]], int]:
    """Newest first, each with its feature set's name; and how many match."""
    query = select(MaterializationJob, FeatureSet.name).join(
        FeatureSet, FeatureSet.id == MaterializationJob.feature_set_id
    )
    if feature_set is not None:
        query = query.where(FeatureSet.name == feature_set)
    if status is not None:
        query = query.where(MaterializationJob.status == status)
    total = count_rows(session, query)
    rows = session.execute(query.order_by(MaterializationJob.id.desc()).limit(limit).offset(offset))
    return [(job, name) for job, name in rows], total


def set_total(session: Session, job_id: int, total: int) -> None:
    session.execute(
        update(MaterializationJob).where(MaterializationJob.id == job_id).values(rows_total=total)
    )


def set_progress(session: Session, job_id: int, done: int) -> None:
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


def finish(session: Session, job_id: int, status: str, error: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
    if error is not None:
        values["error"] = error
    session.execute(update(MaterializationJob).where(MaterializationJob.id == job_id).values(**values))


def fail_unfinished(session: Session, error: str) -> int:
    """Marks every PENDING or RUNNING job FAILED; how many."""
    result = session.execute(
        update(MaterializationJob)
        .where(MaterializationJob.status.in_(("PENDING", "RUNNING")))
        .values(status="FAILED", error=error, finished_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# the feature set's watermarks ----------------------------------------------------------------


def marks(session: Session, feature_set_id: int) -> tuple[int | None, int | None]:
    """(materialized_until_us, materialized_row_id)."""
    query = select(FeatureSet.materialized_until_us, FeatureSet.materialized_row_id)
    watermark, row_mark = session.execute(query.where(FeatureSet.id == feature_set_id)).one()
    return watermark, row_mark


def lock_feature_set_row(session: Session, feature_set_id: int) -> None:
    """Waits for ingestion into the set to commit (it holds this row lock until then)."""
    session.scalar(select(FeatureSet.id).where(FeatureSet.id == feature_set_id).with_for_update())


def feature_set_for_update(session: Session, feature_set_id: int) -> FeatureSet | None:
    return session.scalars(
        select(FeatureSet).where(FeatureSet.id == feature_set_id).with_for_update()
    ).first()


# offline rows --------------------------------------------------------------------------------


def newest_row_id(session: Session, feature_set_id: int) -> int | None:
    return session.scalar(select(func.max(OfflineRow.id)).where(OfflineRow.feature_set_id == feature_set_id))


def entities_in_scope(session: Session, feature_set_id: int, scope: Scope) -> int:
    query = select(func.count(func.distinct(OfflineRow.entity_key))).where(
        OfflineRow.feature_set_id == feature_set_id
    )
    return session.scalar(_in_scope(query, scope)) or 0


def entity_keys(
    session: Session, feature_set_id: int, scope: Scope, after: str | None, limit: int
) -> list[str]:
    """The next `limit` entity keys (ascending, after `after`) with rows in the scope."""
    keys = _in_scope(select(OfflineRow.entity_key).where(OfflineRow.feature_set_id == feature_set_id), scope)
    if after is not None:
        keys = keys.where(OfflineRow.entity_key > after)
    return list(session.scalars(keys.distinct().order_by(OfflineRow.entity_key).limit(limit)))


def newest_rows(
    session: Session, feature_set_id: int, scope: Scope, first: str, last: str
) -> list[tuple[str, int, int, dict[str, Any]]]:
    """The newest row in the scope (event time, then created time, then id) of each entity with a
    key in [first, last]: (entity key, event µs, created µs, values)."""
    rank = (
        func.row_number()
        .over(
            partition_by=OfflineRow.entity_key,
            order_by=(OfflineRow.event_ts.desc(), OfflineRow.created_ts.desc(), OfflineRow.id.desc()),
        )
        .label("rank")
    )
    inner = _in_scope(
        select(OfflineRow.entity_key, OfflineRow.event_ts, OfflineRow.created_ts, OfflineRow.values, rank)
        .where(OfflineRow.feature_set_id == feature_set_id, OfflineRow.entity_key >= first)
        .where(OfflineRow.entity_key <= last),
        scope,
    ).subquery()
    picked = select(inner.c.entity_key, inner.c.event_ts, inner.c.created_ts, inner.c["values"]).where(
        inner.c.rank == 1
    )
    return [(k, e, c, v) for k, e, c, v in session.execute(picked)]
