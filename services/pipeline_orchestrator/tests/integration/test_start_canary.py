"""start_canary against real processes: the A/B testing service accepts the canary it creates, and
model serving then splits real prediction traffic between the control and the canary version."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from mlops_client import RegistryClient
from mlops_kit.testing.backends import free_port, wait_until
from mlops_kit.testing.process import ServiceProcess
from pipeline_orchestrator.protocol import TaskPayload, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.worker.runner import execute
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

N_FEATURES = 4


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A registry with two versions of `churn` (production → 1), an A/B service and model serving."""
    tmp = Path(tmp_path_factory.mktemp("canary"))
    with (
        ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp / "reg")}, tmp=tmp) as registry,
        ServiceProcess(
            "ab_testing",
            env={"MLOPS_DATA_DIR": str(tmp / "ab"), "MLOPS_MODEL_REGISTRY_URL": registry.url},
            tmp=tmp,
        ) as ab,
    ):
        _register_two_versions(registry.url, tmp)
        env = {
            "MLOPS_DATA_DIR": str(tmp / "serving"),
            "MLOPS_MODEL_REGISTRY_URL": registry.url,
            "MLOPS_AB_TESTING_URL": ab.url,
            "MLOPS_FEATURE_STORE_URL": f"http://127.0.0.1:{free_port()}",
            "MLOPS_MODEL_SERVING_WATCH_SECONDS": "0.2",
            "MLOPS_MODEL_SERVING_RESYNC_SECONDS": "0.5",
            "MLOPS_MODEL_SERVING_LOG_FLUSH_SECONDS": "0.2",
        }
        with ServiceProcess("model_serving", env=env, tmp=tmp) as serving:
            created = httpx.post(
                f"{serving.url}/api/deployments",
                json={"name": "churn-api", "model": "churn", "alias": "production"},
                timeout=60,  # the answer waits (up to 10 s) for the first load
            )
            assert created.status_code == 201, created.text
            yield {"registry": registry.url, "ab": ab.url, "serving": serving.url}


def _register_two_versions(url: str, tmp: Path) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, N_FEATURES))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    with RegistryClient(url) as client:
        for i, model in enumerate(
            (LogisticRegression().fit(X, y), DecisionTreeClassifier(max_depth=3).fit(X, y))
        ):
            folder = tmp / f"model-{i}"
            folder.mkdir()
            joblib.dump(model, folder / "model.joblib")
            client.register_model("churn", framework="sklearn", path=folder / "model.joblib")
        client.set_alias("churn", "production", "1")


def _start_canary(tmp_path: Path, stack: dict[str, str], **inputs: Any) -> TaskResult:
    payload = TaskPayload(
        attempt_id=secrets.token_hex(4),
        run_id=f"run-{secrets.token_hex(4)}",
        pipeline="retrain-churn",
        task="canary",
        attempt=1,
        kind="platform",
        spec={"step": "start_canary", "inputs": inputs},
        env={"MLOPS_MODEL_REGISTRY_URL": stack["registry"], "MLOPS_AB_TESTING_URL": stack["ab"]},
    )
    settings = OrchestratorSettings(data_dir=tmp_path / "data")
    return execute(payload, log=io.StringIO(), settings=settings)


def test_start_canary_creates_and_starts_a_canary_rollout(tmp_path: Path, stack: dict[str, str]) -> None:
    result = _start_canary(
        tmp_path, stack, model_name="churn", new_version="2", stages=[10, 50, 100], guardrails=["errors"]
    )
    assert result.ok, result.error
    out = result.outputs
    assert (out["control_version"], out["canary_version"], out["status"]) == ("1", "2", "running")
    experiment = httpx.get(f"{stack['ab']}/api/experiments/{out['experiment_id']}", timeout=10).json()
    assert experiment["mode"] == "canary" and experiment["status"] == "running"
    assert [(v["name"], v["model_version"], v["weight"]) for v in experiment["variants"]] == [
        ("control", "1", 0.9),
        ("canary", "2", 0.1),
    ]
    canary = experiment["canary"]
    assert (canary["model_name"], canary["baseline_version"], canary["candidate_version"]) == (
        "churn",
        "1",
        "2",
    )
    assert canary["stages"] == [10, 50, 100] and experiment["guardrail_metrics"] == ["errors"]
    _stop(stack, out["experiment_id"])


def test_a_started_canary_splits_prediction_traffic_between_the_versions(
    tmp_path: Path, stack: dict[str, str]
) -> None:
    result = _start_canary(tmp_path, stack, model_name="churn", new_version="2", initial_weight=0.5)
    assert result.ok, result.error
    served = wait_until(lambda: _both_versions_served(stack["serving"]), timeout=60, what="a split")
    assert served["1"] > 30 and served["2"] > 30
    _stop(stack, result.outputs["experiment_id"])


def _both_versions_served(url: str) -> dict[str, int] | None:
    served: dict[str, int] = {}
    for i in range(200):
        body = {"instances": [[0.1, -0.2, 0.3, 0.0]], "user_id": f"user-{i}"}
        answer = httpx.post(f"{url}/api/deployments/churn-api/predict", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        prediction = answer.json()["predictions"][0]
        served[prediction["model_version"]] = served.get(prediction["model_version"], 0) + 1
    return served if len(served) == 2 else None


def _stop(stack: dict[str, str], experiment_id: str) -> None:
    """Stop the canary so the next test's canary is the model's only running experiment."""
    stopped = httpx.post(f"{stack['ab']}/api/experiments/{experiment_id}/stop", timeout=10)
    assert stopped.status_code == 200, stopped.text
