"""AlertManager's routes, as `make monitor` generates them from monitoring/alertmanager, run by
Debian's AlertManager: an alert labelled `action="retrain"` reaches the orchestrator's
/api/triggers/alertmanager with the alert webhook token (an orchestrator started with the token
answers 401 to anything else) and starts the pipeline routed for its model."""

from __future__ import annotations

import runpy
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mlops_kit.testing.backends import free_port, wait_until
from mlops_kit.testing.process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
BINARIES = ("prometheus-alertmanager", "alertmanager")


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("routing-orchestrator")
    token = secrets.token_hex(16)
    env = {"MLOPS_DATA_DIR": str(tmp), "MLOPS_PIPELINE_ORCHESTRATOR_ALERT_WEBHOOK_TOKEN": token}
    with ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp) as process:
        yield process.url, token


@pytest.fixture(scope="module")
def alertmanager(orchestrator: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = next((found for name in BINARIES if (found := shutil.which(name))), None)
    if binary is None:
        pytest.fail("Debian's AlertManager is needed: apt-get install prometheus-alertmanager")
    url, token = orchestrator
    tmp = tmp_path_factory.mktemp("alertmanager")
    token_file = tmp / "token"
    token_file.write_text(token)
    monitor: dict[str, Any] = runpy.run_path(str(ROOT / "scripts" / "dev" / "monitor.py"), run_name="am_test")
    config = monitor["alertmanager_config"](f"{url}/api/triggers/alertmanager", token_file)
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(tmp / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    am = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{am}/-/ready", timeout=1).status_code == 200, timeout=60, what="alertmanager"
        )
        yield am
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def alert(name: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "service": "model_registry", "severity": "warning", **labels},
        "annotations": {"summary": f"{name} in a test"},
        "startsAt": datetime.now(UTC).isoformat(),
    }


def runs(url: str, pipeline: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(
        f"{url}/api/runs", params={"pipeline": pipeline}, timeout=10
    ).json()["items"]
    return items


def test_a_retrain_alert_reaches_the_orchestrator_and_starts_the_routed_pipeline(
    orchestrator: tuple[str, str], alertmanager: str
) -> None:
    url, _ = orchestrator
    pipeline = {
        "name": "retrain-churn",
        "tasks": [{"name": "train", "kind": "shell", "command": "echo retrain"}],
    }
    assert httpx.post(f"{url}/api/pipelines", json=pipeline, timeout=10).status_code in (200, 201)
    route = {"alertname": "ModelDrift", "pipeline": "retrain-churn", "match": {"model": "churn"}}
    assert httpx.post(f"{url}/api/triggers/alert-routes", json=route, timeout=10).status_code == 201
    # without the token the orchestrator refuses the webhook: AlertManager must be sending it
    unauthenticated = httpx.post(f"{url}/api/triggers/alertmanager", json={"alerts": []}, timeout=10)
    assert unauthenticated.status_code == 401

    sent = httpx.post(
        f"{alertmanager}/api/v2/alerts",
        json=[alert("ModelDrift", model="churn", version="1", action="retrain")],
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    started = wait_until(lambda: runs(url, "retrain-churn"), timeout=60, what="the retraining run")
    assert [r["trigger"] for r in started] == ["alertmanager"]
