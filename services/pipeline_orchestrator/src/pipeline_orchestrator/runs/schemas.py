"""Run requests and answers: the shapes of api/serialize.py's `run_json`, field for field."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from mlops_kit.bounds import INT64_SCHEMA_MAX, JsonObject
from pydantic import BaseModel, ConfigDict, Field

ItemT = TypeVar("ItemT", bound=BaseModel)
RunStateParam = Literal["queued", "running", "succeeded", "failed", "cancelling", "cancelled"]


class Page(BaseModel, Generic[ItemT]):
    """A page of a list: the items first, then where the list stands (as the bodies always had it)."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: JsonObject = Field(default_factory=dict)
    version: int | None = Field(
        default=None, ge=1, le=INT64_SCHEMA_MAX, description="default: the latest version"
    )


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
    """A run; `progress` comes with lists and single reads, `tasks` with single reads only (a key
    left out is absent from the body, not null: routes answer with `response_model_exclude_unset`)."""

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


class RunPage(Page[RunRead]):
    pass
