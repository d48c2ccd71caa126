"""The shapes the offline-store routes answer (ingestion, materialization jobs, statistics)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EventTimeRange(BaseModel):
    min: str | None
    max: str | None


class IngestRead(BaseModel):
    feature_set: str
    version: int
    rows_written: int
    event_time: EventTimeRange


class JobRead(BaseModel):
    id: int
    feature_set: str
    status: str = Field(examples=["PENDING", "RUNNING", "SUCCEEDED", "FAILED"])
    start: str | None = Field(description="event-time start (ISO 8601); null: from the beginning")
    end: str
    incremental: bool
    rows_total: int = Field(description="entities to copy (0 until known)")
    rows_done: int
    percent: float
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class JobPage(BaseModel):
    items: list[JobRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class FeatureSummary(BaseModel):
    # numbers add mean/std/min/max/quantiles/histogram, strings and bools distinct/top, lists mean_length
    model_config = ConfigDict(extra="allow")

    type: str
    count: int
    nulls: int


class StatisticsRead(BaseModel):
    feature_set: str
    version: int
    rows: int
    updated_at: str | None
    features: dict[str, FeatureSummary]
