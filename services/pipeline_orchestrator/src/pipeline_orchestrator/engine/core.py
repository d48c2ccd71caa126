"""The engine: turns run state in the database into task attempts on an executor, and back.

One scheduling loop per orchestrator process. It wakes when something happens (a run was
created, an attempt finished, a run was cancelled) or every ``scheduler_interval_seconds``, and
in one database transaction per pass it:

1. records what the executor reported (attempt results: success, failure, retry with backoff);
2. renews the leases of attempts running in this process, and declares lost the attempts whose
   lease expired (their worker died): they are retried, they never stay RUNNING;
3. fires due schedules, starts queued runs within each pipeline's ``max_active_runs``;
4. advances every run that changed: trigger rules, templated inputs, the task cache, hpo trials,
   new attempts within the executor's free slots; and finishes runs whose tasks are all done.

Attempts are submitted only after the transaction commits, so a crash can lose a submission but
never record one that did not happen; an attempt that was recorded but whose worker never ran
it expires with its lease and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mlops_kit.db import Database
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine import hpo
from pipeline_orchestrator.engine.cron import MAX_CATCHUP, fires_between, next_fire
from pipeline_orchestrator.engine.rules import cache_key, decide, retry_delay
from pipeline_orchestrator.protocol import Executor, ExecutorEvent, TaskPayload, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.spec import PipelineSpec, TaskSpec, resolve_parameters
from pipeline_orchestrator.tables import (
    Attempt,
    AttemptState,
    Pipeline,
    PipelineVersion,
    Run,
    RunState,
    Schedule,
    TaskCache,
    TaskInstance,
    TaskState,
)
from pipeline_orchestrator.templating import MissingReference, render

log = logging.getLogger("mlops.orchestrator.engine")


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Definition:
    spec: PipelineSpec
    upstream: dict[str, list[str]]
    tasks: dict[str, TaskSpec]


class Definitions:
    """Parsed pipeline versions by (pipeline id, version); versions never change once written."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], Definition] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, pipeline_id: str, version: int) -> Definition:
        key = (pipeline_id, version)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        row = session.scalar(
            select(PipelineVersion).where(
                PipelineVersion.pipeline_id == pipeline_id, PipelineVersion.version == version
            )
        )
        if row is None:
            raise LookupError(f"pipeline {pipeline_id} has no version {version}")
        spec = PipelineSpec.model_validate(row.definition)
        definition = Definition(
            spec=spec,
            upstream={t.name: list(t.depends_on) for t in spec.tasks},
            tasks={t.name: t for t in spec.tasks},
        )
        with self._lock:
            self._cache[key] = definition
        return definition


@dataclass
class Budget:
    """Executor slots left in this pass (None: the executor's backend queues)."""

    free: int | None
    starved: bool = False

    def take(self, slots: int) -> bool:
        if self.free is None:
            return True
        if self.free <= 0:
            self.starved = True
            return False
        # a task wider than the whole pool still runs, alone
        self.free -= slots
        return True


@dataclass
class Pass:
    now: datetime
    budget: Budget
    submits: list[TaskPayload] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    next_wake: datetime | None = None

    def wake_at(self, when: datetime) -> None:
        if self.next_wake is None or when < self.next_wake:
            self.next_wake = when


