"""Typed results of the feature store client (unknown fields are kept, so newer servers still parse)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_client.models import _Result

FINISHED = frozenset({"SUCCEEDED", "FAILED"})


class Feature(_Result):
    name: str
    type: str
    """int, float, string, bool, timestamp, list[int] or list[float]."""
    description: str = ""


class Entity(_Result):
    name: str
    join_keys: list[str]
    value_type: str
    description: str = ""
    tags: dict[str, str] = {}
    created_at: datetime
    updated_at: datetime


class FeatureSet(_Result):
    name: str
    entity: str
    join_keys: list[str]
    description: str = ""
    owner: str | None = None
    tags: dict[str, str] = {}
    ttl_seconds: int | None = None
    version: int
    """The schema version shown (the latest unless another was asked for)."""
    latest_version: int
    features: list[Feature]
    versions: list[int] = []
    materialized_until: str | None = None
    created_at: datetime
    updated_at: datetime


class SchemaVersion(_Result):
    feature_set: str
    version: int
    features: list[Feature]
    breaking: bool = False
    change: str = ""
    created_at: datetime


class FeatureRef(_Result):
    feature_set: str
    feature: str
    version: int
    type: str


class FeatureService(_Result):
    name: str
    version: int
    features: list[FeatureRef]
    description: str = ""
    tags: dict[str, str] = {}
    created_at: datetime


class IngestResult(_Result):
    feature_set: str
    version: int
    rows_written: int
    event_time: dict[str, str | None] = {}
    """`min` and `max` event time of the rows written."""


class PushResult(IngestResult):
    online_updated: int
    """Rows that became the online value (not older than the one there)."""


class MaterializationJob(_Result):
    id: int
    feature_set: str
    status: str
    """PENDING, RUNNING, SUCCEEDED or FAILED."""
    start: str | None = None
    end: str | None = None
    incremental: bool = False
    rows_total: int = 0
    """Entities to copy (it grows when rows arrive during the job)."""
    rows_done: int = 0
    percent: float = 0.0
    error: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class EntityFeatures(_Result):
    entity: Any
    """The entity as requested (a key, or an object of join keys)."""
    values: dict[str, Any]
    """None unless the status is PRESENT."""
    statuses: dict[str, str]
    """PRESENT, MISSING or EXPIRED."""
    event_timestamps: dict[str, str | None]


class OnlineFeatures(_Result):
    features: list[str]
    feature_refs: list[str]
    """`set:feature` of each key of `features`, in the same order."""
    results: list[EntityFeatures]
    """One per requested entity, in request order."""

    def values(self) -> list[dict[str, Any]]:
        return [r.values for r in self.results]


class HistoricalFeatures(_Result):
    columns: list[str]
    rows: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class FeatureStatistics(_Result):
    feature_set: str
    version: int
    rows: int
    updated_at: str | None = None
    features: dict[str, dict[str, Any]]
    """Per feature: type, count, nulls, and mean/std/min/max/quantiles/histogram or top categories."""
