"""The Grafana dashboards, written as code: `python scripts/dev/dashboards.py` writes
monitoring/grafana/dashboards/*.json (provisioned by monitoring/grafana/provisioning), and
`--check` fails when a file differs from what this script makes (tests/monitoring runs it).

Every panel query uses the dashboards' template variables ($service, $model, $version, ...) and
Grafana's $__rate_interval / $__range, so tests/monitoring can evaluate each one against a real
Prometheus with the variables set to "All".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "monitoring" / "grafana" / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
API = 'route!~"/metrics|/health/?|/ready"'
Panel = dict[str, Any]


# ---- building blocks ---------------------------------------------------------------------------
def target(expr: str, legend: str = "", *, instant: bool = False, ref: str = "A") -> dict[str, Any]:
    out: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    out.update({"instant": True, "range": False} if instant else {"range": True})
    return out


def _targets(queries: list[tuple[str, str]], instant: bool) -> list[dict[str, Any]]:
    return [
        target(q, legend, instant=instant, ref=chr(ord("A") + i)) for i, (q, legend) in enumerate(queries)
    ]


def timeseries(
    title: str, description: str, queries: list[tuple[str, str]], unit: str, *, w: int = 12, h: int = 8
) -> Panel:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": _targets(queries, instant=False),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"},
            },
            "overrides": [],
        },
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["mean", "max", "lastNotNull"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    description: str,
    queries: list[tuple[str, str]],
    unit: str,
    *,
    w: int = 6,
    h: int = 4,
    mappings: dict[str, tuple[str, str]] | None = None,
    steps: list[tuple[str, float | None]] | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "noValue": "no data",
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in (steps or [("green", None)])],
        },
    }
    if mappings:
        options = {
            k: {"text": text, "color": color, "index": i}
            for i, (k, (text, color)) in enumerate(mappings.items())
        }
        defaults["mappings"] = [{"type": "value", "options": options}]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": _targets(queries, instant=True),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "colorMode": "background" if mappings or steps else "value",
            "graphMode": "none",
            "justifyMode": "center",
            "textMode": "value_and_name",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def table(
    title: str, description: str, queries: list[tuple[str, str]], unit: str, *, w: int = 24, h: int = 8
) -> Panel:
    """One row per series; several queries are joined on their labels (Grafana's merge)."""
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": [{**t, "format": "table"} for t in _targets(queries, instant=True)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "refresh": 2,
        "sort": 1,
        "current": {"text": "All", "value": "$__all"},
    }


DATASOURCE_VAR = {
    "name": "datasource",
    "label": "Data source",
    "type": "datasource",
    "query": "prometheus",
    "current": {"text": "Prometheus", "value": "prometheus"},
    "hide": 0,
    "refresh": 1,
}


def layout(panels: list[Panel]) -> list[Panel]:
    """ids in order, and positions: left to right, wrapping at 24 columns; a row starts a line."""
    x = y = line = 0
    for i, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if panel["type"] == "row" or x + w > 24:
            x, y = 0, y + line
            line = 0
        panel["id"] = i
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x, line = x + w, max(line, h)
        if panel["type"] == "row":
            x, y, line = 0, y + h, 0
    return panels


def dashboard(
    uid: str, title: str, description: str, variables: list[dict[str, Any]], panels: list[Panel]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mlops", "platform"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "links": [{"type": "dashboards", "tags": ["mlops"], "asDropdown": True, "title": "MLOps dashboards"}],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": [DATASOURCE_VAR, *variables]},
        "panels": layout(panels),
    }


def quantiles(
    metric: str, selector: str, by: str, legend: str, window: str = "$__rate_interval"
) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[{window}])))",
            f"{legend} p{int(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


