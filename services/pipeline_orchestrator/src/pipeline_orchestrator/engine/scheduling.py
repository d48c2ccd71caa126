"""Schedules that fire runs, and queued runs started within each pipeline's max_active_runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.cron import MAX_CATCHUP, fires_between, next_fire
from pipeline_orchestrator.engine.state import create_run
from pipeline_orchestrator.tables import Pipeline, Run, RunState, Schedule
from pipeline_orchestrator.triggers import repository as triggers

log = logging.getLogger("mlops.orchestrator.engine")


class SchedulingMixin:
    def mark_dirty(self, run_ids: Iterable[str]) -> None:
        raise NotImplementedError

    # ---- schedules and queued runs ---------------------------------------------------------

    def _fire_schedules(self, session: Session, now: datetime) -> None:
        for schedule in triggers.due_schedules(session, now):
            assert schedule.next_run_at is not None
            if schedule.catchup:
                fires = fires_between(
                    schedule.cron, schedule.timezone, schedule.next_run_at, now, MAX_CATCHUP
                )
            else:
                # catch-up off: only the most recent missed fire time runs
                fires = [_latest_fire(schedule, now)]
            pipeline = triggers.get_pipeline(session, schedule.pipeline_id)
            if pipeline is None:
                continue
            version = triggers.pipeline_version(session, pipeline.id, pipeline.latest_version)
            assert version is not None
            for fire in fires:
                key = f"schedule:{schedule.id}:{fire.isoformat()}"
                if triggers.run_with_dedupe_key(session, key):
                    continue
                try:
                    create_run(
                        session,
                        pipeline,
                        version.definition,
                        version.version,
                        schedule.parameters,
                        trigger="schedule",
                        trigger_info={"schedule_id": schedule.id, "cron": schedule.cron},
                        logical_date=fire,
                        timezone=schedule.timezone,
                        dedupe_key=key,
                    )
                except Exception as exc:  # the pipeline changed under the schedule's parameters
                    log.error("schedule %s could not start a run: %s", schedule.id, exc)
                schedule.last_run_at = fire
            schedule.next_run_at = next_fire(schedule.cron, schedule.timezone, now)

    def _start_queued_runs(self, session: Session, now: datetime) -> None:
        queued = session.scalars(
            select(Run).where(Run.state == RunState.QUEUED).order_by(Run.created_at).limit(5000)
        ).all()
        if not queued:
            return
        pipeline_ids = {r.pipeline_id for r in queued}
        active = dict(
            session.execute(
                select(Run.pipeline_id, func.count())
                .where(
                    Run.pipeline_id.in_(pipeline_ids),
                    Run.state.in_((RunState.RUNNING, RunState.CANCELLING)),
                )
                .group_by(Run.pipeline_id)
            ).all()
        )
        limits = dict(
            session.execute(
                select(Pipeline.id, Pipeline.max_active_runs).where(Pipeline.id.in_(pipeline_ids))
            ).all()
        )
        for run in queued:
            running = active.get(run.pipeline_id, 0)
            if running >= limits.get(run.pipeline_id, 16):
                continue
            active[run.pipeline_id] = running + 1
            run.state = RunState.RUNNING
            run.started_at = now
            self.mark_dirty([run.id])


def _latest_fire(schedule: Schedule, now: datetime) -> datetime:
    assert schedule.next_run_at is not None
    fires = fires_between(schedule.cron, schedule.timezone, schedule.next_run_at, now, limit=MAX_CATCHUP)
    if len(fires) == MAX_CATCHUP:  # far behind: find the latest fire before now directly
        from croniter import croniter

        from pipeline_orchestrator.engine.cron import zone

        prev: datetime = croniter(schedule.cron, now.astimezone(zone(schedule.timezone))).get_prev(datetime)
        return prev.astimezone(UTC)
    return fires[-1] if fires else schedule.next_run_at
