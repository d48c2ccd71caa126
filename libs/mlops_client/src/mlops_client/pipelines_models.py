"""Typed definitions and results of the pipeline orchestrator client (unknown fields are kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from mlops_client.models import _Result

RUN_FINISHED = frozenset({"succeeded", "failed", "cancelled"})
TASK_FINISHED = frozenset({"succeeded", "cached", "failed", "upstream_failed", "skipped", "cancelled"})
ATTEMPT_FINISHED = frozenset({"succeeded", "failed", "timed_out", "lost", "cancelled"})


# definitions (what you send) ------------------------------------------------------------------
class _Definition(BaseModel):
    # the service validates every field; here only the common ones are typed
    model_config = ConfigDict(extra="allow")


class ParameterDefinition(_Definition):
    name: str
    type: str = "string"
    """int, float, string, bool, list or dict."""
    default: Any = None
    required: bool | None = None
    description: str = ""


class TaskDefinition(_Definition):
    """One node of the DAG; `kind` is python, shell, http, platform or hpo, and its other fields
    (callable, command, url, step, search_space, retries, timeout_seconds, ...) are passed as is."""

    name: str
    kind: str
    depends_on: list[str] = []
    inputs: dict[str, Any] = {}


class PipelineDefinition(_Definition):
    name: str
    tasks: list[TaskDefinition]
    description: str = ""
    parameters: list[ParameterDefinition] = []
    max_active_runs: int = 16
    tags: dict[str, str] = {}


# results --------------------------------------------------------------------------------------
class Pipeline(_Result):
    id: str
    name: str
    description: str = ""
    version: int
    """The latest version (or, from `create_pipeline`, the version the definition is stored as)."""
    versions: int = 1
    """How many versions there are."""
    definition: dict[str, Any] | None = None
    """Absent from lists."""
    max_active_runs: int = 16
    tags: dict[str, str] = {}
    created_at: datetime
    updated_at: datetime
    created: bool | None = None
    """Set by `create_pipeline`: True when the call stored a new pipeline or version (201), False
    when the definition was identical to the latest (200)."""


class PipelineVersion(_Result):
    version: int
    created_at: datetime
    definition: dict[str, Any]


class Attempt(_Result):
    id: str
    number: int
    state: str
    """running, succeeded, failed, timed_out, lost or cancelled."""
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_status: int | None = None
    error: str | None = None
    outputs: dict[str, Any] | None = None


class TaskRun(_Result):
    name: str
    kind: str
    parent: str | None = None
    """An hpo trial (`train[3]`) names its hpo task."""
    state: str
    """pending, queued, running, up_for_retry, succeeded, cached, failed, upstream_failed,
    skipped or cancelled."""
    try_number: int = 0
    trigger_rule: str | None = None
    depends_on: list[str] = []
    outputs: dict[str, Any] | None = None
    cached_from: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    attempts: list[Attempt] = []

    @property
    def finished(self) -> bool:
        return self.state in TASK_FINISHED


class RunProgress(_Result):
    total: int = 0
    done: int = 0
    percent: float = 0.0
    states: dict[str, int] = {}
    """How many tasks are in each state."""


class PipelineRun(_Result):
    id: str
    pipeline_id: str
    pipeline: str
    pipeline_version: int
    state: str
    """queued, running, succeeded, failed, cancelling or cancelled."""
    parameters: dict[str, Any] = {}
    trigger: str
    """manual, schedule, backfill, webhook or alertmanager."""
    trigger_info: dict[str, Any] = {}
    logical_date: datetime | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    progress: RunProgress = Field(default_factory=RunProgress)
    tasks: list[TaskRun] = []
    """Only on single runs (`get_run`, `trigger`, `wait_for_run`, ...), not in lists."""

    @property
    def finished(self) -> bool:
        return self.state in RUN_FINISHED

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    def task(self, name: str) -> TaskRun:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"run {self.id} has no task {name!r}")

    def failure(self) -> str:
        """What went wrong: the run's error and each failed task's (first lines)."""
        lines = [self.error] if self.error else []
        for t in self.tasks:
            if t.state in ("failed", "cancelled") and t.error:
                lines.append(f"task {t.name} {t.state}: {t.error.strip()}")
        return "\n".join(lines) or f"run {self.id} {self.state}"


Run = PipelineRun  # the name the orchestrator's docs use


class Backfill(_Result):
    runs: list[PipelineRun]
    count: int


class Schedule(_Result):
    id: str
    pipeline: str
    cron: str
    timezone: str = "UTC"
    parameters: dict[str, Any] = {}
    catchup: bool = False
    enabled: bool = True
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    created_at: datetime


class Webhook(_Result):
    id: str
    pipeline: str
    token: str | None = None
    """Shown once, when the webhook is created (the service keeps only its hash)."""
    url: str | None = None
    """The path that starts a run, `/api/triggers/webhooks/<token>`; like the token, shown once."""
    parameters: dict[str, Any] = {}


class AlertRoute(_Result):
    id: str
    alertname: str
    pipeline: str
    match: dict[str, str] = {}
    parameters: dict[str, Any] = {}
    cooldown_seconds: float | None = None


class LogChunk(NamedTuple):
    """A piece of a task attempt's log: `text, next_offset, attempt_state = client.logs(...)`."""

    text: str
    next_offset: int
    """The byte offset to ask for next."""
    attempt_state: str | None
    """The attempt's state when the piece was read (None when the task has no attempt yet)."""

    @property
    def finished(self) -> bool:
        return self.attempt_state in ATTEMPT_FINISHED
