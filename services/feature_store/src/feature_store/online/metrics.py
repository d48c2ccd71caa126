"""Domain metrics of online serving and push (on the app's registry, label children bound once)."""

from __future__ import annotations

from fastapi import FastAPI
from mlops_kit.observability import Metrics


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


def online_metrics(app: FastAPI) -> OnlineMetrics:
    found: OnlineMetrics | None = getattr(app.state, "online_metrics", None)
    if found is None:
        found = app.state.online_metrics = OnlineMetrics(app.state.metrics)
    return found
