"""Advancing a run: trigger rules, templated inputs, the cache, new attempts, hpo trials,
finishing and cancelling."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine import hpo
from pipeline_orchestrator.engine.metrics import EngineMetrics
from pipeline_orchestrator.engine.rules import cache_key, decide
from pipeline_orchestrator.engine.state import Definition, Definitions, Pass, hash_token
from pipeline_orchestrator.engine.tracking import (
    PENDING,
    TrackingCalls,
    tracking_enabled,
    waiting_for_parent_run,
)
from pipeline_orchestrator.protocol import Executor, TaskPayload
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
from pipeline_orchestrator.templating import MissingReference, render_task

log = logging.getLogger("mlops.orchestrator.engine")


class AdvanceMixin:
    settings: OrchestratorSettings
    executor: Executor
    definitions: Definitions
    metrics: EngineMetrics
    tracking: TrackingCalls

    def mark_dirty(self, run_ids: Iterable[str]) -> None:
        raise NotImplementedError

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
            changed = self._advance_tasks(session, run, definition, tis, by_name, current)
            self._dispatch_trials(session, run, definition, tis, current)
        self._maybe_finish(run, tis, current.now)

    def _advance_tasks(
        self,
        session: Session,
        run: Run,
        definition: Definition,
        tis: list[TaskInstance],
        by_name: dict[str, TaskInstance],
        current: Pass,
    ) -> bool:
        """One look at every top-level task (`tis` grows as hpo tasks add trials); True when one
        reached a state its downstream tasks may be waiting for."""
        changed = False
        for ti in tis:
            if ti.parent is not None:
                continue
            task = definition.tasks[ti.name]
            if ti.state == TaskState.RUNNING and task.kind == "hpo":
                changed |= self._advance_hpo(session, run, ti, task, tis, current)
            elif ti.state in (TaskState.PENDING, TaskState.UP_FOR_RETRY) and not _retry_later(ti, current):
                changed |= self._advance_waiting(session, run, ti, task, definition, by_name, current)
        return changed

    def _advance_waiting(
        self,
        session: Session,
        run: Run,
        ti: TaskInstance,
        task: TaskSpec,
        definition: Definition,
        by_name: dict[str, TaskInstance],
        current: Pass,
    ) -> bool:
        """A task not started yet: its trigger rule says wait, skip, fail upstream or start."""
        decision = decide(task.trigger_rule, (by_name[d].state for d in definition.upstream[ti.name]))
        if decision == "wait":
            return False
        if decision in ("skip", "upstream_failed"):
            ti.state = TaskState.SKIPPED if decision == "skip" else TaskState.UPSTREAM_FAILED
            ti.finished_at = current.now
            return True
        return self._start_task(session, run, ti, task, by_name, current)

    def _dispatch_trials(
        self, session: Session, run: Run, definition: Definition, tis: list[TaskInstance], current: Pass
    ) -> None:
        """hpo trials are dispatched like tasks with no upstream, while the pass has slots."""
        for ti in list(tis):
            if ti.parent is None or ti.state not in (TaskState.PENDING, TaskState.UP_FOR_RETRY):
                continue
            if _retry_later(ti, current):
                continue
            parent_task = definition.tasks[ti.parent]
            if not current.budget.take(1):
                break
            spec = _trial_spec(parent_task, ti.data or {})
            self._new_attempt(session, run, ti, parent_task, spec, current, kind="trial")

    def _scope(self, run: Run, by_name: dict[str, TaskInstance], names: set[str]) -> dict[str, Any]:
        """What a task's references may use: the parameters, the run, and the outputs of the
        (succeeded or cached) tasks it references."""
        return {
            "params": run.parameters,
            "tasks": {
                name: by_name[name].outputs or {}
                for name in names
                if name in by_name and by_name[name].state in TaskState.OK
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
        if task.kind != "hpo" and current.budget.exhausted():
            return False  # no free slot: look at it again when one frees up
        refs = self.definitions.get_cached(run.pipeline_id, run.pipeline_version).refs.get(task.name, set())
        try:
            resolved = render_task(task, self._scope(run, by_name, refs))
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
        experiment = resolved.get("experiment")
        experiment = str(experiment) if experiment else None
        ti.state = TaskState.RUNNING
        ti.started_at = current.now
        ti.data = {"inputs": resolved.get("inputs", {}), "parent_run_id": None, "experiment": experiment}
        if tracking_enabled(experiment):  # created after this pass commits (engine/tracking.py)
            ti.data["parent_run"] = PENDING
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
        if waiting_for_parent_run(ti):
            current.calls.append(self.tracking.want_parent_run(run, ti, task))
            return False
        trials = [t for t in tis if t.parent == ti.name]
        active = sum(1 for t in trials if t.state not in TaskState.DONE)
        if len(trials) < task.n_trials and active < task.parallelism:
            count = min(task.parallelism - active, task.n_trials - len(trials))
            self._add_trials(session, run, ti, task, tis, trials, count, current)
            return True
        if len(trials) >= task.n_trials and not active:
            self._finish_hpo(session, run, ti, task, trials, current)
            return True
        return False

    def _add_trials(
        self,
        session: Session,
        run: Run,
        ti: TaskInstance,
        task: TaskSpec,
        tis: list[TaskInstance],
        trials: list[TaskInstance],
        count: int,
        current: Pass,
    ) -> None:
        """`count` new trials with parameters the search samples; a search that cannot sample
        fails the task."""
        data = ti.data or {}
        try:
            asked = hpo.ask(task, run.id, trials, count)
        except Exception as exc:
            ti.state = TaskState.FAILED
            ti.error = f"the search could not sample parameters: {exc}"
            ti.finished_at = current.now
            return
        for params in asked:
            child = _trial(run, ti, data, params, number=len(trials))
            session.add(child)
            trials.append(child)
            tis.append(child)
        session.flush()

    def _finish_hpo(
        self,
        session: Session,
        run: Run,
        ti: TaskInstance,
        task: TaskSpec,
        trials: list[TaskInstance],
        current: Pass,
    ) -> None:
        """Every trial done: the task succeeds with the best one (cached as its outputs), or fails
        when all of them failed; the parent tracking run is ended after the pass commits."""
        data = ti.data or {}
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
                session.merge(TaskCache(cache_key=ti.cache_key, outputs=summary, run_id=run.id, task=ti.name))
        if data.get("parent_run_id"):
            current.calls.append(self.tracking.end_parent_run(data["parent_run_id"], summary))

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
        self.metrics.run_finished(run.pipeline_name, run.state)
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
        self.metrics.run_finished(run.pipeline_name, run.state)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.[]" else "_" for c in name)


def _retry_later(ti: TaskInstance, current: Pass) -> bool:
    """A task up for retry whose backoff has not passed: the engine wakes up when it has."""
    if ti.state == TaskState.UP_FOR_RETRY and ti.next_attempt_at and ti.next_attempt_at > current.now:
        current.wake_at(ti.next_attempt_at)
        return True
    return False


def _trial_spec(task: TaskSpec, data: dict[str, Any]) -> dict[str, Any]:
    """What a trial's attempt runs: the hpo task's objective with the trial's parameters."""
    return {
        "callable": task.callable,
        "params": data.get("params", {}),
        "inputs": data.get("inputs", {}),
        "metric": task.metric,
        "direction": task.direction,
        "experiment": data.get("experiment"),
        "parent_run_id": data.get("parent_run_id"),
        "trial_number": data.get("number"),
    }


def _trial(run: Run, ti: TaskInstance, data: dict[str, Any], params: Any, *, number: int) -> TaskInstance:
    """The task instance of an hpo task's trial `number`."""
    return TaskInstance(
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
            "experiment": data.get("experiment"),
        },
    )
