"""Every statement on runs, their task instances and attempts. Flushes, never commits: the
request's session commits once."""

from __future__ import annotations

from collections.abc import Sequence

from mlops_kit.db import count_rows
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pipeline_orchestrator.locks import lock_engine
from pipeline_orchestrator.tables import Attempt, Run, TaskCache, TaskInstance


def lock(session: Session) -> None:
    lock_engine(session)


def flush(session: Session) -> None:
    session.flush()


def get(session: Session, run_id: str) -> Run | None:
    return session.get(Run, run_id)


def ids_by_prefix(session: Session, prefix: str, limit: int) -> Sequence[str]:
    """Run ids starting with ``prefix`` (lower-case hex and dashes: no LIKE wildcard in it)."""
    return session.scalars(
        select(Run.id).where(Run.id.like(f"{prefix}%")).order_by(Run.id).limit(limit)
    ).all()


def page(
    session: Session,
    pipeline_id: str | None,
    state: str | None,
    trigger: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Run], int]:
    query = select(Run)
    if pipeline_id:
        query = query.where(Run.pipeline_id == pipeline_id)
    if state:
        query = query.where(Run.state == state)
    if trigger:
        query = query.where(Run.trigger == trigger)
    total = count_rows(session, query)
    runs = session.scalars(query.order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)).all()
    return runs, total


def top_task_states(session: Session, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per run, how many of its top-level tasks are in each state."""
    rows = session.execute(
        select(TaskInstance.run_id, TaskInstance.state, func.count())
        .where(TaskInstance.run_id.in_(run_ids), TaskInstance.parent.is_(None))
        .group_by(TaskInstance.run_id, TaskInstance.state)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for run_id, task_state, n in rows:
        counts.setdefault(run_id, {})[task_state] = n
    return counts


def task_instances(session: Session, run_id: str, *, ordered: bool = False) -> Sequence[TaskInstance]:
    query = select(TaskInstance).where(TaskInstance.run_id == run_id)
    return session.scalars(query.order_by(TaskInstance.id) if ordered else query).all()


def attempts(session: Session, run_id: str) -> Sequence[Attempt]:
    return session.scalars(select(Attempt).where(Attempt.run_id == run_id).order_by(Attempt.number)).all()


def delete_trial(session: Session, ti: TaskInstance) -> None:
    """A search's trial with its attempts."""
    session.execute(delete(Attempt).where(Attempt.task_instance_id == ti.id))
    session.delete(ti)


def find_task(session: Session, run_id: str, name: str) -> TaskInstance | None:
    return session.scalar(
        select(TaskInstance).where(TaskInstance.run_id == run_id, TaskInstance.name == name)
    )


def find_attempt(session: Session, task_instance_id: int, number: int | None) -> Attempt | None:
    """Attempt ``number`` of the task instance, or its latest."""
    query = select(Attempt).where(Attempt.task_instance_id == task_instance_id)
    query = query.where(Attempt.number == number) if number else query.order_by(Attempt.number.desc())
    return session.scalar(query.limit(1))


def cache_entry(session: Session, cache_key: str) -> TaskCache | None:
    return session.get(TaskCache, cache_key)


def get_attempt(session: Session, attempt_id: str) -> Attempt | None:
    return session.get(Attempt, attempt_id)
