"""Every statement on pipelines, their versions, and the schedules and webhooks created under them.
Flushes, never commits: the request's session commits once."""

from __future__ import annotations

from collections.abc import Sequence

from mlops_kit.db import count_rows
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from pipeline_orchestrator.locks import lock_key
from pipeline_orchestrator.tables import (
    AlertRoute,
    Attempt,
    Pipeline,
    PipelineVersion,
    Run,
    RunState,
    Schedule,
    TaskCache,
    TaskInstance,
    Webhook,
)


def lock_name(session: Session, name: str) -> None:
    """Creating a pipeline or its next version: the next version number is read, then written."""
    lock_key(session, "pipeline", name)


def flush(session: Session) -> None:
    session.flush()


def add(session: Session, row: object) -> None:
    session.add(row)
    session.flush()


def find_by_name(session: Session, name: str) -> Pipeline | None:
    return session.scalar(select(Pipeline).where(Pipeline.name == name))


def find(session: Session, ref: str, *, by_id: bool) -> Pipeline | None:
    condition = or_(Pipeline.id == ref, Pipeline.name == ref) if by_id else Pipeline.name == ref
    return session.scalar(select(Pipeline).where(condition))


def find_version(session: Session, pipeline_id: str, number: int) -> PipelineVersion | None:
    return session.scalar(
        select(PipelineVersion).where(
            PipelineVersion.pipeline_id == pipeline_id, PipelineVersion.version == number
        )
    )


def page(
    session: Session, name_prefix: str | None, limit: int, offset: int
) -> tuple[Sequence[Pipeline], int]:
    query = select(Pipeline)
    if name_prefix:
        query = query.where(Pipeline.name.startswith(name_prefix, autoescape=True))
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Pipeline.name).limit(limit).offset(offset)).all()
    return rows, total


def page_versions(
    session: Session, pipeline_id: str, limit: int, offset: int
) -> tuple[Sequence[PipelineVersion], int]:
    query = select(PipelineVersion).where(PipelineVersion.pipeline_id == pipeline_id)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(PipelineVersion.version.desc()).limit(limit).offset(offset)).all()
    return rows, total


def count_active_runs(session: Session, pipeline_id: str) -> int:
    return (
        session.scalar(
            select(func.count()).where(Run.pipeline_id == pipeline_id, Run.state.in_(RunState.ACTIVE))
        )
        or 0
    )


def delete_pipeline(session: Session, pipeline: Pipeline) -> None:
    # children first: SQLite does not enforce ON DELETE CASCADE unless asked to
    run_ids = select(Run.id).where(Run.pipeline_id == pipeline.id)
    # its runs' cache entries go with them: a hit would hand out outputs (and artifacts) of a
    # run that no longer exists, to another pipeline with the same task
    session.execute(delete(TaskCache).where(TaskCache.run_id.in_(run_ids)))
    session.execute(delete(Attempt).where(Attempt.run_id.in_(run_ids)))
    session.execute(delete(TaskInstance).where(TaskInstance.run_id.in_(run_ids)))
    session.execute(delete(Run).where(Run.pipeline_id == pipeline.id))
    for table in (Schedule, Webhook, AlertRoute, PipelineVersion):
        session.execute(delete(table).where(table.pipeline_id == pipeline.id))
    session.delete(pipeline)


def first_schedule(session: Session, pipeline_id: str) -> Schedule | None:
    return session.scalar(
        select(Schedule).where(Schedule.pipeline_id == pipeline_id).order_by(Schedule.created_at)
    )


def webhooks(session: Session, pipeline_id: str) -> Sequence[Webhook]:
    return session.scalars(
        select(Webhook).where(Webhook.pipeline_id == pipeline_id).order_by(Webhook.created_at)
    ).all()
