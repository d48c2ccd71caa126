"""What the routes still under api/ answer, for the OpenAPI (they build the dicts of serialize.py);
the pipelines' and runs' answers live in their domains' schemas and are re-exported here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pipeline_orchestrator.pipelines.schemas import (
    BackfillRead,
    PipelineCreated,
    PipelinePage,
    PipelineRead,
    SchedulePage,
    ScheduleRead,
    WebhookPage,
    WebhookRead,
)
from pipeline_orchestrator.pipelines.schemas import PipelineVersionPage as VersionPage
from pipeline_orchestrator.pipelines.schemas import PipelineVersionRead as VersionRead
from pipeline_orchestrator.runs.schemas import AttemptRead, Progress, RunPage, RunRead, TaskRead

__all__ = [
    "AlertRoutePage",
    "AlertRouteRead",
    "AlertsHandled",
    "AttemptRead",
    "BackfillRead",
    "LeaseRead",
    "Page",
    "PipelineCreated",
    "PipelinePage",
    "PipelineRead",
    "Progress",
    "Recorded",
    "RunPage",
    "RunRead",
    "SchedulePage",
    "ScheduleRead",
    "TaskRead",
    "VersionPage",
    "VersionRead",
    "WebhookPage",
    "WebhookRead",
]


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None


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
