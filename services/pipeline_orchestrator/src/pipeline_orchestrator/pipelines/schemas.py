"""Pipeline requests and answers: the shapes of api/serialize.py, field for field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body
from mlops_kit.bounds import BoundedDatetime, JsonObject
from mlops_kit.bounds import NulFreeStr as Text
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)

from pipeline_orchestrator.engine.cron import day_bounds
from pipeline_orchestrator.runs.schemas import Page, RunRead

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

# the definition is parsed by the service (PipelineSpec), whose errors name the task at fault
PipelineCreate = Annotated[
    JsonObject, Body(description="a pipeline definition (see API.md); strings up to 65,536")
]


class PipelineRead(BaseModel):
    """A pipeline; `definition` (its latest version's) comes with single reads, not with lists."""

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


class PipelinePage(Page[PipelineRead]):
    pass


class PipelineVersionRead(BaseModel):
    version: int
    created_at: str | None
    definition: dict[str, Any]


class PipelineVersionPage(Page[PipelineVersionRead]):
    pass


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: Text = Field(min_length=1, max_length=120)
    timezone: Text = Field(default="UTC", max_length=64)
    parameters: JsonObject = Field(default_factory=dict)
    catchup: bool = False
    enabled: bool = True


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


class SchedulePage(Page[ScheduleRead]):
    pass


class BackfillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: BoundedDatetime = Field(
        description="first logical date; a bare date (2026-11-01) is that day's start in the cron's "
        "timezone, a time without an offset is UTC"
    )
    end: BoundedDatetime = Field(
        description="last logical date, included; a bare date (2026-11-07) includes that whole day"
    )
    cron: Text | None = Field(
        default=None, max_length=120, description="default: the pipeline's first schedule's"
    )
    timezone: Text | None = Field(default=None, max_length=64)
    parameters: JsonObject = Field(default_factory=dict)
    _days: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="wrap")
    @classmethod
    def _note_bare_dates(
        cls, data: Any, handler: ModelWrapValidatorHandler[BackfillCreate]
    ) -> BackfillCreate:
        model = handler(data)
        if isinstance(data, dict):
            bare = {k for k in ("start", "end") if isinstance(data.get(k), str) and _DAY.fullmatch(data[k])}
            model._days = frozenset(bare)
        return model

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        """[start, end] in UTC: bare dates are whole days in ``tz``."""
        first, last = day_bounds(self.start.date(), self.end.date(), tz)
        start = first if "start" in self._days else _utc(self.start)
        end = last if "end" in self._days else _utc(self.end)
        return start, end


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class BackfillRead(BaseModel):
    runs: list[RunRead]
    count: int


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: JsonObject = Field(default_factory=dict, description="defaults; the caller's win")


class WebhookRead(BaseModel):
    """A webhook; `token` and `url` come once, with its creation."""

    id: str
    pipeline_id: str
    pipeline: str
    parameters: dict[str, Any]
    created_at: str | None
    token: str | None = Field(default=None, description="shown once, on creation")
    url: str | None = None


class WebhookPage(Page[WebhookRead]):
    pass
