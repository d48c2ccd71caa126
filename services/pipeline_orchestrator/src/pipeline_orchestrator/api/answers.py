"""What the orchestrator's routes answer, for the OpenAPI (the routes build the dicts of serialize.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None


class PipelineRead(BaseModel):
    id: str
    name: str
    description: str
    version: int = Field(description="the latest version")
    versions: int
    max_active_runs: int
    tags: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    definition: dict[str, Any] | None = Field(default=None, description="the latest version's")


class PipelineCreated(PipelineRead):
    created: bool = Field(description="false: the definition was unchanged (200), no new version")


class PipelinePage(Page):
    items: list[PipelineRead]


class VersionRead(BaseModel):
    version: int
    created_at: str | None
    definition: dict[str, Any]


class VersionPage(Page):
    items: list[VersionRead]


class AttemptRead(BaseModel):
    id: str
    number: int
    state: str
    executor: str
    worker: str | None
    started_at: str | None
    finished_at: str | None
    exit_status: int | None
    error: str | None
    outputs: dict[str, Any] | None


class TaskRead(BaseModel):
    name: str
    kind: str
    parent: str | None
    state: str
    try_number: int
    trigger_rule: str | None
    depends_on: list[str]
    outputs: dict[str, Any] | None
    cached_from: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    next_attempt_at: str | None
    params: dict[str, Any] | None
    attempts: list[AttemptRead]


class Progress(BaseModel):
    total: int
    done: int
    percent: float
    states: dict[str, int]


class RunRead(BaseModel):
    id: str
    pipeline_id: str
    pipeline: str
    pipeline_version: int
    state: str
    parameters: dict[str, Any]
    trigger: str
    trigger_info: dict[str, Any]
    logical_date: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    progress: Progress | None = None
    tasks: list[TaskRead] | None = Field(default=None, description="with a single run's read")


class RunPage(Page):
    items: list[RunRead]


class BackfillRead(BaseModel):
    runs: list[RunRead]
    count: int


class ScheduleRead(BaseModel):
    id: str
    pipeline_id: str
    pipeline: str
    cron: str
    timezone: str
    parameters: dict[str, Any]
    catchup: bool
    enabled: bool
    next_run_at: str | None
    last_run_at: str | None
    created_at: str | None


class SchedulePage(Page):
    items: list[ScheduleRead]


class WebhookRead(BaseModel):
    id: str
    pipeline_id: str
    pipeline: str
    parameters: dict[str, Any]
    created_at: str | None
    token: str | None = Field(default=None, description="shown once, on creation")
    url: str | None = None


class WebhookPage(Page):
    items: list[WebhookRead]


class AlertRouteRead(BaseModel):
    id: str
    alertname: str
    pipeline_id: str
    pipeline: str
    match: dict[str, Any]
    parameters: dict[str, Any]
    cooldown_seconds: float
    last_fired_at: str | None
    created_at: str | None


class AlertRoutePage(Page):
    items: list[AlertRouteRead]


class AlertsHandled(BaseModel):
    started: list[dict[str, Any]]
    skipped: list[dict[str, Any]]


class LeaseRead(BaseModel):
    continue_: bool = Field(alias="continue", description="false: the attempt was cancelled or lost")


class Recorded(BaseModel):
    recorded: bool
