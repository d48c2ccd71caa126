"""The retraining gate under real concurrency on PostgreSQL: two orchestrator processes on one
database, alerts and monitoring evaluations of one model arriving at once, start one run; and
threads calling the gate directly, each in its own transaction, start one run."""

from __future__ import annotations

import os
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlops_client import MonitoringClient, RegistryClient
from mlops_kit.db import Database
from mlops_kit.testing import ServiceProcess, fresh_postgres_database
from mlops_kit.testing.backends import wait_until
from pipeline_orchestrator.retraining import service
from pipeline_orchestrator.retraining.service import Decision, Signal

CLIENTS = 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A registry (with a drifted model) and two orchestrators on one PostgreSQL database."""
    tmp = Path(tmp_path_factory.mktemp("retraining-races"))
    tests_dir = str(Path(__file__).resolve().parents[1])
    with ExitStack() as stack:
        registry = stack.enter_context(
            ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp / "reg")}, tmp=tmp)
        ).url
        db_url = stack.enter_context(fresh_postgres_database("retrainraces"))
        env = {
            "MLOPS_DATA_DIR": str(tmp / "orch"),
            "MLOPS_DATABASE_URL": db_url,
            "MLOPS_MODEL_REGISTRY_URL": registry,
            "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "2",
            "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.1",
            "MLOPS_PIPELINE_ORCHESTRATOR_RETRAINING_POLL_SECONDS": "3600",
            "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
        }
        replicas = [
            stack.enter_context(ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp)).url
            for _ in range(2)
        ]
        yield {"registry": registry, "replicas": replicas, "db_url": db_url}


def _drifted_model(registry: str) -> str:
    name = f"race-{secrets.token_hex(4)}"
    rng = np.random.default_rng(5)
    with RegistryClient(registry) as client:
        client.register_model(name)
    reference = [{"x1": float(a), "x2": float(b)} for a, b in rng.normal(size=(500, 2))]
    current = [{"features": {"x1": float(a) + 3, "x2": float(b)}} for a, b in rng.normal(size=(300, 2))]
    with MonitoringClient(registry) as monitoring:
        monitoring.set_reference(name, "1", reference)
        monitoring.log_predictions_sync(name, current, version="1")
    return name


def _policy(url: str, model: str, hold: float) -> str:
    pipeline = f"retrain-{model}"
    definition = {
        "name": pipeline,
        "parameters": [{"name": "model_name", "type": "string"}],
        "tasks": [{"name": "train", "kind": "shell", "command": f"sleep {hold}", "cache": False}],
    }
    assert httpx.post(f"{url}/api/pipelines", json=definition, timeout=30).status_code == 201
    body = {"pipeline": pipeline, "cooldown_seconds": 3600, "evaluation_interval_seconds": 3600}
    body["drift"] = {"threshold": 0.3, "features": ["x1", "x2"]}
    answer = httpx.put(f"{url}/api/retraining-policies/{model}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return pipeline


def _alert(model: str) -> dict[str, Any]:
    labels = {"alertname": "ModelDrift", "model": model}
    return {"version": "4", "alerts": [{"status": "firing", "labels": labels, "fingerprint": model}]}


def test_alerts_and_evaluations_on_two_replicas_at_once_start_one_run(stack: dict[str, Any]) -> None:
    model = _drifted_model(stack["registry"])
    first, second = stack["replicas"]
    pipeline = _policy(first, model, hold=3)
    barrier = threading.Barrier(CLIENTS)
    statuses: list[int] = [0] * CLIENTS

    def one(i: int) -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait(timeout=30)
            if i % 2:
                answer = client.post(f"{second}/api/retraining-policies/{model}/evaluate")
            else:
                answer = client.post(f"{first}/api/triggers/alertmanager", json=_alert(model))
            statuses[i] = answer.status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # an evaluation finding another one in progress on the model is told so (409), never a 5xx
    assert set(statuses) <= {200, 409} and statuses.count(200) >= CLIENTS // 2
    records = httpx.get(f"{first}/api/retraining-triggers", params={"model": model}, timeout=30).json()[
        "items"
    ]
    decisions = Counter(r["decision"] for r in records)
    assert decisions["started"] == 1 and set(decisions) <= {"started", "already_running", "cooldown"}
    runs = httpx.get(f"{second}/api/runs", params={"pipeline": pipeline}, timeout=30).json()["items"]
    assert len(runs) == 1 and runs[0]["trigger"] == "retraining"


def test_threads_calling_the_gate_at_once_start_one_run(stack: dict[str, Any]) -> None:
    model = f"gate-{secrets.token_hex(4)}"
    _policy(stack["replicas"][0], model, hold=0)
    db = Database.connect(stack["db_url"], pool_size=CLIENTS)
    barrier = threading.Barrier(CLIENTS)
    decisions: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with db.session(write=True) as session:
            barrier.wait(timeout=30)
            decision: Decision | None = service.gate(session, model, Signal("manual", True, {"i": i}), "test")
            session.commit()
        assert decision is not None
        with lock:
            decisions.append(decision.trigger.decision)

    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        db.dispose()
    counted = Counter(decisions)
    assert counted["started"] == 1 and counted["already_running"] + counted["cooldown"] == CLIENTS - 1
    url = stack["replicas"][1]
    wait_until(
        lambda: (
            len(httpx.get(f"{url}/api/retraining-triggers", params={"model": model}).json()["items"])
            == CLIENTS
        ),
        timeout=10,
        what="every decision recorded",
    )
