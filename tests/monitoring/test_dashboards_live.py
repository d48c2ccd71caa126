"""Every panel query of every Grafana dashboard returns data from a real Prometheus (Debian's
`prometheus`, scraping every second with the repository's rules loaded) that scrapes the six
services started as real processes, after traffic through each of them: a model registered with
its metrics and reference profile, monitored and evaluated; served behind an A/B experiment;
features pushed and served; pipeline runs that succeed and fail; an A/B experiment and a canary.

Not evaluated: the Infrastructure dashboard, whose series come from the PostgreSQL, Redis and
MinIO exporters that only docker-compose.platform.yml runs (its queries are still parsed by
promtool in `make check-monitoring`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import runpy
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
import yaml
from mlops_client import (
    AbTestingClient,
    FeatureStoreClient,
    MonitoringClient,
    PipelinesClient,
    RegistryClient,
)
from mlops_kit.testing.backends import free_port, wait_until
from mlops_kit.testing.process import ServiceProcess
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
COMPOSE_ONLY = {"infrastructure.json"}  # postgres-exporter, redis-exporter, MinIO: compose runs them
SERVICES = [
    "model_registry",
    "feature_store",
    "experiment_tracking",
    "pipeline_orchestrator",
    "ab_testing",
    "model_serving",
]
FEATURES = ["f0", "f1", "f2", "f3"]
# Grafana's built-in intervals, wide enough to hold all of the test's traffic
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__range": "5m", "$__interval": "15s"}


def monitor() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "scripts" / "dev" / "monitor.py"), run_name="monitor_under_test")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("observed")
    ports = {module: free_port() for module in SERVICES}
    urls = {module: f"http://127.0.0.1:{port}" for module, port in ports.items()}
    env = {
        "MLOPS_DATA_DIR": str(tmp / "data"),
        "MLOPS_LOG_JSON": "false",
        **{f"MLOPS_{module.upper()}_URL": url for module, url in urls.items()},
        "MLOPS_MODEL_SERVING_WATCH_SECONDS": "0.2",
        "MLOPS_MODEL_SERVING_RESYNC_SECONDS": "0.5",
        "MLOPS_MODEL_SERVING_LOG_FLUSH_SECONDS": "0.2",
        "MLOPS_AB_TESTING_CONTROLLER_INTERVAL_SECONDS": "0.5",
    }
    processes = [ServiceProcess(m, env=env, tmp=tmp, port=ports[m], startup_timeout=120) for m in SERVICES]
    with ThreadPoolExecutor(len(processes)) as pool:
        started = list(pool.map(_start, processes))
    try:
        if not all(started):
            pytest.fail("a service did not start:\n" + "\n".join(p.log_tail(1500) for p in processes))
        yield urls
    finally:
        for process in processes:
            process.stop()


def _start(process: ServiceProcess) -> bool:
    try:
        process.start()
    except RuntimeError:
        return False
    return True


@pytest.fixture(scope="module")
def prometheus(platform: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "Debian's `prometheus` binary is needed (apt-get install prometheus; `make check-monitoring` "
            "run as root installs it)"
        )
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    rules = sorted(str(p) for p in (ROOT / "monitoring" / "prometheus" / "rules").glob("*.rules.yml"))
    targets = [(module, url.removeprefix("http://")) for module, url in platform.items()]
    config = monitor()["prometheus_config"](targets, rule_files=rules, alertmanager=None, interval="1s")
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, timeout=60, what="prometheus"
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


# ---- traffic through each service ----------------------------------------------------------------
def model_traffic(urls: dict[str, str], tmp: Path) -> None:
    """churn v1 (registered accuracy 0.99, a reference profile, monitoring with a rule) and v2;
    an A/B experiment between them; served by a deployment; predictions logged with drifted
    features and poor labels; evaluated."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, len(FEATURES)))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    path = tmp / "model.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path)
    registry = RegistryClient(urls["model_registry"])
    for _ in range(2):
        registry.register_model("churn", framework="sklearn", path=path, metrics={"accuracy": 0.99})
    registry.set_alias("churn", "production", "1")
    monitoring = MonitoringClient(urls["model_registry"])
    reference = [
        {**dict(zip(FEATURES, map(float, row), strict=True)), "prediction": int(t)}
        for row, t in zip(X, y, strict=True)
    ]
    monitoring.set_reference("churn", "1", reference)
    monitoring.set_config(
        "churn",
        {
            "version": "1",
            "window": None,
            "monitoring_interval_seconds": 3600,
            "alert_rules": [
                {
                    "name": "accuracy_drop",
                    "alert_type": "performance",
                    "severity": "high",
                    "metric_name": "accuracy",
                    "operator": "less_than",
                    "threshold": 0.9,
                }
            ],
        },
    )
    experiments = AbTestingClient(urls["ab_testing"])
    experiments.create_experiment(
        key="churn-ab",
        model_name="churn",
        variants=[
            {"name": "control", "weight": 0.5, "model_version": "1"},
            {"name": "treatment", "weight": 0.5, "model_version": "2"},
        ],
        metrics=[{"name": "converted", "type": "binary"}],
    )
    experiments.start("churn-ab")
    serving = urls["model_serving"]
    created = httpx.post(
        f"{serving}/api/deployments", json={"name": "churn-api", "model": "churn"}, timeout=30
    )
    assert created.status_code == 201, created.text
    wait_until(lambda: _both_variants(serving), timeout=60, what="churn-api serving both variants")
    for i in range(40):
        body = {"user_id": f"user-{i}", "instances": [list(map(float, X[i]))]}
        answer = httpx.post(f"{serving}/api/deployments/churn-api/predict", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
    shifted = X + 2.5  # drifted: every feature moved
    rows = [
        {
            "request_id": f"obs-{i}",
            "features": dict(zip(FEATURES, map(float, row), strict=True)),
            "prediction": 1,
        }
        for i, row in enumerate(shifted)
    ]
    monitoring.log_predictions_sync("churn", rows, version="1")
    monitoring.log_labels("churn", {f"obs-{i}": int(t) for i, t in enumerate(y)})
    evaluation = monitoring.evaluate("churn")
    assert evaluation["metrics"].get("accuracy") is not None, evaluation


def _both_variants(serving: str) -> bool:
    status = httpx.get(f"{serving}/api/deployments/churn-api", timeout=5).json()["status"]
    return bool(status["loaded"]) and len(status["variants"]) == 2


def feature_traffic(urls: dict[str, str], *, first: bool) -> None:
    fs = FeatureStoreClient(urls["feature_store"])
    if first:
        fs.create_entity("customer", join_keys=["customer_id"])
        fs.create_feature_set("customer_features", {"age": "int"}, entity="customer", ttl="1h")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fs.push("customer_features", [{"customer_id": "c_1", "age": 31, "event_timestamp": now}])
    fs.get_online_features(["c_1", "nobody"], features=["customer_features:age"])


def pipeline_traffic(urls: dict[str, str]) -> None:
    pipelines = PipelinesClient(urls["pipeline_orchestrator"])
    runs = []
    for name, command in (("obs-ok", "echo ok"), ("obs-fail", "exit 3")):
        # the same definition again is the same version; no cache, so every run runs its task
        task = {"name": "step", "kind": "shell", "command": command, "cache": False}
        pipelines.create_pipeline({"name": name, "tasks": [task]})
        runs.append(pipelines.trigger(name).id)
    states = [pipelines.wait_for_run(r, timeout=60, raise_on_failure=False).state for r in runs]
    assert states == ["succeeded", "failed"], states


def ab_traffic(urls: dict[str, str]) -> None:
    """An A/B test with users routed, and a canary of another model (no traffic: stage 0)."""
    ab = AbTestingClient(urls["ab_testing"])
    ab.create_experiment(
        key="obs-ab",
        variants=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        metrics=[{"name": "click", "type": "binary"}],
    )
    ab.start("obs-ab")
    ab.route_batch("obs-ab", [f"user-{i}" for i in range(200)])
    registry = RegistryClient(urls["model_registry"])
    for _ in range(2):
        registry.register_model("ranker", framework="sklearn")
    registry.set_alias("ranker", "production", "1")
    ab.create_experiment(
        key="ranker-canary",
        model_name="ranker",
        mode="canary",
        variants=[
            {"name": "baseline", "weight": 0.5, "model_version": "1"},
            {"name": "candidate", "weight": 0.5, "model_version": "2"},
        ],
        metrics=[{"name": "latency_ms", "type": "continuous", "direction": "lower"}],
        guardrail_metrics=["latency_ms"],
        canary={"stages": [10, 50, 100], "stage_seconds": 3600, "min_samples": 100},
    )
    ab.start("ranker-canary")


def tracking_traffic(urls: dict[str, str]) -> None:
    answer = httpx.post(
        f"{urls['experiment_tracking']}/api/experiments", json={"name": "observed"}, timeout=10
    )
    assert answer.status_code in (200, 201), answer.text


# ---- the dashboards' queries ---------------------------------------------------------------------
def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with the variables set to All) of every evaluated panel."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        if path.name in COMPOSE_ONLY:
            continue
        dashboard = json.loads(path.read_text())
        variables = {v["name"] for v in dashboard["templating"]["list"] if v["type"] == "query"}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                out.append(
                    (path.name, f"{panel['title']} [{target['refId']}]", resolve(target["expr"], variables))
                )
    return out


