"""Read-modify-writes raced by 10 clients against a real process, on SQLite and PostgreSQL:
experiment names stay unique, delete/restore carry every run, a run finishes once, a param is
set once."""

from __future__ import annotations

import uuid

import httpx
from mlops_kit.testing import race

CLIENTS = 10


def _experiment(url: str) -> str:
    response = httpx.post(f"{url}/api/experiments", json={"name": f"races-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _run(url: str, experiment: str) -> str:
    response = httpx.post(f"{url}/api/experiments/{experiment}/runs", json={})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_concurrent_creations_of_one_name_make_one_experiment(tracking_url: str) -> None:
    name = f"contended-{uuid.uuid4().hex[:8]}"

    def create(client: httpx.Client, i: int) -> httpx.Response:
        if i % 2:  # the MLflow API answers in MLflow's shape
            return client.post("/api/2.0/mlflow/experiments/create", json={"name": name})
        return client.post("/api/experiments", json={"name": name})

    responses = race(tracking_url, create, CLIENTS)
    won = [r for r in responses if r.status_code in (200, 201)]
    assert len(won) == 1, [r.text for r in responses]
    for r in responses:
        if r in won:
            continue
        body = r.json()
        code = body["error_code"] if "error_code" in body else body["error"]["code"]
        assert (r.status_code, code) in {(400, "RESOURCE_ALREADY_EXISTS"), (409, "EXPERIMENT_EXISTS")}


def test_concurrent_renames_to_one_name_leave_it_unique(tracking_url: str) -> None:
    ids = [_experiment(tracking_url) for _ in range(CLIENTS)]
    name = f"renamed-{uuid.uuid4().hex[:8]}"

    def rename(client: httpx.Client, i: int) -> httpx.Response:
        return client.patch(f"/api/experiments/{ids[i]}", json={"name": name})

    responses = race(tracking_url, rename, CLIENTS)
    assert sorted(r.status_code for r in responses) == [200] + [409] * (CLIENTS - 1)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"EXPERIMENT_EXISTS"}
    found = httpx.get(f"{tracking_url}/api/experiments", params={"name_prefix": name}).json()
    assert [e["name"] for e in found["items"]] == [name]


def test_runs_created_during_delete_and_restore_share_the_experiment_stage(tracking_url: str) -> None:
    experiment = _experiment(tracking_url)

    def act(client: httpx.Client, i: int) -> httpx.Response:
        if i % 5 == 0:
            return client.delete(f"/api/experiments/{experiment}")
        if i % 5 == 1:
            return client.post(f"/api/experiments/{experiment}/restore")
        return client.post(f"/api/experiments/{experiment}/runs", json={})

    responses = race(tracking_url, act, CLIENTS)
    assert {r.status_code for r in responses} <= {200, 201, 204, 409}
    stage = httpx.get(f"{tracking_url}/api/experiments/{experiment}").json()["lifecycle_stage"]
    search = {"experiment_ids": [experiment], "view_type": "ALL", "max_results": 100}
    runs = httpx.post(f"{tracking_url}/api/2.0/mlflow/runs/search", json=search).json().get("runs", [])
    assert {r["info"]["lifecycle_stage"] for r in runs} <= {stage}


def test_concurrent_finishes_of_a_run_agree_with_its_final_status(tracking_url: str) -> None:
    experiment = _experiment(tracking_url)
    run = _run(tracking_url, experiment)
    statuses = ["FINISHED", "FAILED", "KILLED"]

    def finish(client: httpx.Client, i: int) -> httpx.Response:
        body = {"status": statuses[i % 3]}
        return client.patch(f"/api/experiments/{experiment}/runs/{run}", json=body)

    responses = race(tracking_url, finish, CLIENTS)
    assert {r.status_code for r in responses} <= {200, 409}
    final = httpx.get(f"{tracking_url}/api/experiments/{experiment}/runs/{run}").json()["status"]
    accepted = {statuses[i % 3] for i, r in enumerate(responses) if r.status_code == 200}
    assert accepted == {final}


def test_a_param_raced_with_different_values_is_set_once(tracking_url: str) -> None:
    experiment = _experiment(tracking_url)
    run = _run(tracking_url, experiment)

    def log(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(f"/api/experiments/{experiment}/runs/{run}/params", json={"lr": i})

    responses = race(tracking_url, log, CLIENTS)
    won = [i for i, r in enumerate(responses) if r.status_code == 200]
    assert len(won) == 1 and {r.status_code for r in responses} == {200, 409}
    refused = [r.json()["error"] for r in responses if r.status_code == 409]
    assert {e["code"] for e in refused} == {"PARAM_IMMUTABLE"}
    assert {e["details"]["old_value"] for e in refused} == {str(won[0])}
    params = httpx.get(f"{tracking_url}/api/experiments/{experiment}/runs/{run}").json()["params"]
    assert params == {"lr": str(won[0])}


def test_concurrent_tag_sets_on_a_logged_model_keep_every_key(tracking_url: str) -> None:
    experiment = _experiment(tracking_url)
    base = "/api/2.0/mlflow/logged-models"
    created = httpx.post(f"{tracking_url}{base}", json={"experiment_id": experiment, "name": "m"})
    assert created.status_code == 200, created.text
    model_id = created.json()["model"]["info"]["model_id"]

    def tag(client: httpx.Client, i: int) -> httpx.Response:
        return client.patch(f"{base}/{model_id}/tags", json={"tags": [{"key": f"k{i}", "value": str(i)}]})

    assert [r.status_code for r in race(tracking_url, tag, CLIENTS)] == [200] * CLIENTS
    info = httpx.get(f"{tracking_url}{base}/{model_id}").json()["model"]["info"]
    assert {t["key"]: t["value"] for t in info["tags"]} == {f"k{i}": str(i) for i in range(CLIENTS)}
