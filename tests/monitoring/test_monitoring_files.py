"""The monitoring files agree with each other: the dashboards are what scripts/dev/dashboards.py
makes, the Kubernetes copy (deployment/k8s/monitoring) is monitoring/'s and builds with kustomize,
every dashboard is provisioned and uses the variables it declares, alerts meant for the
retraining receiver carry what AlertManager routes on, and `make monitor`'s generated
configuration keeps the repository's rules and routes with local addresses."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
RULES = ROOT / "monitoring" / "prometheus" / "rules"
BUILTIN = {"__rate_interval", "__range", "__interval"}


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dev" / name), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_dashboards_are_what_the_generator_makes() -> None:
    done = script("dashboards.py", "--check")
    assert done.returncode == 0, done.stderr


def test_the_kubernetes_copy_is_monitorings_and_builds() -> None:
    done = script("monitoring_k8s.py", "--check")
    assert done.returncode == 0, done.stderr
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to build deployment/k8s/monitoring (kubectl kustomize)"
    built = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deployment" / "k8s" / "monitoring")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documents = [d for d in yaml.safe_load_all(built) if d]
    kinds = sorted(d["kind"] for d in documents)
    rule_files = sorted(RULES.glob("*.rules.yml"))
    assert kinds.count("PrometheusRule") == len(rule_files)
    assert kinds.count("ServiceMonitor") == 6
    groups = [g for d in documents if d["kind"] == "PrometheusRule" for g in d["spec"]["groups"]]
    assert groups == [g for path in rule_files for g in yaml.safe_load(path.read_text())["groups"]]
    (dashboards,) = [d for d in documents if d["kind"] == "ConfigMap"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {k: json.loads(v) for k, v in dashboards["data"].items()} == {
        p.name: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")
    }


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.name)
def test_each_dashboard_uses_only_the_variables_it_declares(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    declared = {v["name"] for v in dashboard["templating"]["list"]}
    used = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            used |= {m.group(1) for m in re.finditer(r"\$\{?(\w+)", target["expr"])}
    assert used - BUILTIN <= declared, f"undeclared: {used - BUILTIN - declared}"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_dashboards_have_distinct_uids_and_the_brief_variables() -> None:
    dashboards = {p.name: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")}
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards) == 6
    names = {n: {v["name"] for v in d["templating"]["list"]} for n, d in dashboards.items()}
    assert {"service", "route"} <= names["platform-overview.json"]
    assert {"model", "version"} <= names["model-performance.json"]


def test_retraining_alerts_carry_the_label_alertmanager_routes_on_and_the_model() -> None:
    rules = [
        r
        for path in RULES.glob("*.rules.yml")
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    ]
    retrain = {r["alert"]: r for r in rules if r.get("labels", {}).get("action") == "retrain"}
    assert set(retrain) == {"ModelDrift", "ModelPerformanceDegradation"}
    for rule in retrain.values():
        assert "model" in rule["expr"]  # kept by the aggregation: the receiver looks the policy up by it
    routes = yaml.safe_load((ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())["route"]
    (route,) = [r for r in routes["routes"] if r["matchers"] == ['action="retrain"']]
    assert route["receiver"] == "pipeline-orchestrator-retrain" and "model" in route["group_by"]


def test_make_monitor_keeps_the_rules_and_routes_with_local_addresses(tmp_path: Path) -> None:
    monitor: dict[str, Any] = runpy.run_path(
        str(ROOT / "scripts" / "dev" / "monitor.py"), run_name="monitor_test"
    )
    token = tmp_path / "token"
    config = monitor["alertmanager_config"]("http://127.0.0.1:8004/api/triggers/alertmanager", token)
    original = yaml.safe_load((ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())
    assert config["route"] == original["route"] and config["inhibit_rules"] == original["inhibit_rules"]
    (hook,) = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert hook["url"] == "http://127.0.0.1:8004/api/triggers/alertmanager"
    assert hook["http_config"]["authorization"]["credentials_file"] == str(token)
    without = monitor["alertmanager_config"]("http://127.0.0.1:8004/api/triggers/alertmanager", None)
    assert all("http_config" not in h for r in without["receivers"] for h in r.get("webhook_configs", []))
    ports = monitor["service_ports"]()
    prom = monitor["prometheus_config"](
        [(m, f"127.0.0.1:{p}") for m, p in ports],
        rule_files=["/r/a.rules.yml"],
        alertmanager="127.0.0.1:9093",
    )
    (services,) = [j for j in prom["scrape_configs"] if j["job_name"] == "mlops-services"]
    assert services["static_configs"] == [
        {"targets": [f"127.0.0.1:{p}"], "labels": {"service": m}} for m, p in ports
    ]
    assert {j["job_name"] for j in prom["scrape_configs"]} == {"mlops-services", "prometheus", "alertmanager"}
    assert prom["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["127.0.0.1:9093"]}]


def test_compose_runs_the_exporters_the_infrastructure_dashboard_reads() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.platform.yml").read_text())["services"]
    prometheus = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    for job, target in (("postgres", "postgres-exporter:9187"), ("redis", "redis-exporter:9121")):
        assert jobs[job]["static_configs"] == [{"targets": [target]}]
        assert target.split(":")[0] in compose
    assert jobs["minio"]["metrics_path"] == "/minio/v2/metrics/cluster"
    assert compose["minio"]["environment"]["MINIO_PROMETHEUS_AUTH_TYPE"] == "public"
    infrastructure = (DASHBOARDS / "infrastructure.json").read_text()
    for prefix in ("pg_", "redis_", "minio_"):
        assert f"({prefix}" in infrastructure or f" {prefix}" in infrastructure
