"""Compose, AlertManager and Kubernetes: what is published, and how AlertManager authenticates to
the orchestrator's webhook (its own token, never an API key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[4]
# what operators and applications use; everything else stays on the host or off it
PUBLIC_PORTS = {"8000", "8002", "8003", "8004", "8090", "8080", "3000"}
UNPUBLISHED = {"postgres", "redis", "minio-init", "pipeline-worker"}
TOKEN_VAR = "MLOPS_PIPELINE_ORCHESTRATOR_ALERT_WEBHOOK_TOKEN"
TOKEN_FILE = "/alertmanager/orchestrator-alert-webhook-token"


def _load(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text())


def _compose() -> dict[str, Any]:
    return _load("docker-compose.platform.yml")["services"]


def test_compose_publishes_only_the_apis_and_grafana_on_every_interface() -> None:
    for name, service in _compose().items():
        ports = [str(p) for p in service.get("ports", [])]
        if name in UNPUBLISHED:
            assert not ports, f"{name} must not be published: {ports}"
        for port in ports:
            host_part = port.rsplit(":", 1)[0]
            if not port.startswith("127.0.0.1:"):
                assert host_part in PUBLIC_PORTS, f"{name} publishes {port} on every interface"
    minio = [str(p) for p in _compose()["minio"].get("ports", [])]
    assert not any(p.endswith(":9000") or p == "9000" for p in minio), "the S3 API stays internal"


def test_alertmanager_sends_the_webhook_token_that_only_the_orchestrator_gets() -> None:
    services = _compose()
    alertmanager = services["alertmanager"]
    assert "MLOPS_API_KEY" not in alertmanager.get("environment", {}), "AlertManager holds no API key"
    script = " ".join(alertmanager["entrypoint"])
    assert f'"$$MLOPS_ALERT_WEBHOOK_TOKEN" > {TOKEN_FILE}' in script
    assert "MLOPS_ALERT_WEBHOOK_TOKEN:?" in alertmanager["environment"]["MLOPS_ALERT_WEBHOOK_TOKEN"]
    assert "MLOPS_ALERT_WEBHOOK_TOKEN:?" in services["pipeline-orchestrator"]["environment"][TOKEN_VAR]
    assert TOKEN_VAR not in services["pipeline-worker"]["environment"], "task code does not get it"
    config = _load("monitoring/alertmanager/alertmanager.yml")
    receiver = next(r for r in config["receivers"] if r["name"] == "pipeline-orchestrator-retrain")
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"].endswith("/api/triggers/alertmanager")
    assert webhook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}


def test_kubernetes_gives_the_orchestrator_the_webhook_token_from_the_secret() -> None:
    documents = yaml.safe_load_all((ROOT / "deployment/k8s/base/pipeline-orchestrator.yaml").read_text())
    deployment = next(d for d in documents if d and d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    ref = env[TOKEN_VAR]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "mlops-secrets", "key": "alert-webhook-token"}, "required, from the Secret"
