"""Every query of the retraining domain. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from pipeline_orchestrator.locks import lock_key
from pipeline_orchestrator.retraining.tables import RetrainingPolicy, RetrainingTrigger
from pipeline_orchestrator.tables import Pipeline, PipelineVersion, Run, RunState, TaskInstance

GATE = "retraining"


def lock_model(session: Session, model: str) -> None:
    """The gate's lock: one decision (and one policy change) per model at a time, across replicas."""
    lock_key(session, GATE, model)


def get_policy(session: Session, model: str) -> RetrainingPolicy | None:
    return session.get(RetrainingPolicy, model, populate_existing=True)


def add_policy(session: Session, policy: RetrainingPolicy) -> None:
    session.add(policy)
    session.flush()


def delete_policy(session: Session, policy: RetrainingPolicy) -> None:
    session.delete(policy)
    session.flush()


def list_policies(session: Session, limit: int, offset: int) -> tuple[int, Sequence[RetrainingPolicy]]:
    total = session.scalar(select(func.count()).select_from(RetrainingPolicy)) or 0
    rows = session.scalars(
        select(RetrainingPolicy).order_by(RetrainingPolicy.model).limit(limit).offset(offset)
    ).all()
    return total, rows


def due_models(session: Session, now: datetime, limit: int) -> Sequence[str]:
    """Enabled policies whose evaluation or schedule is due and whose lease is free."""
    due = or_(RetrainingPolicy.next_evaluation_at <= now, RetrainingPolicy.next_scheduled_at <= now)
    free = or_(RetrainingPolicy.lease_until.is_(None), RetrainingPolicy.lease_until < now)
    query = select(RetrainingPolicy.model).where(RetrainingPolicy.enabled.is_(True), due, free)
    return session.scalars(query.order_by(RetrainingPolicy.next_evaluation_at).limit(limit)).all()


def claim(session: Session, model: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take the model's evaluation lease if it is free: of two replicas, one changes the row."""
    result = session.execute(
        update(RetrainingPolicy)
        .where(
            RetrainingPolicy.model == model,
            or_(RetrainingPolicy.lease_until.is_(None), RetrainingPolicy.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def release(session: Session, model: str, owner: str, next_evaluation_at: datetime | None) -> None:
    values: dict[str, object] = {"lease_owner": None, "lease_until": None}
    if next_evaluation_at is not None:
        values["next_evaluation_at"] = next_evaluation_at
    session.execute(
        update(RetrainingPolicy)
        .where(RetrainingPolicy.model == model, RetrainingPolicy.lease_owner == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def pipeline_by_name(session: Session, name: str) -> tuple[Pipeline, PipelineVersion] | None:
    pipeline = session.scalar(select(Pipeline).where(Pipeline.name == name))
    if pipeline is None:
        return None
    version = session.scalar(
        select(PipelineVersion).where(
            PipelineVersion.pipeline_id == pipeline.id, PipelineVersion.version == pipeline.latest_version
        )
    )
    return (pipeline, version) if version is not None else None


def active_run(session: Session, model: str) -> str | None:
    """A run some decision of this model started that has not ended."""
    return session.scalar(
        select(Run.id)
        .join(RetrainingTrigger, RetrainingTrigger.run_id == Run.id)
        .where(RetrainingTrigger.model == model, Run.state.in_(RunState.ACTIVE))
        .limit(1)
    )


def add_trigger(session: Session, trigger: RetrainingTrigger) -> None:
    session.add(trigger)
    session.flush()


def list_triggers(
    session: Session, model: str | None, limit: int, offset: int
) -> tuple[int, Sequence[RetrainingTrigger]]:
    query = select(RetrainingTrigger)
    if model is not None:
        query = query.where(RetrainingTrigger.model == model)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(RetrainingTrigger.at.desc(), RetrainingTrigger.id).limit(limit).offset(offset)
    ).all()
    return total, rows


def run_states(session: Session, run_ids: Sequence[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    return {
        run_id: state
        for run_id, state in session.execute(select(Run.id, Run.state).where(Run.id.in_(run_ids)))
    }


def unsettled_triggers(session: Session, limit: int) -> Sequence[RetrainingTrigger]:
    """Decisions that started a run whose outcome is not recorded yet."""
    return session.scalars(
        select(RetrainingTrigger)
        .where(RetrainingTrigger.run_id.is_not(None), RetrainingTrigger.produced.is_(None))
        .where(or_(RetrainingTrigger.run_state.is_(None), RetrainingTrigger.run_state.in_(RunState.ACTIVE)))
        .limit(limit)
    ).all()


def task_outputs(session: Session, run_id: str, task: str) -> dict[str, object] | None:
    return session.scalar(
        select(TaskInstance.outputs).where(TaskInstance.run_id == run_id, TaskInstance.name == task)
    )
