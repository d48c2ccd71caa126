"""An hpo task's parent run in experiment tracking, created and closed outside any transaction.

A scheduling pass only notes that a parent run is wanted (``ti.data["parent_run"] = "pending"``)
and which calls to make; they run on a small thread pool after the pass commits, so a slow or
stalled tracking service holds up neither the write transaction nor other runs. Once a parent
run exists, a short transaction records its id, if the task still waits for it, and the run is
advanced again: trials are created only after that, so they all nest under the parent. A
pending parent run found with no call in flight (a restart) is asked for again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mlops_kit.db import Database

from pipeline_orchestrator.locks import lock_engine
from pipeline_orchestrator.spec import TaskSpec
from pipeline_orchestrator.tables import Run, TaskInstance, TaskState

log = logging.getLogger("mlops.orchestrator.hpo")

PENDING = "pending"
THREADS = 2


@dataclass
class TrackingCall:
    fn: Callable[[], None]
    key: int | None = None  # one call per key in flight at a time


class TrackingCalls:
    """The engine's outbound calls to experiment tracking, off the scheduling pass."""

    def __init__(self, db: Database, wake: Callable[[str], None]):
        self.db = db
        self.wake = wake
        # daemon threads: a call stalled on a slow tracking service must not hold up shutdown
        self._queue: queue.SimpleQueue[TrackingCall | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"tracking-{i}", daemon=True) for i in range(THREADS)
        ]
        self._started = False
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()

    def want_parent_run(self, run: Run, ti: TaskInstance, task: TaskSpec) -> TrackingCall:
        """The call that creates `ti`'s parent run, to make once the pass has committed."""
        experiment = (ti.data or {}).get("experiment")
        name, pipeline = f"{run.pipeline_name}/{ti.name}", run.pipeline_name
        params = {"pipeline_run_id": run.id, "n_trials": task.n_trials, "metric": task.metric}
        ti_id, run_id = ti.id, run.id

        def call() -> None:
            if not self._still_pending(ti_id):  # asked for by a pass that read before a record
                return
            self._record(ti_id, _start_parent_run(experiment or pipeline, name, params))
            self.wake(run_id)

        return TrackingCall(call, key=ti_id)

    def end_parent_run(self, run_id: str, summary: dict[str, Any] | None) -> TrackingCall:
        return TrackingCall(lambda: _end_parent_run(run_id, summary))

    def submit(self, calls: Iterable[TrackingCall]) -> None:
        """Make `calls` in the background (after the pass that asked for them committed)."""
        for call in calls:
            with self._lock:
                if call.key is not None:
                    if call.key in self._in_flight:
                        continue
                    self._in_flight.add(call.key)
                if not self._started:
                    self._started = True
                    for thread in self._threads:
                        thread.start()
            self._queue.put(call)

    def _serve(self) -> None:
        while (call := self._queue.get()) is not None:
            try:
                call.fn()
            except Exception:
                log.exception("a call to experiment tracking failed")
            finally:
                if call.key is not None:
                    with self._lock:
                        self._in_flight.discard(call.key)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _still_pending(self, ti_id: int) -> bool:
        with self.db.session(write=False) as session:
            ti = session.get(TaskInstance, ti_id)
            return ti is not None and ti.state == TaskState.RUNNING and waiting_for_parent_run(ti)

    def _record(self, ti_id: int, parent: str | None) -> None:
        with self.db.session(write=True) as session:
            lock_engine(session)
            ti = session.get(TaskInstance, ti_id)
            data = dict((ti.data or {}) if ti is not None else {})
            if ti is None or ti.state != TaskState.RUNNING or data.get("parent_run") != PENDING:
                return
            data.pop("parent_run")
            ti.data = data | {"parent_run_id": parent}
            session.commit()


def waiting_for_parent_run(ti: TaskInstance) -> bool:
    return (ti.data or {}).get("parent_run") == PENDING


def tracking_enabled(experiment: str | None) -> bool:
    """The same rule the trials follow: an experiment named, or experiment tracking configured."""
    from pipeline_orchestrator.worker.platform_steps import tracking_enabled as enabled

    return bool(enabled(experiment))


def _start_parent_run(experiment: str, name: str, params: dict[str, Any]) -> str | None:
    """The hpo task's parent run in experiment tracking; the search goes on without it."""
    try:
        from pipeline_orchestrator.worker.platform_steps import start_parent_run

        return start_parent_run(experiment, name, params)
    except Exception as exc:
        log.warning("hpo %s: no parent run in experiment tracking (%s)", name, exc)
        return None


def _end_parent_run(run_id: str, summary: dict[str, Any] | None) -> None:
    try:
        from pipeline_orchestrator.worker.platform_steps import end_parent_run

        end_parent_run(run_id, "FINISHED" if summary else "FAILED", summary)
    except Exception as exc:
        log.warning("hpo: could not close parent run %s (%s)", run_id, exc)