def resolve(expr: str, variables: set[str]) -> str:
    for name, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(name, value)
    expr = expr.replace("${datasource}", "prometheus")
    return re.sub(r"\$(\w+)", lambda m: ".*" if m.group(1) in variables else m.group(0), expr)


def answer(prometheus: str, expr: str) -> bool | str:
    """True with a finite sample, False without one, the error when Prometheus refuses the query."""
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    result = response.json()["data"]["result"]
    return any(math.isfinite(float(series["value"][1])) for series in result)


@pytest.fixture(scope="module")
def traffic(
    platform: dict[str, str], prometheus: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Traffic through every service, in two rounds: a counter or histogram series is born with
    its first event, so Prometheus' first sample of it already holds that event, and rates need
    a second round once the first has been scraped."""
    model_traffic(platform, tmp_path_factory.mktemp("model"))
    feature_traffic(platform, first=True)
    pipeline_traffic(platform)
    ab_traffic(platform)
    tracking_traffic(platform)
    born = (
        "count(mlops_pipeline_task_duration_seconds_count) and on () "
        'count(mlops_http_request_duration_seconds_count{service="feature_store", route=~".*/push"})'
    )
    wait_until(lambda: answer(prometheus, born) is True, timeout=30, what="the first round scraped")
    feature_traffic(platform, first=False)
    pipeline_traffic(platform)
    return platform


def test_every_dashboard_panel_returns_data(traffic: dict[str, str], prometheus: str) -> None:
    queries = panel_queries()
    assert {name for name, _, _ in queries} == {p.name for p in DASHBOARDS.glob("*.json")} - COMPOSE_ONLY
    left, refused = list(queries), []

    def all_answered() -> bool:
        for query in list(left):
            got = answer(prometheus, query[2])
            if isinstance(got, str):
                refused.append((*query, got))
            if got:
                left.remove(query)
        return not left

    with contextlib.suppress(TimeoutError):  # the assertion below names what is missing
        wait_until(all_answered, timeout=90, what="every panel's data", interval=1.0)
    assert not refused, "queries Prometheus refused:\n" + "\n".join(f"  {q}" for q in refused)
    assert not left, "panels without data:\n" + "\n".join(
        f"  {d}: {title}: {expr}" for d, title, expr in left
    )


def values(prometheus: str, expr: str) -> list[tuple[dict[str, str], float]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.status_code == 200, response.text
    return [(s["metric"], float(s["value"][1])) for s in response.json()["data"]["result"]]


def scraped(prometheus: str, expr: str, expected: float) -> bool:
    return any(math.isclose(v, expected, rel_tol=1e-9) for _, v in values(prometheus, expr))


def test_the_series_hold_what_the_services_answer(traffic: dict[str, str], prometheus: str) -> None:
    """The exported values are the services' own: the SRM p-value of the results, the canary's
    stage, the registered metric, the feature set's TTL, the failed runs counted."""
    results = AbTestingClient(traffic["ab_testing"]).results("obs-ab")
    srm = results.sample_ratio_mismatch
    assert srm is not None
    cases = [
        ('mlops_ab_srm_p_value{experiment="obs-ab"}', srm["p_value"]),
        ('sum(mlops_ab_exposed_users{experiment="obs-ab"})', 200.0),
        ('mlops_ab_canary_stage_percent{experiment="ranker-canary", model="ranker"}', 10.0),
        ('mlops_ab_canary_status{experiment="ranker-canary", status="running"}', 1.0),
        ('mlops_ab_rollout_decisions_total{experiment="ranker-canary", kind="rollback"}', 0.0),
        ('mlops_model_registered_metric{model="churn", version="1", metric="accuracy"}', 0.99),
        ('mlops_feature_store_feature_set_ttl_seconds{feature_set="customer_features"}', 3600.0),
        ('mlops_pipeline_runs_finished_total{pipeline="obs-fail", state="failed"}', 2.0),
        ('mlops_pipeline_task_duration_seconds_count{kind="shell", state="succeeded"}', 2.0),
    ]
    for expr, expected in cases:
        with contextlib.suppress(TimeoutError):
            wait_until(lambda e=expr, x=expected: scraped(prometheus, e, x), timeout=30, what=expr)
        assert scraped(prometheus, expr, expected), f"{expr}: {values(prometheus, expr)}, not {expected}"
    age = values(
        prometheus,
        'time() - mlops_feature_store_online_last_write_timestamp_seconds{feature_set="customer_features"}',
    )
    assert age and 0 <= age[0][1] < 300


def test_the_rules_evaluate_on_the_live_series(traffic: dict[str, str], prometheus: str) -> None:
    """Prometheus' own rule evaluation on the services' series: the drifted, badly labelled model
    has its retraining alerts pending (labelled for the retraining receiver, with the model),
    the failed pipeline's alert fires, the SLO recording rules have a value per service."""
    retrain = 'ALERTS{alertname=~"ModelDrift|ModelPerformanceDegradation", action="retrain", model="churn"}'

    def pending() -> set[str] | None:
        names = {labels["alertname"] for labels, _ in values(prometheus, retrain)}
        return names if names == {"ModelDrift", "ModelPerformanceDegradation"} else None

    wait_until(pending, timeout=30, what="the retraining alerts of churn")
    failed = 'ALERTS{alertname="PipelineRunFailed", alertstate="firing", pipeline="obs-fail"}'
    wait_until(lambda: values(prometheus, failed), timeout=30, what="PipelineRunFailed for obs-fail")
    assert not values(prometheus, 'ALERTS{alertname="PipelineRunFailed", pipeline="obs-ok"}')
    slo = (
        "count(service:mlops_slo_availability_errors:ratio_rate5m) and on () "
        "count(service:mlops_slo_latency_slow:ratio_rate5m)"
    )
    wait_until(lambda: values(prometheus, slo), timeout=30, what="the SLO recording rules")
