"""Prometheus metrics of model monitoring, read from the database (each model's latest evaluation and
its rules' states), so every replica's /metrics reports the same values whichever one evaluated.
The read is cached for `cache_seconds`; a failed read serves the previous values.

Label cardinality is bounded: at most `max_features` features per model are exported (those named
by the model's drift rules and drift configuration first, then by name); the count left out is
`mlops_model_drift_features_dropped`. Metrics and states are the configured ones (a rule has four
`state` series), performance metrics a fixed set of names.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from mlops_kit.db import Database
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from model_registry.monitoring import alert_repository as arepo
from model_registry.monitoring import alerts
from model_registry.monitoring.performance import registered_values
from model_registry.monitoring.times import utc

log = logging.getLogger("mlops.registry.monitoring")

STATES = (alerts.INACTIVE, alerts.PENDING, alerts.FIRING, alerts.RESOLVED)
_VERSION = ["service", "model", "version"]
FAMILIES: dict[str, tuple[str, list[str]]] = {
    "mlops_model_feature_drift_score": (
        "A feature's drift score in the latest evaluation: the p-value of ks/chisquare, the distance "
        "of wasserstein/psi/jensenshannon (absent with insufficient data)",
        [*_VERSION, "feature", "method"],
    ),
    "mlops_model_feature_drifted": (
        "1 when the feature drifted in the latest evaluation",
        [*_VERSION, "feature"],
    ),
    "mlops_model_drift_features_dropped": (
        "features of the latest evaluation left out of the per-feature series (the cap per model)",
        _VERSION,
    ),
    "mlops_model_dataset_drift": ("1 when the dataset verdict of the latest evaluation is drift", _VERSION),
    "mlops_model_drifted_features_share": ("share of the evaluated features that drifted", _VERSION),
    "mlops_model_performance": (
        "a live performance metric over the latest evaluation's labelled window",
        [*_VERSION, "metric"],
    ),
    "mlops_model_registered_metric": (
        "a performance metric registered with the watched version (what the live one is compared with)",
        [*_VERSION, "metric"],
    ),
    "mlops_model_predictions_logged": ("predictions logged for the watched version", _VERSION),
    "mlops_model_labels_logged": ("labelled predictions logged for the watched version", _VERSION),
    "mlops_model_window_predictions": ("predictions in the latest evaluation's window", _VERSION),
    "mlops_model_last_evaluation_timestamp_seconds": ("when the latest evaluation ran (unix time)", _VERSION),
    "mlops_model_monitoring_interval_seconds": ("the configured evaluation interval", ["service", "model"]),
    "mlops_model_alert_state": (
        "1 for the alert rule's current state (inactive, pending, firing, resolved), 0 for the others",
        ["service", "model", "rule", "severity", "state"],
    ),
}


def _families() -> dict[str, GaugeMetricFamily]:
    return {name: GaugeMetricFamily(name, doc, labels=labels) for name, (doc, labels) in FAMILIES.items()}


def _preferred(config: dict[str, Any]) -> list[str]:
    named = [alerts.feature_of(r["metric_name"]) for r in config.get("alert_rules", [])]
    return [f for f in named if f] + list(config.get("drift", {}).get("features", {}))


def _features(
    out: dict[str, GaugeMetricFamily],
    labels: list[str],
    result: dict[str, Any],
    config: dict[str, Any],
    cap: int,
) -> None:
    features = {f["feature"]: f for f in result.get("features", [])}
    order = list(dict.fromkeys([f for f in _preferred(config) if f in features] + sorted(features)))
    for name in order[:cap]:
        feature = features[name]
        if feature["score"] is not None:
            out["mlops_model_feature_drift_score"].add_metric(
                [*labels, name, feature["method"]], feature["score"]
            )
            out["mlops_model_feature_drifted"].add_metric([*labels, name], float(feature["drifted"]))
    out["mlops_model_drift_features_dropped"].add_metric(labels, float(max(0, len(order) - cap)))


def _gauge(out: dict[str, GaugeMetricFamily], name: str, labels: list[str], value: float | None) -> None:
    if value is not None:
        out[name].add_metric(labels, float(value))


def _evaluation(
    out: dict[str, GaugeMetricFamily], service: str, model: str, row: Any, config: dict[str, Any], cap: int
) -> None:
    labels = [service, model, row.version or ""]
    result: dict[str, Any] = row.result
    values = result.get("values", {})
    _features(out, labels, result, config, cap)
    _gauge(out, "mlops_model_dataset_drift", labels, values.get(alerts.DATASET_DRIFT))
    _gauge(out, "mlops_model_drifted_features_share", labels, values.get(alerts.DRIFTED_SHARE))
    for metric in alerts.PERFORMANCE_METRICS:
        _gauge(out, "mlops_model_performance", [*labels, metric], values.get(metric))
    logged = result.get("logged", {})
    _gauge(out, "mlops_model_predictions_logged", labels, logged.get("predictions"))
    _gauge(out, "mlops_model_labels_logged", labels, logged.get("labels"))
    _gauge(out, "mlops_model_window_predictions", labels, (result.get("window") or {}).get("count"))
    _gauge(out, "mlops_model_last_evaluation_timestamp_seconds", labels, utc(row.evaluated_at).timestamp())
    _gauge(out, "mlops_model_monitoring_interval_seconds", [service, model], result.get("interval_seconds"))


def _registered(out: dict[str, GaugeMetricFamily], labels: list[str], metrics: dict[str, Any]) -> None:
    # only the performance metrics monitoring computes live (a bounded set), under their live names
    values = registered_values(metrics)
    for metric in alerts.PERFORMANCE_METRICS:
        if metric in values:
            out["mlops_model_registered_metric"].add_metric([*labels, metric], values[metric])


class MonitoringCollector(Collector):
    def __init__(self, db: Database, service: str, *, cache_seconds: float = 5.0, max_features: int = 50):
        self.db = db
        self.service = service
        self.cache_seconds = cache_seconds
        self.max_features = max_features
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._at = float("-inf")

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self.cache_seconds:
                try:
                    self._cached = self.read()
                except Exception:
                    log.warning(
                        "reading the monitoring metrics failed; serving the previous ones", exc_info=True
                    )
                self._at = time.monotonic()
            cached = self._cached
        yield from cached

    def read(self) -> list[Metric]:
        out = _families()
        severities: dict[tuple[str, str], str] = {}
        with self.db.session(write=False) as session:
            exported = arepo.exported(session)
            for model, row, config in exported:
                _evaluation(out, self.service, model, row, config, self.max_features)
                for rule in config.get("alert_rules", []):
                    severities[(model, rule["name"])] = rule.get("severity", "medium")
            watched = [(model, row.version) for model, row, _ in exported if row.version]
            registered = arepo.registered_metrics(session, watched)
            states = arepo.all_states(session)
        for (model, version), metrics in registered.items():
            _registered(out, [self.service, model, version], metrics)
        for model, state in states:
            severity = severities.get((model, state.rule))
            if severity is None:
                continue
            for name in STATES:
                out["mlops_model_alert_state"].add_metric(
                    [self.service, model, state.rule, severity, name], float(state.state == name)
                )
        return list(out.values())
