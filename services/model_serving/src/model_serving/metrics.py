"""Serving's Prometheus series (beside the kit's HTTP RED metrics, which time whole requests):

- `mlops_serving_predictions_total{deployment,model,version,variant}` rows predicted
- `mlops_serving_model_seconds{deployment,model,version}` time inside the model only
- `mlops_serving_errors_total{deployment,kind}` failed requests by kind (input, not_loaded,
  features, protocol)
- `mlops_serving_model_info{deployment,model,version,flavor}` 1 for what each deployment serves
- `mlops_serving_swaps_total{deployment}`, `mlops_serving_model_load_seconds{deployment}`
- `mlops_serving_queue_depth{queue}` and `mlops_serving_dropped_total{queue}` for the prediction
  log, the exposures and the shadow queue (a drop never fails a prediction; it is counted here)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mlops_kit.observability import Metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from model_serving.predict.service import Predictor, Scored
from model_serving.runtime.manager import Runtime
from model_serving.runtime.state import Live, Slot

MODEL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServingMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.service = metrics.service
        self.predictions = metrics.counter(
            "mlops_serving_predictions_total", "Rows predicted", ["deployment", "model", "version", "variant"]
        )
        self.model_seconds = metrics.histogram(
            "mlops_serving_model_seconds",
            "Time inside the model per request",
            ["deployment", "model", "version"],
            buckets=MODEL_BUCKETS,
        )
        self.errors = metrics.counter(
            "mlops_serving_errors_total", "Failed prediction requests", ["deployment", "kind"]
        )
        self.swaps = metrics.counter("mlops_serving_swaps_total", "Versions switched in", ["deployment"])
        self.load_seconds = metrics.gauge(
            "mlops_serving_model_load_seconds",
            "Download, load and warm-up time of the version served",
            ["deployment"],
        )
        self._children: dict[tuple[str, str, str, str], Any] = {}

    def counted(self, live: Live, scored: Scored) -> None:
        key = (live.spec.name, live.spec.model, scored.version, scored.variant or "")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.predictions.labels(self.service, *key)
        child.inc()

    def timed(self, live: Live, version: str, seconds: float) -> None:
        self.model_seconds.labels(self.service, live.spec.name, live.spec.model, version).observe(seconds)

    def error(self, deployment: str, kind: str) -> None:
        self.errors.labels(self.service, deployment, kind).inc()

    def swapped(self, live: Live, _previous: Slot | None, slot: Slot) -> None:
        self.swaps.labels(self.service, live.spec.name).inc()
        self.load_seconds.labels(self.service, live.spec.name).set(slot.load_seconds)


class RuntimeCollector(Collector):
    """Read at scrape time: what is loaded, and the background queues."""

    def __init__(
        self, service: str, runtime: Runtime, predictor: Predictor, log_stats: Callable[[], tuple[int, int]]
    ) -> None:
        self.service, self.runtime, self.predictor, self.log_stats = service, runtime, predictor, log_stats

    def collect(self) -> Iterator[Any]:
        info = GaugeMetricFamily(
            "mlops_serving_model_info",
            "The version each deployment serves (1)",
            labels=["service", "deployment", "model", "version", "flavor", "state"],
        )
        for live in list(self.runtime.live.values()):
            current = live.current
            version = current.version if current else ""
            flavor = current.loaded.flavor if current else ""
            info.add_metric([self.service, live.spec.name, live.spec.model, version, flavor, live.state], 1)
        yield info
        queued, dropped = self.log_stats()
        exposures = self.predictor.exposures
        depth = GaugeMetricFamily(
            "mlops_serving_queue_depth", "Items waiting in a background queue", labels=["service", "queue"]
        )
        drops = CounterMetricFamily(
            "mlops_serving_dropped", "Items a full background queue dropped", labels=["service", "queue"]
        )
        depth.add_metric([self.service, "prediction_log"], queued)
        drops.add_metric([self.service, "prediction_log"], dropped)
        depth.add_metric([self.service, "shadow"], self.predictor.shadow.depth())
        drops.add_metric([self.service, "shadow"], self.predictor.shadow.dropped)
        if exposures is not None:
            depth.add_metric([self.service, "exposures"], exposures.depth())
            drops.add_metric([self.service, "exposures"], exposures.dropped)
        yield depth
        yield drops