# ---- Platform Overview ---------------------------------------------------------------------------
def platform_overview() -> dict[str, Any]:
    sel = f'service=~"$service", route=~"$route", {API}'
    rate = f"sum by (service) (rate(mlops_http_requests_total{{{sel}}}[$__rate_interval]))"
    errors = (
        f'(sum by (service) (rate(mlops_http_requests_total{{{sel}, status=~"5.."}}[$__rate_interval])) '
        f"or {rate} * 0) / {rate}"
    )
    by_route = f"sum by (service, method, route) (rate(mlops_http_requests_total{{{sel}}}[$__range]))"
    route_errors = (
        f"(sum by (service, method, route) (rate(mlops_http_requests_total{{{sel}, "
        f'status=~"5.."}}[$__range])) '
        f"or {by_route} * 0) / {by_route}"
    )
    proc = 'job="mlops-services", service=~"$service"'
    panels = [
        row("Overview"),
        stat(
            "Service up",
            "Prometheus can scrape the service (up) — 0 means down or unreachable.",
            [('max by (service) (up{job="mlops-services", service=~"$service"})', "{{service}}")],
            "none",
            w=24,
            mappings={"0": ("DOWN", "red"), "1": ("UP", "green")},
            steps=[("red", None), ("green", 1)],
        ),
        timeseries(
            "Request rate by service",
            "API requests per second (probe and scrape routes excluded).",
            [(rate, "{{service}}")],
            "reqps",
        ),
        timeseries(
            "Error ratio (5xx) by service",
            "Share of API requests answered with 5xx. HighErrorRate fires above 5% for 5 minutes.",
            [(errors, "{{service}}")],
            "percentunit",
        ),
        row("Service level objectives"),
        timeseries(
            "Availability: error budget burn rate",
            "5xx ratio divided by the budget (0.1% for 99.9% availability): 1 spends the 30-day budget in "
            "30 days. "
            "The fast-burn page fires above 14.4 over 1h and 5m, the slow one above 6 over 6h and 30m.",
            [
                (
                    'service:mlops_slo_availability_errors:ratio_rate1h{service=~"$service"} / 0.001',
                    "{{service}} 1h",
                ),
                (
                    'service:mlops_slo_availability_errors:ratio_rate6h{service=~"$service"} / 0.001',
                    "{{service}} 6h",
                ),
            ],
            "x",
        ),
        timeseries(
            "Latency: error budget burn rate",
            "Share of API requests slower than 200 ms divided by the budget (5% for p95 < 200 ms).",
            [
                ('service:mlops_slo_latency_slow:ratio_rate1h{service=~"$service"} / 0.05', "{{service}} 1h"),
                ('service:mlops_slo_latency_slow:ratio_rate6h{service=~"$service"} / 0.05', "{{service}} 6h"),
            ],
            "x",
        ),
        row("Latency"),
        timeseries(
            "Latency p50 / p95 / p99 by service",
            "From the per-route histograms, probe and scrape routes excluded.",
            quantiles("mlops_http_request_duration_seconds", sel, "service", "{{service}}"),
            "s",
            h=9,
        ),
        timeseries(
            "Latency p95 by route",
            "95th percentile per route template.",
            [
                (
                    "histogram_quantile(0.95, sum by (service, method, route, le) "
                    f"(rate(mlops_http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
                    "{{service}} {{method}} {{route}}",
                )
            ],
            "s",
            h=9,
        ),
        table(
            "Routes: rate, errors, p50 / p95 / p99",
            "Over the dashboard's time range.",
            [
                (by_route, "rate"),
                (route_errors, "errors"),
                *[
                    (
                        f"histogram_quantile({q}, sum by (service, method, route, le) "
                        f"(rate(mlops_http_request_duration_seconds_bucket{{{sel}}}[$__range])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.95, 0.99)
                ],
            ],
            "short",
            h=10,
        ),
        row("Traffic"),
        timeseries(
            "Requests by route and status",
            "Requests per second per route template and status.",
            [
                (
                    "sum by (service, route, status) "
                    f"(rate(mlops_http_requests_total{{{sel}}}[$__rate_interval]))",
                    "{{service}} {{route}} {{status}}",
                )
            ],
            "reqps",
        ),
        timeseries(
            "Requests in flight",
            "Requests being served right now.",
            [('sum by (service) (mlops_http_requests_in_flight{service=~"$service"})', "{{service}}")],
            "short",
        ),
        row("Processes"),
        timeseries(
            "CPU by service",
            "CPU time used per second (1 = one core), summed over replicas.",
            [
                (
                    f"sum by (service) (rate(process_cpu_seconds_total{{{proc}}}[$__rate_interval]))",
                    "{{service}}",
                )
            ],
            "short",
            w=8,
        ),
        timeseries(
            "Resident memory by service",
            "Resident set size, summed over replicas.",
            [(f"sum by (service) (process_resident_memory_bytes{{{proc}}})", "{{service}}")],
            "bytes",
            w=8,
        ),
        timeseries(
            "Open file descriptors by service",
            "Per replica (the limit is process_max_fds).",
            [(f"max by (service, instance) (process_open_fds{{{proc}}})", "{{service}} {{instance}}")],
            "short",
            w=8,
        ),
    ]
    return dashboard(
        "mlops-platform-overview",
        "MLOps Platform — Overview",
        "RED metrics of the six platform services, their SLO burn rates and their processes' CPU and memory.",
        [
            query_var("service", "Service", "label_values(mlops_http_requests_total, service)"),
            query_var(
                "route", "Route", 'label_values(mlops_http_requests_total{service=~"$service"}, route)'
            ),
        ],
        panels,
    )


# ---- Model Performance ---------------------------------------------------------------------------
def model_performance() -> dict[str, Any]:
    mv = 'model=~"$model", version=~"$version"'
    by = "model, version"
    panels = [
        row("Drift and data"),
        stat(
            "Dataset drift",
            "The latest monitoring evaluation's dataset verdict against the version's reference profile "
            "(ModelDrift starts a retraining).",
            [(f"max by ({by}) (mlops_model_dataset_drift{{{mv}}})", "{{model}} v{{version}}")],
            "none",
            mappings={"0": ("no drift", "green"), "1": ("DRIFT", "red")},
            steps=[("green", None), ("red", 1)],
        ),
        stat(
            "Drifted features",
            "Share of the evaluated features that drifted.",
            [(f"max by ({by}) (mlops_model_drifted_features_share{{{mv}}})", "{{model}} v{{version}}")],
            "percentunit",
            steps=[("green", None), ("orange", 0.25), ("red", 0.5)],
        ),
        stat(
            "Predictions in the window",
            "Predictions the latest evaluation read (its window), and of them labelled ones logged.",
            [
                (f"max by ({by}) (mlops_model_window_predictions{{{mv}}})", "{{model}} v{{version}} window"),
                (f"max by ({by}) (mlops_model_labels_logged{{{mv}}})", "{{model}} v{{version}} labelled"),
            ],
            "short",
        ),
        stat(
            "Last evaluation",
            "Seconds since the latest monitoring evaluation (ModelMonitoringStale fires past 3 intervals + "
            "5m).",
            [
                (
                    f"time() - max by (model) (mlops_model_last_evaluation_timestamp_seconds{{{mv}}})",
                    "{{model}}",
                )
            ],
            "s",
        ),
        timeseries(
            "Drift score per feature",
            "Each feature's score in the latest evaluation: the p-value of ks/chisquare (drift when small), "
            "the distance of wasserstein/psi/jensenshannon (drift when large).",
            [
                (
                    f"max by ({by}, feature, method) (mlops_model_feature_drift_score{{{mv}}})",
                    "{{model}} v{{version}} {{feature}} ({{method}})",
                )
            ],
            "short",
        ),
        table(
            "Features drifted",
            "1 for a feature that drifted in the latest evaluation.",
            [(f"max by ({by}, feature) (mlops_model_feature_drifted{{{mv}}})", "drifted")],
            "none",
            w=12,
        ),
        row("Performance: live against registration"),
        timeseries(
            "Live and registered metrics",
            "The live metric over the labelled window (solid) beside the value the version was registered "
            "with; ModelPerformanceDegradation fires when the live one is more than 5% worse.",
            [
                (
                    f'max by ({by}, metric) (mlops_model_performance{{{mv}, metric=~"$metric"}})',
                    "{{model}} v{{version}} {{metric}} live",
                ),
                (
                    f'max by ({by}, metric) (mlops_model_registered_metric{{{mv}, metric=~"$metric"}})',
                    "{{model}} v{{version}} {{metric}} registered",
                ),
            ],
            "short",
            w=16,
        ),
        table(
            "Live minus registered",
            "Negative is worse for scores (accuracy, f1, roc_auc, r2), positive is worse for errors "
            "(log_loss, mae, rmse).",
            [
                (
                    f'max by ({by}, metric) (mlops_model_performance{{{mv}, metric=~"$metric"}}) '
                    f"- on ({by}, metric) "
                    f'max by ({by}, metric) (mlops_model_registered_metric{{{mv}, metric=~"$metric"}})',
                    "difference",
                )
            ],
            "short",
            w=8,
        ),
        table(
            "Monitoring alert rules firing or pending",
            "The model registry's own alert rules (GET /api/models/{name}/monitoring/alerts).",
            [
                (
                    'max by (model, rule, severity, state) (mlops_model_alert_state{model=~"$model"}) == 1',
                    "state",
                )
            ],
            "none",
        ),
        row("Serving"),
        timeseries(
            "Predictions per second by version",
            "Rows predicted by model serving, summed over replicas.",
            [
                (
                    f"sum by ({by}) (rate(mlops_serving_predictions_total{{{mv}}}[$__rate_interval]))",
                    "{{model}} v{{version}}",
                )
            ],
            "short",
        ),
        timeseries(
            "Predictions per second by deployment and variant",
            "An A/B or canary variant, or empty for the deployment's own version.",
            [
                (
                    "sum by (deployment, variant) "
                    f"(rate(mlops_serving_predictions_total{{{mv}}}[$__rate_interval]))",
                    "{{deployment}} {{variant}}",
                )
            ],
            "short",
        ),
        timeseries(
            "Prediction latency inside the model",
            "Time spent in the model's predict per request (p50 / p95 / p99).",
            quantiles("mlops_serving_model_seconds", mv, by, "{{model}} v{{version}}"),
            "s",
        ),
        timeseries(
            "Prediction request latency (HTTP)",
            "Whole prediction requests as clients see them, per route (p95).",
            [
                (
                    "histogram_quantile(0.95, sum by (route, le) "
                    "(rate(mlops_http_request_duration_seconds_bucket"
                    '{service="model_serving", route=~".*(predict|invocations|infer)"}[$__rate_interval])))',
                    "{{route}} p95",
                )
            ],
            "s",
        ),
        timeseries(
            "Prediction log and exposures: queued and dropped",
            "Serving's background queues (PredictionLogDropping fires on any prediction-log drop).",
            [
                ("sum by (queue) (mlops_serving_queue_depth)", "{{queue}} queued"),
                (
                    "sum by (queue) (increase(mlops_serving_dropped_total[$__rate_interval]))",
                    "{{queue}} dropped",
                ),
            ],
            "short",
        ),
        table(
            "Deployments: the version each serves",
            "1 per deployment and replica state.",
            [
                (
                    "max by (deployment, model, version, flavor, state) "
                    '(mlops_serving_model_info{model=~"$model"})',
                    "served",
                )
            ],
            "none",
            w=12,
        ),
    ]
    return dashboard(
        "mlops-model-performance",
        "MLOps Platform — Model Performance",
        "Per model and version: live performance against the registered metrics, drift per feature, "
        "predictions per second and prediction latency.",
        [
            query_var("model", "Model", "label_values(mlops_model_window_predictions, model)"),
            query_var(
                "version", "Version", 'label_values(mlops_model_window_predictions{model=~"$model"}, version)'
            ),
            query_var("metric", "Metric", 'label_values(mlops_model_performance{model=~"$model"}, metric)'),
        ],
        panels,
    )


# ---- Feature Store ---------------------------------------------------------------------------------
def feature_store() -> dict[str, Any]:
    fs = 'feature_set=~"$feature_set"'
    written = f"max by (feature_set) (mlops_feature_store_online_last_write_timestamp_seconds{{{fs}}})"
    fs_api = f'service="feature_store", {API}'
    lookups = "mlops_feature_store_online_lookups_total"
    panels = [
        row("Freshness"),
        timeseries(
            "Seconds since the last online write",
            "Per feature set: since the latest push or materialization job that wrote its online values.",
            [(f"time() - {written}", "{{feature_set}}")],
            "s",
        ),
        timeseries(
            "Online age against TTL",
            "Age of the latest online write divided by the feature set's TTL; FeatureSetStale fires above 1.",
            [
                (
                    f"(time() - {written}) / on (feature_set) max by (feature_set) "
                    f"(mlops_feature_store_feature_set_ttl_seconds{{{fs}}})",
                    "{{feature_set}}",
                )
            ],
            "percentunit",
        ),
        row("Online store"),
        timeseries(
            "Online lookups per second",
            "Records asked for (one per entity and feature set), by whether one was there.",
            [(f"sum by (result) (rate({lookups}[$__rate_interval]))", "{{result}}")],
            "short",
            w=8,
        ),
        stat(
            "Online hit ratio",
            "Share of online lookups that found a record, over the time range.",
            [
                (
                    f'sum(rate({lookups}{{result="found"}}[$__range])) / sum(rate({lookups}[$__range]))',
                    "hit ratio",
                )
            ],
            "percentunit",
            w=8,
            h=8,
        ),
        timeseries(
            "Rows pushed per second",
            "applied: became the online value; older: kept offline only (an online value was newer).",
            [
                (
                    "sum by (online) (rate(mlops_feature_store_pushed_rows_total[$__rate_interval]))",
                    "{{online}}",
                )
            ],
            "short",
            w=8,
        ),
        timeseries(
            "Online store errors per second",
            "Failed online store reads and writes (a failed push write answers 503 ONLINE_WRITE_FAILED).",
            [
                (
                    "sum by (op) (rate(mlops_feature_store_online_store_errors_total[$__rate_interval]))",
                    "{{op}}",
                )
            ],
            "short",
        ),
        row("API"),
        timeseries(
            "Requests per second by route",
            "Feature store API requests per route template.",
            [
                (
                    f"sum by (route) (rate(mlops_http_requests_total{{{fs_api}}}[$__rate_interval]))",
                    "{{route}}",
                )
            ],
            "reqps",
        ),
        timeseries(
            "Latency p95 by route",
            "Online serving (GET /api/features/serve and the feature services) is the hot path.",
            [
                (
                    "histogram_quantile(0.95, sum by (route, le) "
                    f"(rate(mlops_http_request_duration_seconds_bucket{{{fs_api}}}[$__rate_interval])))",
                    "{{route}}",
                )
            ],
            "s",
        ),
    ]
    return dashboard(
        "mlops-feature-store",
        "MLOps Platform — Feature Store",
        "Freshness of the online store per feature set, online lookups and pushes, and the API.",
        [
            query_var(
                "feature_set",
                "Feature set",
                "label_values(mlops_feature_store_online_last_write_timestamp_seconds, feature_set)",
            )
        ],
        panels,
    )


# ---- Experiments & A/B -----------------------------------------------------------------------------
def experiments_ab() -> dict[str, Any]:
    ex = 'experiment=~"$experiment"'
    ab_api = f'service="ab_testing", {API}'
    panels = [
        row("Experiments"),
        table(
            "Experiments",
            "The most recently updated experiments that are not archived.",
            [(f"max by (experiment, mode, status, model) (mlops_ab_experiment_info{{{ex}}})", "experiments")],
            "none",
            w=12,
        ),
        timeseries(
            "Sample ratio mismatch p-value",
            "Chi-square of the exposed users per variant against the weights (current phase). "
            "Below 0.001 (ABSampleRatioMismatch) the assignment or the logging is broken.",
            [(f"max by (experiment) (mlops_ab_srm_p_value{{{ex}}})", "{{experiment}}")],
            "short",
        ),
        timeseries(
            "Exposed users by variant",
            "Users exposed in the experiment's current phase (a canary stage starts a phase).",
            [
                (
                    f"max by (experiment, variant) (mlops_ab_exposed_users{{{ex}}})",
                    "{{experiment}} {{variant}}",
                )
            ],
            "short",
        ),
        timeseries(
            "New exposures per second",
            "Growth of the exposed users per variant.",
            [
                (
                    "max by (experiment, variant) "
                    f"(clamp_min(deriv(mlops_ab_exposed_users{{{ex}}}[$__rate_interval]), 0))",
                    "{{experiment}} {{variant}}",
                )
            ],
            "short",
        ),
        row("Canary rollouts"),
        timeseries(
            "Canary: traffic on the candidate",
            "Percent of the traffic the current stage gives the candidate version.",
            [
                (
                    f"max by (experiment, model) (mlops_ab_canary_stage_percent{{{ex}}})",
                    "{{experiment}} ({{model}})",
                )
            ],
            "percent",
            w=8,
        ),
        stat(
            "Canary stage",
            "Index of the current stage in the canary's stages.",
            [(f"max by (experiment, model) (mlops_ab_canary_stage{{{ex}}})", "{{experiment}}")],
            "none",
            w=8,
            h=8,
        ),
        table(
            "Canary status",
            "running, rolled_back (a guardrail regressed: CanaryRolledBack) or promoted.",
            [(f"max by (experiment, model, status) (mlops_ab_canary_status{{{ex}}}) == 1", "status")],
            "none",
            w=8,
        ),
        timeseries(
            "Rollout decisions",
            "Decisions recorded by kind (advance, hold, promote, rollback, reweight) in each interval.",
            [
                (
                    "max by (experiment, kind) "
                    f"(increase(mlops_ab_rollout_decisions_total{{{ex}}}[$__rate_interval]))",
                    "{{experiment}} {{kind}}",
                )
            ],
            "short",
        ),
        table(
            "Rollout decisions so far",
            "Every decision recorded, by experiment and kind.",
            [(f"max by (experiment, model, kind) (mlops_ab_rollout_decisions_total{{{ex}}})", "decisions")],
            "none",
            w=12,
        ),
        row("API and serving"),
        timeseries(
            "Requests per second by route",
            "A/B testing API (GET /api/route is the assignment hot path, POST /api/events the outcomes).",
            [
                (
                    f"sum by (route) (rate(mlops_http_requests_total{{{ab_api}}}[$__rate_interval]))",
                    "{{route}}",
                )
            ],
            "reqps",
        ),
        timeseries(
            "Latency p95 by route",
            "A/B testing API latency per route.",
            [
                (
                    "histogram_quantile(0.95, sum by (route, le) "
                    f"(rate(mlops_http_request_duration_seconds_bucket{{{ab_api}}}[$__rate_interval])))",
                    "{{route}}",
                )
            ],
            "s",
        ),
        timeseries(
            "Predictions per second by variant",
            "Model serving's predictions per A/B or canary variant.",
            [
                (
                    "sum by (deployment, variant) "
                    '(rate(mlops_serving_predictions_total{variant!=""}[$__rate_interval]))',
                    "{{deployment}} {{variant}}",
                )
            ],
            "short",
        ),
    ]
    return dashboard(
        "mlops-experiments-ab",
        "MLOps Platform — Experiments & A/B",
        "A/B experiments and canary rollouts: exposures, sample ratio mismatch, canary stage and decisions.",
        [query_var("experiment", "Experiment", "label_values(mlops_ab_experiment_info, experiment)")],
        panels,
    )


# ---- Pipelines -------------------------------------------------------------------------------------
def pipelines() -> dict[str, Any]:
    pl = 'pipeline=~"$pipeline"'
    runs = "mlops_pipeline_runs_finished_total"
    panels = [
        row("Runs"),
        timeseries(
            "Runs finished per second by state",
            "succeeded, failed, cancelled.",
            [
                (
                    f"sum by (pipeline, state) (rate({runs}{{{pl}}}[$__rate_interval]))",
                    "{{pipeline}} {{state}}",
                )
            ],
            "short",
        ),
        table(
            "Runs in the time range",
            "Runs that ended per pipeline and state (counted by the replica that recorded the end).",
            [(f"sum by (pipeline, state) (increase({runs}{{{pl}}}[$__range]))", "runs")],
            "short",
            w=12,
        ),
        timeseries(
            "Failed runs",
            "Runs that failed in each interval (PipelineRunFailed fires on any).",
            [
                (
                    f'sum by (pipeline) (increase({runs}{{{pl}, state="failed"}}[$__rate_interval]))',
                    "{{pipeline}}",
                )
            ],
            "short",
        ),
        stat(
            "Failure ratio",
            "Failed runs over the runs that ended, in the time range.",
            [
                (
                    f'sum by (pipeline) (increase({runs}{{{pl}, state="failed"}}[$__range])) '
                    f"/ sum by (pipeline) (increase({runs}{{{pl}}}[$__range]))",
                    "{{pipeline}}",
                )
            ],
            "percentunit",
            w=12,
            h=8,
            steps=[("green", None), ("orange", 0.05), ("red", 0.25)],
        ),
        row("Tasks"),
        timeseries(
            "Task duration by kind",
            "Attempt durations, start to end (p50 / p95).",
            [
                (
                    f"histogram_quantile({q}, sum by (kind, le) "
                    "(rate(mlops_pipeline_task_duration_seconds_bucket[$__rate_interval])))",
                    f"{{{{kind}}}} p{int(q * 100)}",
                )
                for q in (0.5, 0.95)
            ],
            "s",
        ),
        timeseries(
            "Attempts finished per second",
            "By task kind and state (lost: the worker died; timed_out: past the task's timeout).",
            [
                (
                    "sum by (kind, state) (rate(mlops_pipeline_attempts_finished_total[$__rate_interval]))",
                    "{{kind}} {{state}}",
                )
            ],
            "short",
        ),
        timeseries(
            "Task queue",
            "Task instances queued (waiting for a worker), running, and waiting to retry.",
            [("max by (state) (mlops_pipeline_tasks)", "{{state}}")],
            "short",
            w=8,
        ),
        timeseries(
            "Active runs",
            "Runs queued, running or cancelling.",
            [("max by (state) (mlops_pipeline_runs)", "{{state}}")],
            "short",
            w=8,
        ),
        timeseries(
            "Scheduling",
            "Attempts handed to the executor per second, and the scheduling pass duration (p95).",
            [
                (
                    "sum by (executor) (rate(mlops_pipeline_attempts_submitted_total[$__rate_interval]))",
                    "submitted ({{executor}})",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(mlops_pipeline_scheduling_pass_seconds_bucket[$__rate_interval])))",
                    "pass p95 (s)",
                ),
            ],
            "short",
            w=8,
        ),
    ]
    return dashboard(
        "mlops-pipelines",
        "MLOps Platform — Pipelines",
        "Pipeline runs and failures, task durations, the task queue and the scheduler.",
        [query_var("pipeline", "Pipeline", "label_values(mlops_pipeline_runs_finished_total, pipeline)")],
        panels,
    )


