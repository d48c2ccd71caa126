"""Recording attempt outcomes: results, retries with backoff, leases and lost workers."""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterable
from datetime import datetime, timedelta

from mlops_kit.db import Database
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.metrics import EngineMetrics
from pipeline_orchestrator.engine.rules import retry_delay
from pipeline_orchestrator.engine.state import Definitions, Pass, utcnow
from pipeline_orchestrator.locks import lock_engine
from pipeline_orchestrator.protocol import Executor, ExecutorEvent, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.spec import TaskSpec
from pipeline_orchestrator.tables import (
    Attempt,
    AttemptState,
    Run,
    RunState,
    TaskCache,
    TaskInstance,
    TaskState,
)

log = logging.getLogger("mlops.orchestrator.engine")


class RecordsMixin:
    settings: OrchestratorSettings
    db: Database
    executor: Executor
    definitions: Definitions
    metrics: EngineMetrics
    _events: queue.SimpleQueue[ExecutorEvent]

    def mark_dirty(self, run_ids: Iterable[str]) -> None:
        raise NotImplementedError

    # ---- executor events -------------------------------------------------------------------

    def _apply_events(self, session: Session, current: Pass) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if event.kind == "finished" and event.result is not None:
                run_id = self.record_result(session, event.attempt_id, event.result, current.now)
                if run_id:
                    self.mark_dirty([run_id])
            elif event.kind == "started" and event.worker:
                session.execute(
                    update(Attempt)
                    .where(Attempt.id == event.attempt_id, Attempt.state == AttemptState.RUNNING)
                    .values(worker=event.worker)
                )

    def record_result(
        self, session: Session, attempt_id: str, result: TaskResult, now: datetime
    ) -> str | None:
        """Record a finished attempt; returns its run id, or None if the attempt is not current
        (already finished, cancelled or declared lost): a late report never completes it twice."""
        lock_engine(session)
        attempt = session.get(Attempt, attempt_id, with_for_update=not self.db.is_sqlite)
        if attempt is None or attempt.state != AttemptState.RUNNING:
            return None
        ti = session.get(TaskInstance, attempt.task_instance_id)
        run = session.get(Run, attempt.run_id)
        if ti is None or run is None:
            return None
        attempt.finished_at = now
        attempt.exit_status = result.exit_status
        attempt.error = result.error
        attempt.outputs = result.outputs if result.ok else None
        if result.ok:
            attempt.state = AttemptState.SUCCEEDED
            ti.state = TaskState.SUCCEEDED
            ti.outputs = result.outputs
            ti.error = None
            ti.finished_at = now
            if ti.cache_key:
                session.merge(
                    TaskCache(
                        cache_key=ti.cache_key,
                        outputs=result.outputs,
                        run_id=run.id,
                        task=ti.name,
                        created_at=now,
                    )
                )
            self.metrics.attempt_finished(ti.kind, attempt.state, _seconds(attempt, now))
            return run.id
        timed_out = bool(result.error and result.error.startswith("timed out"))
        attempt.state = AttemptState.TIMED_OUT if timed_out else AttemptState.FAILED
        if run.state == RunState.CANCELLING:
            attempt.state = AttemptState.CANCELLED
            ti.state = TaskState.CANCELLED
            ti.finished_at = now
        self.metrics.attempt_finished(ti.kind, attempt.state, _seconds(attempt, now))
        if attempt.state == AttemptState.CANCELLED:
            return run.id
        task = self._task_spec(session, run, ti)
        self._fail_or_retry(ti, task, result.error or "failed", now)
        return run.id

    def _task_spec(self, session: Session, run: Run, ti: TaskInstance) -> TaskSpec:
        definition = self.definitions.get(session, run.pipeline_id, run.pipeline_version)
        return definition.tasks[ti.parent or ti.name]

    def _fail_or_retry(
        self, ti: TaskInstance, task: TaskSpec, error: str, now: datetime, *, lost: bool = False
    ) -> None:
        ti.error = error
        if lost:
            ti.lost_count += 1
            if ti.lost_count <= self.settings.max_lost_retries:
                ti.state = TaskState.UP_FOR_RETRY
                ti.next_attempt_at = now
                return
        failures = ti.try_number - min(ti.lost_count, self.settings.max_lost_retries)
        if failures <= task.retries:
            ti.state = TaskState.UP_FOR_RETRY
            ti.next_attempt_at = now + timedelta(seconds=retry_delay(task, failures))
            return
        ti.state = TaskState.FAILED
        ti.finished_at = now

    # ---- leases ----------------------------------------------------------------------------

    def _renew_leases(self, session: Session, now: datetime) -> None:
        running = list(self.executor.running())
        expires = now + timedelta(seconds=self.settings.lease_seconds)
        for start in range(0, len(running), 500):
            session.execute(
                update(Attempt)
                .where(Attempt.id.in_(running[start : start + 500]), Attempt.state == AttemptState.RUNNING)
                .values(lease_expires_at=expires)
            )

    def renew_lease(self, session: Session, attempt_id: str, worker: str | None) -> bool:
        """A remote worker's heartbeat: True while the attempt should go on."""
        attempt = session.get(Attempt, attempt_id)
        if attempt is None or attempt.state != AttemptState.RUNNING:
            return False
        run = session.get(Run, attempt.run_id)
        if run is None or run.state == RunState.CANCELLING:
            return False
        attempt.lease_expires_at = utcnow() + timedelta(seconds=self.settings.lease_seconds)
        if worker and attempt.worker != worker:
            attempt.worker = worker[:200]
        return True

    def _expire_leases(self, session: Session, now: datetime) -> None:
        local = self.executor.running()
        expired = session.scalars(
            select(Attempt).where(Attempt.state == AttemptState.RUNNING, Attempt.lease_expires_at < now)
        ).all()
        for attempt in expired:
            if attempt.id in local:
                continue
            self._lose(
                session, attempt, now, f"worker {attempt.worker or '?'} stopped reporting (lease expired)"
            )
            self.mark_dirty([attempt.run_id])

    def _lose(self, session: Session, attempt: Attempt, now: datetime, why: str) -> None:
        attempt.state = AttemptState.LOST
        attempt.finished_at = now
        attempt.error = why
        ti = session.get(TaskInstance, attempt.task_instance_id)
        run = session.get(Run, attempt.run_id)
        if ti is None or run is None or ti.state != TaskState.RUNNING:
            return
        self.metrics.attempt_finished(ti.kind, AttemptState.LOST, _seconds(attempt, now))
        if run.state == RunState.CANCELLING:
            ti.state = TaskState.CANCELLED
            ti.finished_at = now
            return
        self._fail_or_retry(ti, self._task_spec(session, run, ti), why, now, lost=True)


def _seconds(attempt: Attempt, now: datetime) -> float | None:
    return (now - attempt.started_at).total_seconds() if attempt.started_at else None
