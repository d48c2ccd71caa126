"""Tracking client, metrics: logging points in batches, latest values and histories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from mlops_client._base import ServiceClient
from mlops_client.tracking_common import (
    HISTORY_FALLBACK_LIMIT,
    METRICS_PER_REQUEST,
    batches,
    follow,
    now_ms,
    quote_part,
    run_path,
)
from mlops_client.tracking_models import LatestMetric, Metric, MetricPoint, TokenPage, wire_number


class MetricsMixin(ServiceClient):
    # metrics ------------------------------------------------------------------------------------
    def log_metric(
        self,
        experiment_id: str,
        run_id: str,
        key: str,
        value: float,
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> int:
        return self.log_metrics(experiment_id, run_id, {key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self,
        experiment_id: str,
        run_id: str,
        metrics: Mapping[str, float],
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> int:
        """Log several metrics at one step; NaN and ±inf are fine. Returns how many were stored."""
        at = timestamp if timestamp is not None else now_ms()
        points = (Metric(key=k, value=float(v), step=step, timestamp=at) for k, v in metrics.items())
        return self.log_metric_points(experiment_id, run_id, points)

    def log_metric_points(self, experiment_id: str, run_id: str, points: Iterable[Metric]) -> int:
        """Log points of any keys and steps: 1000 per request, each request all-or-nothing.

        Never retried automatically (a replay after a lost answer would store the points twice).
        """
        logged = 0
        for batch in batches(points, METRICS_PER_REQUEST):
            now = now_ms()
            body = {
                "metrics": [
                    {
                        "key": p.key,
                        "value": wire_number(p.value),
                        "step": p.step,
                        "timestamp": p.timestamp if p.timestamp is not None else now,
                    }
                    for p in batch
                ]
            }
            path = f"{run_path(experiment_id, run_id)}/metrics"
            logged += int(self.request("POST", path, json=body, idempotent=False).json()["logged"])
        return logged

    def latest_metrics(self, experiment_id: str, run_id: str) -> dict[str, LatestMetric]:
        data = self.get_json(f"{run_path(experiment_id, run_id)}/metrics")
        return {key: LatestMetric.model_validate(point) for key, point in data.items()}

    def iter_metric_history(
        self, experiment_id: str, run_id: str, key: str, *, page_size: int = 10_000
    ) -> Iterator[MetricPoint]:
        """Every logged point of one metric, in step order, page after page."""
        if "/" in key:  # the per-run route can't match an encoded "/"; the multi-run one takes a query
            yield from self.metric_histories([run_id], key)[run_id]
            return
        path = f"{run_path(experiment_id, run_id)}/metrics/{quote_part(key)}/history"

        def fetch(token: str | None) -> TokenPage[MetricPoint]:
            data = self.get_json(path, limit=page_size, page_token=token)
            return TokenPage[MetricPoint].model_validate(data)

        yield from follow(fetch)

    def metric_history(
        self, experiment_id: str, run_id: str, key: str, *, page_size: int = 10_000
    ) -> list[MetricPoint]:
        return list(self.iter_metric_history(experiment_id, run_id, key, page_size=page_size))

    def metric_histories(
        self, run_ids: Sequence[str], key: str, *, limit: int = HISTORY_FALLBACK_LIMIT
    ) -> dict[str, list[MetricPoint]]:
        """One metric's history for several runs (for plotting them together): run id → points."""
        data = self.get_json("/api/metrics/history", run_ids=list(run_ids), key=key, limit=limit)
        return {s["run_id"]: [MetricPoint.model_validate(p) for p in s["points"]] for s in data["series"]}
