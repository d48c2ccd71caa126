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
import logging
import queue
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import anyio
from mlops_kit.db import Database
from mlops_kit.observability import Metrics
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.advance import AdvanceMixin
from pipeline_orchestrator.engine.metrics import EngineMetrics
from pipeline_orchestrator.engine.records import RecordsMixin
from pipeline_orchestrator.engine.scheduling import SchedulingMixin
from pipeline_orchestrator.engine.state import Budget, Definitions, Pass, utcnow
from pipeline_orchestrator.engine.tracking import TrackingCalls
from pipeline_orchestrator.locks import lock_engine
from pipeline_orchestrator.protocol import Executor, ExecutorEvent, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.tables import (
    Attempt,
    AttemptState,
    Run,
    RunState,
)

log = logging.getLogger("mlops.orchestrator.engine")

__all__ = ["Engine"]


class Engine(AdvanceMixin, RecordsMixin, SchedulingMixin):
    def __init__(
        self, settings: OrchestratorSettings, db: Database, executor: Executor, metrics: Metrics | None = None
    ):
        self.settings = settings
        self.metrics = EngineMetrics(metrics)
        self.db = db
        self.executor = executor
        self.definitions = Definitions()
        self.tracking = TrackingCalls(db, self.wake)
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
        self.tracking.stop()

    def recover(self) -> None:
        """At start-up: attempts a local executor was running died with the previous process;
        remote workers lived on, and get a full lease to report in before they count as lost.
        Whatever a local attempt left running is stopped first, so its retry never overlaps it."""
        self.executor.reclaim()
        now = utcnow()
        if self.executor.remote:
            with self.db.session(write=True) as session:
                lock_engine(session)
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
            lock_engine(session)
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
        if event.kind != "started":
            # which worker took an attempt can wait for the next pass; results cannot
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
        started = time.perf_counter()
        periodic = time.monotonic() - self._last_periodic >= self.settings.scheduler_interval_seconds
        free = self.executor.free_slots()  # asked before the transaction: an executor may call out
        with self.db.session(write=True) as session:
            lock_engine(session)  # one pass at a time, across every orchestrator on this database
            now = utcnow()  # once the lock is held: passes' times are in the order they ran
            current = Pass(now=now, budget=Budget(free))
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
        self.metrics.scheduling_pass(time.perf_counter() - started)
        self.metrics.attempts_submitted(self.executor.name, len(current.submits))
        self._next_timer = current.next_wake
        self.tracking.submit(current.calls)
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
