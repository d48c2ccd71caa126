"""Domain metrics of online serving and push (on the app's registry, label children bound once),
and the online store's freshness per feature set:

- `mlops_feature_store_online_last_write_timestamp_seconds{feature_set}` when the online values of
  the feature set were last written: the latest push this replica answered, or the latest
  materialization job that succeeded (from the database, any replica's); the rules take the max
  over replicas, and `time() - ...` is the seconds since the last online write;
- `mlops_feature_store_feature_set_ttl_seconds{feature_set}` the feature set's TTL (when it has one):
  online values older than it are served as expired.

Both are read at scrape time (cached) for the `max_feature_sets` most recently updated feature sets.
"""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

from mlops_kit.db import Database
from mlops_kit.observability import CachedCollector, Metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from feature_store.tables import FeatureSet, MaterializationJob


class OnlineMetrics:
    def __init__(self, metrics: Metrics) -> None:
        service = metrics.service
        lookups = metrics.counter(
            "mlops_feature_store_online_lookups_total",
            "Online store records asked for (one per entity and feature set), by whether one was there",
            ["result"],
        )
        self.found = lookups.labels(service, "found")
        self.not_found = lookups.labels(service, "not_found")
        pushed = metrics.counter(
            "mlops_feature_store_pushed_rows_total",
            "Rows pushed, by whether they became the online value (not older than the stored one)",
            ["online"],
        )
        self.pushed_applied = pushed.labels(service, "applied")
        self.pushed_older = pushed.labels(service, "older")
        errors = metrics.counter(
            "mlops_feature_store_online_store_errors_total", "Failed online store reads and writes", ["op"]
        )
        self.read_errors = errors.labels(service, "read")
        self.write_errors = errors.labels(service, "write")
        # feature set -> unix time of the latest push written to the online store by this replica
        self.last_push: dict[str, float] = {}

    def pushed(self, feature_set: str) -> None:
        self.last_push[feature_set] = time.time()


class FreshnessCollector(CachedCollector):
    def __init__(
        self,
        db: Database,
        service: str,
        online: OnlineMetrics,
        *,
        cache_seconds: float = 5.0,
        limit: int = 500,
    ) -> None:
        super().__init__(cache_seconds)
        self.db, self.service, self.online, self.limit = db, service, online, limit

    def read(self) -> list[Metric]:
        written = GaugeMetricFamily(
            "mlops_feature_store_online_last_write_timestamp_seconds",
            "When the feature set's online values were last written (push or materialization; unix time)",
            labels=["service", "feature_set"],
        )
        ttl = GaugeMetricFamily(
            "mlops_feature_store_feature_set_ttl_seconds",
            "The feature set's TTL: older online values are served as expired",
            labels=["service", "feature_set"],
        )
        with self.db.session(write=False) as session:
            sets = session.execute(
                select(FeatureSet.id, FeatureSet.name, FeatureSet.ttl_seconds)
                .order_by(FeatureSet.updated_at.desc())
                .limit(self.limit)
            ).all()
            jobs = dict(
                session.execute(
                    select(MaterializationJob.feature_set_id, func.max(MaterializationJob.finished_at))
                    .where(
                        MaterializationJob.status == "SUCCEEDED",
                        MaterializationJob.feature_set_id.in_([fid for fid, _, _ in sets]),
                    )
                    .group_by(MaterializationJob.feature_set_id)
                ).all()
            )
        for fid, name, ttl_seconds in sets:
            finished = jobs.get(fid)
            times = [t for t in (self.online.last_push.get(name), finished and _utc(finished)) if t]
            if times:
                written.add_metric([self.service, name], max(times))
            if ttl_seconds:
                ttl.add_metric([self.service, name], float(ttl_seconds))
        return [written, ttl]


def _utc(at: Any) -> float:
    # SQLite hands back naive datetimes; they are UTC
    return float((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())
