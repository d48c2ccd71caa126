"""Model serving against a real model registry process: deployments, the prediction protocols,
hot swap under load, load failures, monitoring of every prediction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlops_client import RegistryClient
from mlops_kit.testing.backends import wait_until
from mlops_kit.testing.process import ServiceProcess
from serving_fixtures import Trained, deploy, register, register_bytes, serving, train, wait_serving


@pytest.fixture(scope="module")
def trained() -> Trained:
    return train()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("registry")
    with ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp)}, tmp=tmp) as process:
        yield process


@pytest.fixture(scope="module")
def models(
    registry: ServiceProcess, trained: Trained, tmp_path_factory: pytest.TempPathFactory
) -> RegistryClient:
    tmp = tmp_path_factory.mktemp("models")
    client = RegistryClient(registry.url)
    assert register(client, "fraud", trained.forest, tmp) == "1"
    assert register(client, "fraud", trained.logistic, tmp, as_pickle=True) == "2"
    client.set_alias("fraud", "production", "1")
    return client


@pytest.fixture(scope="module")
def server(
    registry: ServiceProcess, models: RegistryClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("serving"), registry.url) as process:
        deploy(process.url, {"name": "fraud-api", "model": "fraud", "alias": "production"})
        wait_serving(process.url, "fraud-api", "1")
        yield process.url


def _rows(trained: Trained, n: int) -> list[list[float]]:
    return [[round(float(v), 6) for v in row] for row in trained.X[:n]]


def test_predict_answers_the_original_documents_shape_with_the_models_own_prediction(
    server: str, trained: Trained
) -> None:
    row = _rows(trained, 1)[0]
    body = httpx.post(f"{server}/predict", json={"features": row}).json()
    expected = trained.forest.predict_proba(np.array([row]))[0]
    assert body["prediction"] == int(trained.forest.predict(np.array([row]))[0])
    assert body["probability"] == pytest.approx(list(expected), abs=1e-12)
    assert body["model_version"] == "1"
    assert body["timestamp"] and body["request_id"]


def test_model_info_names_the_version_and_its_signature(server: str) -> None:
    info = httpx.get(f"{server}/model-info").json()
    assert info["model_name"] == "fraud" and info["model_version"] == "1"
    assert info["signature"]["n_features"] == 6


def test_a_batch_through_the_deployment_route_matches_the_model(server: str, trained: Trained) -> None:
    rows = _rows(trained, 50)
    body = httpx.post(f"{server}/api/deployments/fraud-api/predict", json={"instances": rows}).json()
    predictions = [p["prediction"] for p in body["predictions"]]
    assert predictions == trained.forest.predict(np.array(rows)).tolist()
    assert len({p["request_id"] for p in body["predictions"]}) == 50


def test_mlflow_invocations_accept_dataframe_split_and_answer_predictions(
    server: str, trained: Trained
) -> None:
    rows = _rows(trained, 5)
    columns = [f"x{i}" for i in range(6)]
    body = {"dataframe_split": {"columns": columns, "data": rows}}
    answer = httpx.post(f"{server}/invocations", json=body)
    # the forest was fitted on an array: it has no names, so named columns are taken in order
    assert answer.status_code in (200, 422), answer.text
    positional = httpx.post(f"{server}/invocations", json={"instances": rows}).json()
    assert positional["predictions"] == trained.forest.predict(np.array(rows)).tolist()


def test_open_inference_protocol_v2_infer_and_metadata(server: str, trained: Trained) -> None:
    rows = _rows(trained, 3)
    body = {
        "inputs": [
            {"name": "input-0", "shape": [3, 6], "datatype": "FP64", "data": [v for r in rows for v in r]}
        ]
    }
    answer = httpx.post(f"{server}/v2/models/fraud-api/infer", json=body).json()
    predict = next(o for o in answer["outputs"] if o["name"] == "predict")
    assert predict["data"] == trained.forest.predict(np.array(rows)).tolist()
    assert answer["model_name"] == "fraud-api" and answer["model_version"] == "1"
    assert httpx.get(f"{server}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server}/v2/models/fraud-api").json()["versions"] == ["1"]


def test_wrong_feature_count_is_a_422_saying_what_was_expected(server: str) -> None:
    answer = httpx.post(f"{server}/predict", json={"features": [1.0, 2.0]})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert error["details"]["expected"]["n_features"] == 6


def test_bad_bodies_are_4xx_in_the_platforms_shape(server: str) -> None:
    for content in (b"{", b"[]", b'{"features": "x"}', b'{"features": [[1, 2], [1]]}'):
        answer = httpx.post(
            f"{server}/predict", content=content, headers={"content-type": "application/json"}
        )
        assert 400 <= answer.status_code < 500, (content, answer.text)
        assert "error" in answer.json()
    missing = httpx.post(f"{server}/api/deployments/nope/predict", json={"instances": [[1]]})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "DEPLOYMENT_NOT_FOUND"


def test_every_prediction_reaches_the_registrys_prediction_log(
    server: str, registry: ServiceProcess, trained: Trained
) -> None:
    rows = _rows(trained, 20)
    ids = [f"mon-{i}" for i in range(20)]
    body = {"instances": rows, "request_ids": ids}
    assert httpx.post(f"{server}/api/deployments/fraud-api/predict", json=body).status_code == 200

    def labelled() -> int | None:
        answer = httpx.post(
            f"{registry.url}/api/models/fraud/labels", json=[{"request_id": r, "label": 1} for r in ids]
        ).json()
        return answer["labelled"] if answer["labelled"] == 20 else None

    assert wait_until(labelled, timeout=30, what="the 20 predictions in the registry's log") == 20


def test_a_version_that_fails_to_load_leaves_the_deployment_failed_and_the_old_one_serving(
    server: str, models: RegistryClient, tmp_path: Path, trained: Trained
) -> None:
    register(models, "broken", trained.forest, tmp_path)
    bad = register_bytes(models, "broken", b"not a model at all", tmp_path, "model.joblib")
    models.set_alias("broken", "production", "1")
    deploy(server, {"name": "broken-api", "model": "broken"})
    wait_serving(server, "broken-api", "1")
    models.set_alias("broken", "production", bad)

    def failed() -> dict[str, Any] | None:
        status = httpx.get(f"{server}/api/deployments/broken-api").json()["status"]
        return status if status["state"] == "FAILED" else None

    status = wait_until(failed, timeout=30, what="the deployment FAILED")
    assert status["failed_version"] == bad and status["last_error"]
    assert status["loaded"]["version"] == "1"
    answer = httpx.post(f"{server}/api/deployments/broken-api/predict", json={"instances": _rows(trained, 1)})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["model_version"] == "1"


def test_alias_moves_swap_the_version_under_load_without_a_failed_request(
    server: str, models: RegistryClient, trained: Trained, tmp_path: Path
) -> None:
    register(models, "swap", trained.forest, tmp_path)
    register(models, "swap", trained.logistic, tmp_path)
    models.set_alias("swap", "production", "1")
    deploy(server, {"name": "swap-api", "model": "swap"})
    wait_serving(server, "swap-api", "1")
    stop = threading.Event()
    failures: list[str] = []
    versions: set[str] = set()
    row = _rows(trained, 1)

    def hammer() -> None:
        with httpx.Client(base_url=server, timeout=10) as client:
            while not stop.is_set():
                answer = client.post("/api/deployments/swap-api/predict", json={"instances": row})
                if answer.status_code != 200:
                    failures.append(answer.text)
                else:
                    versions.add(answer.json()["predictions"][0]["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for target in ("2", "1", "2", "1", "2"):
            models.set_alias("swap", "production", target)
            wait_serving(server, "swap-api", target)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert versions == {"1", "2"}


def test_registry_down_later_keeps_serving_what_is_loaded(trained: Trained, tmp_path: Path) -> None:
    with ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp_path / "reg")}, tmp=tmp_path) as reg:
        client = RegistryClient(reg.url)
        register(client, "solo", trained.forest, tmp_path)
        client.set_alias("solo", "production", "1")
        with serving(tmp_path, reg.url) as process:
            deploy(process.url, {"name": "solo-api", "model": "solo"})
            wait_serving(process.url, "solo-api", "1")
            reg.stop()
            for _ in range(3):
                answer = httpx.post(f"{process.url}/predict", json={"features": _rows(trained, 1)[0]})
                assert answer.status_code == 200
            assert httpx.get(f"{process.url}/ready").status_code == 200


def test_registry_down_at_start_is_not_ready_until_the_first_model_loads(
    trained: Trained, tmp_path: Path
) -> None:
    from mlops_kit.testing.backends import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(tmp_path, url) as process:
        deploy(process.url, {"name": "late-api", "model": "late"})
        assert httpx.get(f"{process.url}/ready").status_code == 503
        answer = httpx.post(f"{process.url}/predict", json={"features": [1.0]})
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "MODEL_NOT_LOADED"
        env = {"MLOPS_DATA_DIR": str(tmp_path / "reg")}
        with ServiceProcess("model_registry", env=env, tmp=tmp_path, port=port) as reg:
            client = RegistryClient(reg.url)
            register(client, "late", trained.forest, tmp_path)
            client.set_alias("late", "production", "1")
            wait_serving(process.url, "late-api", "1")
            wait_until(
                lambda: httpx.get(f"{process.url}/ready").status_code == 200 or None,
                timeout=30,
                what="ready",
            )


def test_a_deployment_needing_the_feature_store_fails_fast_when_it_is_down(
    server: str, models: RegistryClient, trained: Trained
) -> None:
    deploy(
        server, {"name": "feat-api", "model": "fraud", "alias": "production", "feature_service": "fraud_v1"}
    )
    wait_serving(server, "feat-api", "1")
    body = {"instances": [{"x0": 1.0}], "entities": {"user_id": "u1"}}
    answer = httpx.post(f"{server}/api/deployments/feat-api/predict", json=body, timeout=5)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "FEATURES_UNAVAILABLE"
    assert answer.elapsed.total_seconds() < 2


def test_deployments_crud_and_duplicate_names(server: str) -> None:
    deploy(server, {"name": "crud-api", "model": "fraud", "version": "2"})
    again = httpx.post(f"{server}/api/deployments", json={"name": "crud-api", "model": "fraud"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "DEPLOYMENT_EXISTS"
    both = httpx.post(
        f"{server}/api/deployments", json={"name": "x", "model": "fraud", "alias": "a", "version": "1"}
    )
    assert both.status_code == 422
    listed = httpx.get(f"{server}/api/deployments", params={"model": "fraud"}).json()
    assert "crud-api" in [d["name"] for d in listed["items"]]
    changed = httpx.patch(f"{server}/api/deployments/crud-api", json={"version": "1"}).json()
    assert changed["version"] == "1"
    assert httpx.delete(f"{server}/api/deployments/crud-api").status_code == 204
    assert httpx.get(f"{server}/api/deployments/crud-api").status_code == 404


def test_the_orchestration_documents_deploy_body_is_accepted(server: str) -> None:
    body = {
        "model_name": "fraud",
        "model_version": "2",
        "strategy": "canary",
        "environment": "staging",
        "instance_count": 2,
        "min_instances": 1,
        "max_instances": 4,
        "machine_type": "n1-standard-4",
    }
    answer = httpx.post(f"{server}/api/v1/deployment/deploy", json=body)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["name"] == "fraud-staging" and created["version"] == "2"
    assert created["replicas"] == {"min": 1, "max": 4}
    wait_serving(server, "fraud-staging", "2")
