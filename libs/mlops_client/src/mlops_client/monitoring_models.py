"""What the monitoring client returns: logging receipts, reference profiles, drift and performance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_client.models import _Result


class PredictionsAccepted(_Result):
    accepted: int
    duplicates: int = 0
    """Rows whose request_id was already logged (a resent batch), or repeated in the batch."""


class LabelsAccepted(_Result):
    labelled: int
    unknown: int = 0
    """Labels whose request_id has no logged prediction."""
    unknown_request_ids: list[str] = []
    """The first 100 of them."""


class ReferenceColumn(_Result):
    name: str
    kind: str
    count: int
    missing: int
    sampled: bool


class ReferenceSummary(_Result):
    name: str
    version: str
    rows: int
    sampled: bool
    columns: list[ReferenceColumn]
    created_at: datetime
    created_by: str | None = None


class ReferenceProfile(ReferenceSummary):
    profile: dict[str, Any]
    """The server's profile (counts, moments, quantiles, bins, categories, sample) per column."""


class MonitoringWindow(_Result):
    start: datetime | None = None
    end: datetime | None = None
    last_n: int | None = None
    count: int
    """Predictions of the window that were used."""
    truncated: bool = False


class FeatureDrift(_Result):
    feature: str
    kind: str
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    drifted: bool = False
    status: str = "ok"
    reference_count: int | None = None
    current_count: int | None = None
    missing_share: float | None = None


class DriftReport(_Result):
    name: str
    version: str
    window: MonitoringWindow
    features: list[FeatureDrift]
    dataset: dict[str, Any]
    unknown_columns: list[str] = []
    missing_columns: list[str] = []

    @property
    def drifted(self) -> bool:
        """The dataset verdict (Holm over the p-value tests, or the share of drifted distance features)."""
        return bool(self.dataset.get("drifted"))

    @property
    def drifted_features(self) -> list[str]:
        return list(self.dataset.get("drifted_features", []))


class PerformanceReport(_Result):
    name: str
    version: str
    window: MonitoringWindow
    performance: dict[str, Any]
    """task, n_labelled, ... and `metrics`: {name: {value, n, interval: {low, high, ...}, reason}}."""
    registered: dict[str, dict[str, Any]] = {}
    """Per live metric: live, registered, difference, registered_within_interval, ..."""

    @property
    def metrics(self) -> dict[str, float | None]:
        """Metric name -> live value (None when it could not be computed)."""
        return {name: m.get("value") for name, m in self.performance.get("metrics", {}).items()}


@dataclass(frozen=True)
class LoggerStats:
    """Counters of the background prediction logger (a snapshot)."""

    queued: int
    """Rows waiting in the queue."""
    in_flight: int
    """Rows of the batch being sent (or retried) now."""
    enqueued: int
    """Rows ever put in the queue."""
    accepted: int
    """Rows the server stored."""
    duplicates: int
    """Rows the server already had (a batch resent after a lost answer): delivered, not stored twice."""
    dropped: int
    """Rows dropped because the queue was full (the oldest, or the new one after `block_timeout`)."""
    rejected: int
    """Rows the server refused (4xx); each bad row is isolated by splitting its batch."""
    abandoned: int
    """Rows still undelivered when `close()` ran out of time."""
    batches: int
    """Requests that delivered rows."""
    retries: int
    """Sends retried after a 5xx or an unreachable server."""
    last_error: str | None
