"""What the experiment tracking client returns: experiments, runs, metrics, artifacts, pages."""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field, PlainSerializer

from mlops_client.models import _Result

T = TypeVar("T")


def wire_number(value: float) -> float | str:
    """A metric value as JSON can carry it: NaN and ±inf travel as "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# parsing accepts the strings as pydantic does; JSON output writes them back as strings
MetricValue = Annotated[float, PlainSerializer(wire_number, return_type=float | str, when_used="json")]


class Experiment(_Result):
    id: str
    name: str
    description: str | None = None
    tags: dict[str, str] = {}
    lifecycle_stage: str
    artifact_location: str
    creation_time: int
    """Epoch milliseconds, as is every time on this service."""
    last_update_time: int


class RunSource(_Result):
    git_commit: str | None = None
    entry_point: str | None = None
    name: str | None = None
    type: str | None = None


class Dataset(_Result):
    name: str
    source: str
    digest: str | None = None
    source_type: str = "external"
    context: str | None = None


class Run(_Result):
    id: str
    experiment_id: str
    name: str | None = None
    status: str
    start_time: int
    end_time: int | None = None
    lifecycle_stage: str
    user_id: str | None = None
    artifact_uri: str
    parent_run_id: str | None = None
    description: str | None = None
    params: dict[str, str] = {}
    metrics: dict[str, MetricValue] = {}
    """The latest value of each metric."""
    tags: dict[str, str] = {}
    source: RunSource = Field(default_factory=RunSource)
    environment: dict[str, Any] | None = None
    datasets: list[Dataset] = []


class Metric(_Result):
    """One metric point to log; `timestamp` (epoch ms) defaults to the time it is sent."""

    key: str
    value: MetricValue
    step: int = 0
    timestamp: int | None = None


class MetricPoint(_Result):
    value: MetricValue
    step: int = 0
    timestamp: int


class LatestMetric(MetricPoint):
    pass


class ArtifactFile(_Result):
    path: str
    """Relative to the run's artifact root."""
    is_dir: bool
    file_size: int | None = None


class UploadedArtifact(_Result):
    path: str
    size: int
    sha256: str


class RunSummary(_Result):
    id: str
    name: str | None = None
    experiment_id: str
    status: str


class RunComparison(_Result):
    runs: list[RunSummary]
    params: dict[str, dict[str, str | None]]
    """param → run id → value (None where the run has no such param)."""
    metrics: dict[str, dict[str, MetricValue | None]]
    differing_params: list[str]
    differing_metrics: list[str]


class TokenPage(_Result, Generic[T]):
    items: list[T]
    next_page_token: str | None = None