def create_run(
    session: Session,
    pipeline: Pipeline,
    definition: dict[str, Any],
    version: int,
    parameters: dict[str, Any] | None,
    *,
    trigger: str = "manual",
    trigger_info: dict[str, Any] | None = None,
    logical_date: datetime | None = None,
    dedupe_key: str | None = None,
) -> Run:
    """A queued run with a pending task instance per task (parameters checked: 422 on error)."""
    spec = PipelineSpec.model_validate(definition)
    values = resolve_parameters(spec, parameters)
    run = Run(
        id=str(uuid.uuid4()),
        pipeline_id=pipeline.id,
        pipeline_name=pipeline.name,
        pipeline_version=version,
        state=RunState.QUEUED,
        parameters=values,
        trigger=trigger,
        trigger_info=trigger_info or {},
        logical_date=logical_date,
        dedupe_key=dedupe_key,
        created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    session.add_all(
        TaskInstance(run_id=run.id, name=t.name, kind=t.kind, state=TaskState.PENDING) for t in spec.tasks
    )
    return run


class Engine:
    def __init__(self, settings: OrchestratorSettings, db: Database, executor: Executor):
        self.settings = settings
        self.db = db
        self.executor = executor
        self.definitions = Definitions()
        self._events: queue.SimpleQueue[ExecutorEvent] = queue.SimpleQueue()
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_periodic = 0.0
        self._last_renewal = 0.0
        self._next_timer: datetime | None = None
        self.passes = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(self.recover)
        self.executor.start(self.on_event)
        self._task = asyncio.create_task(self._main(), name="orchestrator-engine")

    async def stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        await anyio.to_thread.run_sync(self.executor.stop)

    def recover(self) -> None:
        """At start-up: attempts a local executor was running died with the previous process;
        remote workers lived on, and get a full lease to report in before they count as lost."""
        now = utcnow()
        if self.executor.remote:
            with self.db.session(write=True) as session:
                session.execute(
                    update(Attempt)
                    .where(Attempt.state == AttemptState.RUNNING, Attempt.lease_expires_at < now)
                    .values(lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds))
                )
                runs = session.scalars(select(Run.id).where(Run.state.in_(RunState.ACTIVE))).all()
                session.commit()
            self.mark_dirty(runs)
            return
        with self.db.session(write=True) as session:
            lost = session.scalars(
                select(Attempt).where(Attempt.state == AttemptState.RUNNING, Attempt.executor == "local")
            ).all()
            for attempt in lost:
                self._lose(session, attempt, now, "the orchestrator restarted while this attempt ran")
            runs = session.scalars(select(Run.id).where(Run.state.in_(RunState.ACTIVE))).all()
            session.commit()
        if lost:
            log.warning("recovered %d attempt(s) interrupted by a restart; they will be retried", len(lost))
        self.mark_dirty(runs)

    # ---- signals from the API and executors ------------------------------------------------

    def mark_dirty(self, run_ids: Iterable[str]) -> None:
        with self._dirty_lock:
            self._dirty.update(run_ids)

    def wake(self, run_id: str | None = None) -> None:
        if run_id is not None:
            self.mark_dirty([run_id])
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def wake_many(self, run_ids: Iterable[str]) -> None:
        self.mark_dirty(run_ids)
        self.wake()

    def on_event(self, event: ExecutorEvent) -> None:
        self._events.put(event)
        self.wake()

    async def _main(self) -> None:
        assert self._wake is not None
        interval = self.settings.scheduler_interval_seconds
        while not self._stopping:
            timeout = interval
            if self._next_timer is not None:
                timeout = max(0.0, min(interval, (self._next_timer - utcnow()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            if self._stopping:
                break
            try:
                await anyio.to_thread.run_sync(self.tick)
            except Exception:
                log.exception("scheduling pass failed; retrying")
                await asyncio.sleep(min(interval, 1.0))

    # ---- one scheduling pass ---------------------------------------------------------------

    def tick(self) -> None:
        with self._tick_lock:
            self._tick()

    def _tick(self) -> None:
        self.passes += 1
        now = utcnow()
        current = Pass(now=now, budget=Budget(self.executor.free_slots()))
        periodic = time.monotonic() - self._last_periodic >= self.settings.scheduler_interval_seconds
        with self.db.session(write=True) as session:
            self._apply_events(session, current)
            if time.monotonic() - self._last_renewal >= self.settings.lease_seconds / 3:
                self._renew_leases(session, now)
                self._last_renewal = time.monotonic()
            if periodic:
                self._last_periodic = time.monotonic()
                self._expire_leases(session, now)
                self._fire_schedules(session, now)
                self.mark_dirty(
                    session.scalars(
                        select(Run.id).where(Run.state.in_((RunState.RUNNING, RunState.CANCELLING)))
                    ).all()
                )
            self._start_queued_runs(session, now)
            with self._dirty_lock:
                dirty, self._dirty = self._dirty, set()
            for run in self._runs_in_order(session, dirty):
                self._advance(session, run, current)
            session.commit()
        self._next_timer = current.next_wake
        if current.budget.starved:
            # runs left waiting for a free slot are looked at again as soon as one frees up
            self.mark_dirty(dirty)
        for attempt_id in current.cancels:
            try:
                self.executor.cancel(attempt_id)
            except Exception:
                log.exception("could not cancel attempt %s", attempt_id)
        for payload in current.submits:
            try:
                self.executor.submit(payload)
            except Exception as exc:
                log.exception("could not submit attempt %s", payload.attempt_id)
                self.on_event(
                    ExecutorEvent(
                        "finished",
                        payload.attempt_id,
                        result=TaskResult(ok=False, error=f"the executor refused the attempt: {exc}"),
                    )
                )

    def _runs_in_order(self, session: Session, ids: set[str]) -> list[Run]:
        if not ids:
            return []
        runs: list[Run] = []
        id_list = list(ids)
        for start in range(0, len(id_list), 500):
            runs.extend(session.scalars(select(Run).where(Run.id.in_(id_list[start : start + 500]))).all())
        runs.sort(key=lambda r: r.created_at)
        return runs

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
            return run.id
        timed_out = bool(result.error and result.error.startswith("timed out"))
        attempt.state = AttemptState.TIMED_OUT if timed_out else AttemptState.FAILED
        if run.state == RunState.CANCELLING:
            attempt.state = AttemptState.CANCELLED
            ti.state = TaskState.CANCELLED
            ti.finished_at = now
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
        if run.state == RunState.CANCELLING:
            ti.state = TaskState.CANCELLED
            ti.finished_at = now
            return
        self._fail_or_retry(ti, self._task_spec(session, run, ti), why, now, lost=True)

    # ---- schedules and queued runs ---------------------------------------------------------

    def _fire_schedules(self, session: Session, now: datetime) -> None:
        due = session.scalars(
            select(Schedule).where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        ).all()
        for schedule in due:
            assert schedule.next_run_at is not None
            if schedule.catchup:
                fires = fires_between(
                    schedule.cron, schedule.timezone, schedule.next_run_at, now, MAX_CATCHUP
                )
            else:
                # catch-up off: only the most recent missed fire time runs
                fires = [_latest_fire(schedule, now)]
            pipeline = session.get(Pipeline, schedule.pipeline_id)
            if pipeline is None:
                continue
            version = session.scalar(
                select(PipelineVersion).where(
                    PipelineVersion.pipeline_id == pipeline.id,
                    PipelineVersion.version == pipeline.latest_version,
                )
            )
            assert version is not None
            for fire in fires:
                key = f"schedule:{schedule.id}:{fire.isoformat()}"
                if session.scalar(select(Run.id).where(Run.dedupe_key == key)):
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

    # ---- advancing a run -------------------------------------------------------------------

    def _advance(self, session: Session, run: Run, current: Pass) -> None:
        if run.state not in (RunState.RUNNING, RunState.CANCELLING):
            return
        definition = self.definitions.get(session, run.pipeline_id, run.pipeline_version)
        tis = list(session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.id)).all())
        if run.state == RunState.CANCELLING:
            self._cancel(session, run, tis, current)
            return
        by_name = {ti.name: ti for ti in tis}
        changed = True
        while changed:
            changed = False
            for ti in tis:
                if ti.parent is not None:
                    continue
                task = definition.tasks[ti.name]
                if ti.state == TaskState.RUNNING and task.kind == "hpo":
                    changed |= self._advance_hpo(session, run, ti, task, tis, current)
                    continue
                if ti.state not in (TaskState.PENDING, TaskState.UP_FOR_RETRY):
                    continue
                if (
                    ti.state == TaskState.UP_FOR_RETRY
                    and ti.next_attempt_at
                    and ti.next_attempt_at > current.now
                ):
                    current.wake_at(ti.next_attempt_at)
                    continue
                decision = decide(task.trigger_rule, (by_name[d].state for d in definition.upstream[ti.name]))
                if decision == "wait":
                    continue
                if decision in ("skip", "upstream_failed"):
                    ti.state = TaskState.SKIPPED if decision == "skip" else TaskState.UPSTREAM_FAILED
                    ti.finished_at = current.now
                    changed = True
                    continue
                changed |= self._start_task(session, run, ti, task, by_name, current)
            # hpo trials are dispatched like tasks with no upstream
            for ti in list(tis):
                if ti.parent is None or ti.state not in (TaskState.PENDING, TaskState.UP_FOR_RETRY):
                    continue
                if (
                    ti.state == TaskState.UP_FOR_RETRY
                    and ti.next_attempt_at
                    and ti.next_attempt_at > current.now
                ):
                    current.wake_at(ti.next_attempt_at)
                    continue
                parent_task = definition.tasks[ti.parent]
                if not current.budget.take(1):
                    break
                data = ti.data or {}
                spec = {
                    "callable": parent_task.callable,
                    "params": data.get("params", {}),
                    "inputs": data.get("inputs", {}),
                    "metric": parent_task.metric,
                    "direction": parent_task.direction,
                    "experiment": parent_task.experiment,
                    "parent_run_id": data.get("parent_run_id"),
                    "trial_number": data.get("number"),
                }
                self._new_attempt(session, run, ti, parent_task, spec, current, kind="trial")
        self._maybe_finish(run, tis, current.now)

    def _scope(self, run: Run, by_name: dict[str, TaskInstance]) -> dict[str, Any]:
        return {
            "params": run.parameters,
            "tasks": {
                name: ti.outputs or {}
                for name, ti in by_name.items()
                if ti.parent is None and ti.state in TaskState.OK
            },
            "run": {
                "id": run.id,
                "pipeline": run.pipeline_name,
                "pipeline_version": run.pipeline_version,
                "logical_date": run.logical_date.isoformat() if run.logical_date else None,
                "trigger": run.trigger,
            },
        }

    def _start_task(
        self,
        session: Session,
        run: Run,
        ti: TaskInstance,
        task: TaskSpec,
        by_name: dict[str, TaskInstance],
        current: Pass,
    ) -> bool:
        """Returns True when the task reached a final state without an attempt (cache, bad input)."""
        try:
            resolved = render(task.templated(), self._scope(run, by_name))
        except MissingReference as exc:
            ti.state = TaskState.FAILED
            ti.error = f"cannot resolve the inputs of {task.name!r}: {exc}"
            ti.finished_at = current.now
            return True
        key = None
        if task.cache_enabled:
            key = cache_key(task, resolved)
            hit = session.get(TaskCache, key)
            if hit is not None:
                ti.state = TaskState.CACHED
                ti.outputs = hit.outputs
                ti.cached_from = hit.run_id
                ti.cache_key = key
                ti.started_at = ti.finished_at = current.now
                ti.error = None
                return True
        ti.cache_key = key
        if task.kind == "hpo":
            self._start_hpo(run, ti, task, resolved, current)
            return True
        if not current.budget.take(task.cpu_slots):
            return False
        spec = task.model_dump(mode="json", exclude={"depends_on", "description"})
        spec.update(resolved)
        self._new_attempt(session, run, ti, task, spec, current, kind=task.kind)
        return False

    def _new_attempt(
        self,
        session: Session,
        run: Run,
        ti: TaskInstance,
        task: TaskSpec,
        spec: dict[str, Any],
        current: Pass,
        *,
        kind: str,
    ) -> None:
        ti.try_number += 1
        ti.state = TaskState.RUNNING
        ti.started_at = ti.started_at or current.now
        ti.next_attempt_at = None
        attempt_id = str(uuid.uuid4())
        token = secrets.token_urlsafe(24) if self.executor.remote else None
        log_path = self.settings.log_dir / run.id / _safe(ti.name) / f"{ti.try_number}.log"
        session.add(
            Attempt(
                id=attempt_id,
                task_instance_id=ti.id,
                run_id=run.id,
                number=ti.try_number,
                state=AttemptState.RUNNING,
                executor=self.executor.name,
                token_hash=hash_token(token) if token else None,
                # a remote attempt may wait in the broker's queue: its lease starts when a worker
                # reports it started
                lease_expires_at=current.now + timedelta(seconds=self._first_lease()),
                started_at=current.now,
                log_path=str(log_path),
            )
        )
        current.submits.append(
            TaskPayload(
                attempt_id=attempt_id,
                run_id=run.id,
                pipeline=run.pipeline_name,
                task=ti.name,
                attempt=ti.try_number,
                kind=kind,
                spec=spec,
                timeout_seconds=task.timeout_seconds,
                resources=dict(task.resources),
                artifact_prefix=f"runs/{run.id}/{_safe(ti.name)}/{ti.try_number}/",
                log_path=None if self.executor.remote else str(log_path),
                callback_url=self.settings.callback_url if self.executor.remote else None,
                callback_token=token,
                env={
                    "MLOPS_PIPELINE_RUN_ID": run.id,
                    "MLOPS_PIPELINE_NAME": run.pipeline_name,
                    "MLOPS_PIPELINE_TASK": ti.name,
                },
            )
        )

    def _first_lease(self) -> float:
        if self.executor.remote:
            return self.settings.remote_queue_seconds
        return self.settings.lease_seconds

    # ---- hyper-parameter search ------------------------------------------------------------

    def _start_hpo(
        self, run: Run, ti: TaskInstance, task: TaskSpec, resolved: dict[str, Any], current: Pass
    ) -> None:
        parent_run_id = _start_parent_run(task, run, ti) if _tracking_enabled(task) else None
        ti.state = TaskState.RUNNING
        ti.started_at = current.now
        ti.data = {"inputs": resolved.get("inputs", {}), "parent_run_id": parent_run_id}
        self.mark_dirty([run.id])

    def _advance_hpo(
        self,
        session: Session,
        run: Run,
        ti: TaskInstance,
        task: TaskSpec,
        tis: list[TaskInstance],
        current: Pass,
    ) -> bool:
        trials = [t for t in tis if t.parent == ti.name]
        done = [t for t in trials if t.state in TaskState.DONE]
        active = len(trials) - len(done)
        data = ti.data or {}
        if len(trials) < task.n_trials and active < task.parallelism:
            count = min(task.parallelism - active, task.n_trials - len(trials))
            try:
                asked = hpo.ask(task, run.id, trials, count)
            except Exception as exc:
                ti.state = TaskState.FAILED
                ti.error = f"the search could not sample parameters: {exc}"
                ti.finished_at = current.now
                return True
            for params in asked:
                number = len(trials)
                child = TaskInstance(
                    run_id=run.id,
                    name=hpo.trial_name(ti.name, number),
                    parent=ti.name,
                    kind="trial",
                    state=TaskState.PENDING,
                    data={
                        "params": params,
                        "number": number,
                        "inputs": data.get("inputs", {}),
                        "parent_run_id": data.get("parent_run_id"),
                    },
                )
                session.add(child)
                trials.append(child)
                tis.append(child)
            session.flush()
            return True
        if len(trials) >= task.n_trials and not active:
            summary = hpo.summarize(task, trials, data.get("parent_run_id"))
            ti.finished_at = current.now
            if summary is None:
                ti.state = TaskState.FAILED
                ti.error = f"all {len(trials)} trials failed"
                last_error = next((t.error for t in reversed(trials) if t.error), None)
                if last_error:
                    ti.error += f"; the last one: {last_error[-2000:]}"
            else:
                ti.state = TaskState.SUCCEEDED
                ti.outputs = summary
                if ti.cache_key:
                    session.merge(
                        TaskCache(cache_key=ti.cache_key, outputs=summary, run_id=run.id, task=ti.name)
                    )
            if data.get("parent_run_id"):
                _end_parent_run(data["parent_run_id"], summary)
            return True
        return False

    # ---- finishing and cancelling ----------------------------------------------------------

    def _maybe_finish(self, run: Run, tis: list[TaskInstance], now: datetime) -> None:
        top = [ti for ti in tis if ti.parent is None]
        if any(ti.state not in TaskState.DONE for ti in top):
            return
        failed = [ti for ti in top if ti.state == TaskState.FAILED]
        run.state = (
            RunState.FAILED if failed or any(ti.state in TaskState.BAD for ti in top) else RunState.SUCCEEDED
        )
        run.finished_at = now
        if failed:
            run.error = f"task(s) failed: {', '.join(ti.name for ti in failed)}"

    def _cancel(self, session: Session, run: Run, tis: list[TaskInstance], current: Pass) -> None:
        running = {ti.id: ti for ti in tis if ti.state == TaskState.RUNNING}
        if running:
            attempts = session.scalars(
                select(Attempt).where(
                    Attempt.task_instance_id.in_(list(running)), Attempt.state == AttemptState.RUNNING
                )
            ).all()
            for attempt in attempts:
                attempt.state = AttemptState.CANCELLED
                attempt.finished_at = current.now
                attempt.error = "cancelled"
                current.cancels.append(attempt.id)
        for ti in tis:
            if ti.state not in TaskState.DONE:
                ti.state = TaskState.CANCELLED
                ti.finished_at = current.now
        run.state = RunState.CANCELLED
        run.finished_at = current.now


def _latest_fire(schedule: Schedule, now: datetime) -> datetime:
    assert schedule.next_run_at is not None
    fires = fires_between(schedule.cron, schedule.timezone, schedule.next_run_at, now, limit=MAX_CATCHUP)
    if len(fires) == MAX_CATCHUP:  # far behind: find the latest fire before now directly
        from croniter import croniter

        from pipeline_orchestrator.engine.cron import zone

        prev: datetime = croniter(schedule.cron, now.astimezone(zone(schedule.timezone))).get_prev(datetime)
        return prev.astimezone(UTC)
    return fires[-1] if fires else schedule.next_run_at


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.[]" else "_" for c in name)


def _tracking_enabled(task: TaskSpec) -> bool:
    """The same rule the trials follow: an experiment named, or experiment tracking configured."""
    from pipeline_orchestrator.worker.platform_steps import tracking_enabled

    return bool(tracking_enabled(task.experiment))


def _start_parent_run(task: TaskSpec, run: Run, ti: TaskInstance) -> str | None:
    """The hpo task's parent run in experiment tracking; the search goes on without it."""
    try:
        from pipeline_orchestrator.worker.platform_steps import start_parent_run

        return start_parent_run(
            task.experiment or run.pipeline_name,
            f"{run.pipeline_name}/{ti.name}",
            {"pipeline_run_id": run.id, "n_trials": task.n_trials, "metric": task.metric},
        )
    except Exception as exc:
        log.warning("hpo %s: no parent run in experiment tracking (%s)", ti.name, exc)
        return None


def _end_parent_run(run_id: str, summary: dict[str, Any] | None) -> None:
    try:
        from pipeline_orchestrator.worker.platform_steps import end_parent_run

        end_parent_run(run_id, "FINISHED" if summary else "FAILED", summary)
    except Exception as exc:
        log.warning("hpo: could not close parent run %s (%s)", run_id, exc)


def log_file(settings: OrchestratorSettings, attempt: Attempt) -> Path | None:
    return Path(attempt.log_path) if attempt.log_path else None
