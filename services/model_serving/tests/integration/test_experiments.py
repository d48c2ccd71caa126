"""Serving with a real A/B testing service and a real registry: requests with a user_id are
assigned locally (the shared assignment code), served by their variant's version, their
exposures reach the A/B service, outcomes by request id are counted, and a shadow candidate's
predictions are logged but never returned."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from mlops_client import AbTestingClient, RegistryClient
from mlops_client.ab_routing import evaluate
from mlops_kit.testing.backends import wait_until
from mlops_kit.testing.process import ServiceProcess
from serving_fixtures import deploy, register, serving, train, wait_serving


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("stack")
    trained = train()
    with (
        ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp / "reg")}, tmp=tmp) as registry,
        ServiceProcess("ab_testing", env={"MLOPS_DATA_DIR": str(tmp / "ab")}, tmp=tmp) as ab,
    ):
        client = RegistryClient(registry.url)
        register(client, "churn", trained.forest, tmp)
        register(client, "churn", trained.logistic, tmp)
        client.set_alias("churn", "production", "1")
        client.set_alias("churn", "challenger", "2")
        experiments = AbTestingClient(ab.url)
        experiments.create_experiment(
            key="churn-v2",
            model_name="churn",
            variants=[
                {"name": "control", "weight": 0.5, "model_version": "1"},
                {"name": "treatment", "weight": 0.5, "model_version": "2"},
            ],
            metrics=[{"name": "converted", "type": "binary"}],
        )
        experiments.start("churn-v2")
        env = {"MLOPS_AB_TESTING_URL": ab.url}
        with serving(tmp, registry.url, env=env) as process:
            deploy(process.url, {"name": "churn-api", "model": "churn"})
            deploy(
                process.url,
                {
                    "name": "shadowed",
                    "model": "churn",
                    "experiment": "none-such",
                    "shadow": {"alias": "challenger"},
                },
            )
            wait_serving(process.url, "churn-api", "1")
            yield {
                "url": process.url,
                "registry": registry.url,
                "ab": ab.url,
                "trained": trained,
                "experiments": experiments,
                "definition": experiments.definition("churn-v2"),
            }


def _variants_loaded(url: str) -> dict[str, str] | None:
    status = httpx.get(f"{url}/api/deployments/churn-api").json()["status"]
    return status["variants"] if len(status["variants"]) == 2 else None


def test_users_are_served_by_their_variants_version(stack: dict[str, Any]) -> None:
    url, trained = stack["url"], stack["trained"]
    wait_until(lambda: _variants_loaded(url), timeout=60, what="both variants loaded")
    row = [round(float(v), 6) for v in trained.X[0]]
    seen: dict[str, str] = {}
    for i in range(40):
        user = f"user-{i}"
        body = {"instances": [row], "user_id": user}
        answer = httpx.post(f"{url}/api/deployments/churn-api/predict", json=body).json()["predictions"][0]
        expected = evaluate(stack["definition"], user)
        assert answer["variant"] == expected.variant
        assert answer["model_version"] == expected.model_version
        seen[answer["variant"]] = answer["model_version"]
        model = trained.forest if answer["model_version"] == "1" else trained.logistic
        assert answer["prediction"] == int(model.predict(np.array([row]))[0])
    assert seen == {"control": "1", "treatment": "2"}


def test_exposures_and_outcomes_reach_the_experiment(stack: dict[str, Any]) -> None:
    url = stack["url"]
    wait_until(lambda: _variants_loaded(url), timeout=60, what="both variants loaded")
    row = [0.0] * 6
    ids = []
    for i in range(10):
        body = {"instances": [row], "user_id": f"buyer-{i}"}
        answer = httpx.post(f"{url}/api/deployments/churn-api/predict", json=body).json()
        ids.append(answer["predictions"][0]["request_id"])
    outcomes = {"outcomes": [{"request_id": r, "metric": "converted", "value": 1.0} for r in ids]}
    sent = httpx.post(f"{url}/api/deployments/churn-api/outcomes", json=outcomes).json()
    assert sent["events"] == 10 and sent["unknown"] == []

    def exposed() -> int | None:
        results = stack["experiments"].results("churn-v2")
        users = sum(v.exposures for v in results.variants)
        return users if users >= 10 else None

    assert wait_until(exposed, timeout=30, what="exposures counted") >= 10


def test_a_shadow_candidate_is_logged_never_returned(stack: dict[str, Any]) -> None:
    url, registry = stack["url"], stack["registry"]
    wait_serving(url, "shadowed", "1")

    def shadow_loaded() -> bool | None:
        return httpx.get(f"{url}/api/deployments/shadowed").json()["status"]["shadow_version"] == "2" or None

    wait_until(shadow_loaded, timeout=60, what="the shadow candidate loaded")
    body = {"instances": [[0.5] * 6], "request_id": "shadow-check"}
    answer = httpx.post(f"{url}/api/deployments/shadowed/predict", json=body).json()
    assert answer["predictions"][0]["model_version"] == "1"

    def logged() -> int | None:
        labels = [
            {"request_id": "shadow-check", "label": 1},
            {"request_id": "shadow-shadow-check", "label": 1},
        ]
        done = httpx.post(f"{registry}/api/models/churn/labels", json=labels).json()
        return done["labelled"] if done["labelled"] == 2 else None

    assert wait_until(logged, timeout=30, what="both predictions logged") == 2


def test_each_variants_predictions_reach_drift_under_their_variant(stack: dict[str, Any]) -> None:
    url, registry, trained = stack["url"], stack["registry"], stack["trained"]
    wait_until(lambda: _variants_loaded(url), timeout=60, what="both variants loaded")
    reference = [{f"feature_{j}": float(v) for j, v in enumerate(x)} for x in trained.X]
    for version in ("1", "2"):
        path = f"/api/models/churn/versions/{version}/monitoring/reference"
        put = httpx.put(f"{registry}{path}", json=reference)
        assert put.status_code == 200, put.text
    served: dict[str, int] = {}
    for i in range(30):
        body = {"instances": [[0.1] * 6], "user_id": f"drift-{i}"}
        answer = httpx.post(f"{url}/api/deployments/churn-api/predict", json=body).json()["predictions"][0]
        served[answer["variant"]] = served.get(answer["variant"], 0) + 1
    versions = {"control": "1", "treatment": "2"}

    def counted() -> dict[str, int] | None:
        counts = {}
        for variant, version in versions.items():
            params = {"version": version, "variant": variant, "last": "1h"}
            drift = httpx.get(f"{registry}/api/models/churn/monitoring/drift", params=params).json()
            assert drift["window"]["variant"] == variant
            counts[variant] = drift["window"]["count"]
        return counts if all(counts[v] >= served.get(v, 0) for v in versions) else None

    counts = wait_until(counted, timeout=30, what="each variant's predictions in its drift window")
    assert set(served) == set(versions) and all(counts[v] >= served[v] for v in versions)


def test_an_experiment_routes_only_once_every_variants_version_is_loaded(
    stack: dict[str, Any], tmp_path: Any
) -> None:
    url, trained = stack["url"], stack["trained"]
    client = RegistryClient(stack["registry"])
    register(client, "halfway", trained.forest, tmp_path)
    stack["experiments"].create_experiment(
        key="halfway-v2",
        model_name="halfway",
        variants=[
            {"name": "control", "weight": 0.5, "model_version": "1"},
            {"name": "treatment", "weight": 0.5, "model_version": "7"},  # never registered
        ],
        metrics=[{"name": "converted", "type": "binary"}],
    )
    stack["experiments"].start("halfway-v2")
    deploy(url, {"name": "halfway-api", "model": "halfway", "version": "1", "experiment": "halfway-v2"})
    wait_serving(url, "halfway-api", "1")

    def waiting() -> dict[str, Any] | None:
        status = httpx.get(f"{url}/api/deployments/halfway-api").json()["status"]
        return status if status["experiment"] == "halfway-v2" else None

    status = wait_until(waiting, timeout=30, what="the experiment seen")
    assert status["experiment_waiting_for"] == ["7"] and status["variants"] == {}
    for i in range(20):
        body = {"instances": [[0.2] * 6], "user_id": f"half-{i}"}
        answer = httpx.post(f"{url}/api/deployments/halfway-api/predict", json=body).json()["predictions"][0]
        assert answer["model_version"] == "1" and answer.get("variant") is None
    assert httpx.get(f"{url}/model-info").status_code == 200
    results = stack["experiments"].results("halfway-v2")
    assert sum(v.exposures for v in results.variants) == 0  # nobody counted under a variant
