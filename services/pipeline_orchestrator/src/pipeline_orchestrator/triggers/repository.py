"""Every query of the triggers domain. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline_orchestrator import locks
from pipeline_orchestrator.tables import (
    AlertRoute,
    Pipeline,
    PipelineVersion,
    Run,
    RunState,
    Schedule,
    Webhook,
)

ALERT_RUNS = "alert-runs"
MAX_ID = 36  # ids are uuids; a longer path value is no id, and is not looked up


def lock_engine(session: Session) -> None:
    """The engine's lock: a schedule changes under it, never during a scheduling pass."""
    locks.lock_engine(session)


def lock_alert_runs(session: Session) -> None:
    """An AlertManager post's lock: its cool-down checks and the runs they allow, one post at a time."""
    locks.lock_key(session, ALERT_RUNS)


# pipelines a trigger starts ------------------------------------------------------------------


def pipeline_by_name(session: Session, name: str) -> Pipeline | None:
    return session.scalar(select(Pipeline).where(Pipeline.name == name))


def get_pipeline(session: Session, pipeline_id: str) -> Pipeline | None:
    return session.get(Pipeline, pipeline_id)


def pipeline_name(session: Session, pipeline_id: str) -> str | None:
    return session.scalar(select(Pipeline.name).where(Pipeline.id == pipeline_id))


def pipeline_version(session: Session, pipeline_id: str, number: int) -> PipelineVersion | None:
    return session.scalar(
        select(PipelineVersion).where(
            PipelineVersion.pipeline_id == pipeline_id, PipelineVersion.version == number
        )
    )


def active_alert_run(session: Session, pipeline_id: str) -> str | None:
    """An AlertManager-started run of the pipeline that has not finished, if any."""
    return session.scalar(
        select(Run.id)
        .where(Run.pipeline_id == pipeline_id, Run.trigger == "alertmanager", Run.state.in_(RunState.ACTIVE))
        .limit(1)
    )


# schedules -----------------------------------------------------------------------------------


def due_schedules(session: Session, now: datetime) -> Sequence[Schedule]:
    """Enabled schedules whose next fire time has come (the engine's scheduling pass fires them)."""
    return session.scalars(
        select(Schedule).where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
    ).all()


def run_with_dedupe_key(session: Session, dedupe_key: str) -> str | None:
    """The run a schedule's fire time already started, if any."""
    return session.scalar(select(Run.id).where(Run.dedupe_key == dedupe_key))


def get_schedule(session: Session, schedule_id: str) -> Schedule | None:
    return session.get(Schedule, schedule_id) if len(schedule_id) <= MAX_ID else None


def list_schedules(
    session: Session, pipeline_id: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Schedule]]:
    query = select(Schedule)
    if pipeline_id is not None:
        query = query.where(Schedule.pipeline_id == pipeline_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Schedule.created_at).limit(limit).offset(offset)).all()
    return total, rows


def delete_schedule(session: Session, schedule: Schedule) -> None:
    session.delete(schedule)
    session.flush()


# webhooks ------------------------------------------------------------------------------------


def webhook_by_token_hash(session: Session, token_hash: str) -> Webhook | None:
    return session.scalar(select(Webhook).where(Webhook.token_hash == token_hash))


def get_webhook(session: Session, webhook_id: str) -> Webhook | None:
    return session.get(Webhook, webhook_id) if len(webhook_id) <= MAX_ID else None


def delete_webhook(session: Session, webhook: Webhook) -> None:
    session.delete(webhook)
    session.flush()


# alert routes --------------------------------------------------------------------------------


def add_alert_route(session: Session, route: AlertRoute) -> None:
    session.add(route)
    session.flush()


def get_alert_route(session: Session, route_id: str) -> AlertRoute | None:
    return session.get(AlertRoute, route_id) if len(route_id) <= MAX_ID else None


def list_alert_routes(session: Session, limit: int, offset: int) -> tuple[int, Sequence[AlertRoute]]:
    total = session.scalar(select(func.count()).select_from(AlertRoute)) or 0
    rows = session.scalars(
        select(AlertRoute).order_by(AlertRoute.created_at).limit(limit).offset(offset)
    ).all()
    return total, rows


def all_alert_routes(session: Session) -> Sequence[AlertRoute]:
    return session.scalars(select(AlertRoute).order_by(AlertRoute.created_at)).all()


def delete_alert_route(session: Session, route: AlertRoute) -> None:
    session.delete(route)
    session.flush()
