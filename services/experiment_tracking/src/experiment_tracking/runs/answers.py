"""What the native run routes answer, for the OpenAPI (the routes render plain dicts with orjson)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, RootModel

Number = float | str  # "NaN", "Infinity" and "-Infinity" travel as strings


class DatasetRead(BaseModel):
    name: str
    digest: str | None
    source_type: str | None
    source: str | None
    context: str | None


class RunRead(BaseModel):
    id: str
    experiment_id: str
    name: str | None
    status: str
    start_time: int | None = Field(description="epoch milliseconds")
    end_time: int | None
    lifecycle_stage: str
    user_id: str | None
    artifact_uri: str | None
    parent_run_id: str | None
    description: str | None
    params: dict[str, str]
    metrics: dict[str, Number] = Field(description="the latest value of each metric")
    tags: dict[str, str]
    source: dict[str, str]
    environment: dict[str, Any] | None
    datasets: list[DatasetRead]


class RunPage(BaseModel):
    items: list[RunRead]
    next_page_token: str | None


class MetricsLogged(BaseModel):
    run_id: str
    logged: int


class LatestMetric(BaseModel):
    value: Number
    step: int
    timestamp: int


class LatestMetrics(RootModel[dict[str, LatestMetric]]):
    """metric key -> its latest value"""


class Point(BaseModel):
    value: Number
    timestamp: int
    step: int


class MetricHistory(BaseModel):
    key: str
    items: list[Point]
    next_page_token: str | None


class RunSummary(BaseModel):
    id: str
    name: str | None
    experiment_id: str
    status: str


class Comparison(BaseModel):
    runs: list[RunSummary]
    params: dict[str, dict[str, Any]] = Field(description="param -> run id -> value")
    metrics: dict[str, dict[str, Any]] = Field(description="metric -> run id -> latest value")
    differing_params: list[str]
    differing_metrics: list[str]


class Series(BaseModel):
    run_id: str
    points: list[Point]


class Histories(BaseModel):
    key: str
    series: list[Series]


class FileInfo(BaseModel):
    path: str
    is_dir: bool
    file_size: int | None = None


class ArtifactListing(BaseModel):
    path: str
    files: list[FileInfo]


class ArtifactStored(BaseModel):
    path: str
    size: int
    sha256: str
