"""The engine's state in memory: parsed pipeline versions, a pass's budget, and run creation."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.tracking import TrackingCall
from pipeline_orchestrator.protocol import TaskPayload
from pipeline_orchestrator.spec import (
    PipelineSpec,
    TaskSpec,
    iter_references,
    logical_date_parameters,
    resolve_parameters,
)
from pipeline_orchestrator.tables import (
    Pipeline,
    PipelineVersion,
    Run,
    RunState,
    TaskInstance,
    TaskState,
)

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
    # the tasks whose outputs each task's fields reference
    refs: dict[str, set[str]] = field(default_factory=dict)


class Definitions:
    """Parsed pipeline versions by (pipeline id, version); versions never change once written."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], Definition] = {}
        self._lock = threading.Lock()

    def get_cached(self, pipeline_id: str, version: int) -> Definition:
        return self._cache[(pipeline_id, version)]

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
            refs={
                t.name: {
                    expr.split(".")[1]
                    for _, expr in iter_references(t.templated())
                    if expr.startswith("tasks.") and "." in expr[6:]
                }
                for t in spec.tasks
            },
        )
        with self._lock:
            self._cache[key] = definition
        return definition


@dataclass
class Budget:
    """Executor slots left in this pass (None: the executor's backend queues)."""

    free: int | None
    starved: bool = False

    def exhausted(self) -> bool:
        if self.free is not None and self.free <= 0:
            self.starved = True
            return True
        return False

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
    calls: list[TrackingCall] = field(default_factory=list)  # to experiment tracking, after commit
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
    timezone: str = "UTC",
    dedupe_key: str | None = None,
) -> Run:
    """A queued run with a pending task instance per task (parameters checked: 422 on error).
    With a logical date, the parameters ``logical_date`` and ``ds`` default to it."""
    spec = PipelineSpec.model_validate(definition)
    if logical_date is not None:
        parameters = {**logical_date_parameters(spec, logical_date, timezone), **(parameters or {})}
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