# ---- Infrastructure (compose's exporters) ---------------------------------------------------------
def infrastructure() -> dict[str, Any]:
    db = 'datname=~"$database"'
    panels = [
        row("PostgreSQL (postgres-exporter)"),
        stat(
            "PostgreSQL up",
            "The exporter can reach the server.",
            [("max(pg_up)", "up")],
            "none",
            w=4,
            mappings={"0": ("DOWN", "red"), "1": ("UP", "green")},
            steps=[("red", None), ("green", 1)],
        ),
        timeseries(
            "Connections by database",
            "Backends connected.",
            [(f"sum by (datname) (pg_stat_database_numbackends{{{db}}})", "{{datname}}")],
            "short",
            w=10,
        ),
        timeseries(
            "Transactions per second",
            "Commits and rollbacks per database.",
            [
                (
                    f"sum by (datname) (rate(pg_stat_database_xact_commit{{{db}}}[$__rate_interval]))",
                    "{{datname}} commit",
                ),
                (
                    f"sum by (datname) (rate(pg_stat_database_xact_rollback{{{db}}}[$__rate_interval]))",
                    "{{datname}} rollback",
                ),
            ],
            "short",
            w=10,
        ),
        timeseries(
            "Database size",
            "Per database.",
            [(f"sum by (datname) (pg_database_size_bytes{{{db}}})", "{{datname}}")],
            "bytes",
        ),
        timeseries(
            "Cache hit ratio and deadlocks",
            "Blocks found in shared buffers over all blocks read; deadlocks per second.",
            [
                (
                    f"sum by (datname) (rate(pg_stat_database_blks_hit{{{db}}}[$__rate_interval])) / "
                    f"(sum by (datname) (rate(pg_stat_database_blks_hit{{{db}}}[$__rate_interval])) + "
                    f"sum by (datname) (rate(pg_stat_database_blks_read{{{db}}}[$__rate_interval])))",
                    "{{datname}} hit ratio",
                ),
                (
                    f"sum by (datname) (rate(pg_stat_database_deadlocks{{{db}}}[$__rate_interval]))",
                    "{{datname}} deadlocks/s",
                ),
            ],
            "short",
        ),
        row("Redis (redis-exporter)"),
        stat(
            "Redis up",
            "The exporter can reach the server.",
            [("max(redis_up)", "up")],
            "none",
            w=4,
            mappings={"0": ("DOWN", "red"), "1": ("UP", "green")},
            steps=[("red", None), ("green", 1)],
        ),
        timeseries(
            "Commands per second",
            "Online features, caches and the Celery queue.",
            [("sum(rate(redis_commands_processed_total[$__rate_interval]))", "commands/s")],
            "short",
            w=10,
        ),
        timeseries(
            "Memory and clients",
            "Used memory (bytes) and connected clients.",
            [("max(redis_memory_used_bytes)", "used memory"), ("max(redis_connected_clients)", "clients")],
            "short",
            w=10,
        ),
        timeseries(
            "Keyspace hit ratio and keys",
            "Lookups that found their key; keys per database.",
            [
                (
                    "sum(rate(redis_keyspace_hits_total[$__rate_interval])) / "
                    "(sum(rate(redis_keyspace_hits_total[$__rate_interval])) "
                    "+ sum(rate(redis_keyspace_misses_total[$__rate_interval])))",
                    "hit ratio",
                ),
                ("sum by (db) (redis_db_keys)", "{{db}} keys"),
            ],
            "short",
            w=24,
        ),
        row("MinIO (/minio/v2/metrics/cluster)"),
        stat(
            "MinIO nodes online",
            "Nodes of the cluster that answer.",
            [("max(minio_cluster_nodes_online_total)", "online")],
            "none",
            w=4,
        ),
        timeseries(
            "Capacity",
            "Usable free and total capacity.",
            [
                ("max(minio_cluster_capacity_usable_free_bytes)", "free"),
                ("max(minio_cluster_capacity_usable_total_bytes)", "total"),
            ],
            "bytes",
            w=10,
        ),
        timeseries(
            "Bucket usage",
            "Artifacts and datasets per bucket.",
            [("max by (bucket) (minio_bucket_usage_total_bytes)", "{{bucket}}")],
            "bytes",
            w=10,
        ),
        timeseries(
            "S3 requests per second",
            "By API call, and the ones that failed.",
            [
                ("sum by (api) (rate(minio_s3_requests_total[$__rate_interval]))", "{{api}}"),
                ("sum(rate(minio_s3_requests_errors_total[$__rate_interval]))", "errors"),
            ],
            "reqps",
            w=24,
        ),
    ]
    return dashboard(
        "mlops-infrastructure",
        "MLOps Platform — Infrastructure",
        "PostgreSQL, Redis and MinIO as docker-compose.platform.yml runs them (postgres-exporter, "
        "redis-exporter, MinIO's own metrics).",
        [query_var("database", "Database", "label_values(pg_stat_database_numbackends, datname)")],
        panels,
    )


DASHBOARDS = {
    "platform-overview.json": platform_overview,
    "model-performance.json": model_performance,
    "feature-store.json": feature_store,
    "experiments-ab.json": experiments_ab,
    "pipelines.json": pipelines,
    "infrastructure.json": infrastructure,
}


def rendered() -> dict[str, str]:
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file differs; write nothing")
    args = parser.parse_args()
    stale = []
    for name, text in rendered().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run python scripts/dev/dashboards.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
