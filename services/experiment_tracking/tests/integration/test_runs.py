"""Native run API: lifecycle, params, tags, nesting, reproducibility fields."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tracking_helpers import experiment, run, run_path


def test_start_a_run_as_in_the_platform_docs(client: TestClient) -> None:
    exp = experiment(client)
    created = run(
        client, exp["id"], run_name="lstm_dropout_0.3", parameters={"learning_rate": 0.001, "batch_size": 32}
    )
    assert created["name"] == "lstm_dropout_0.3" and created["status"] == "RUNNING"
    assert created["params"] == {"learning_rate": "0.001", "batch_size": "32"}
    assert created["end_time"] is None and len(created["id"]) == 32


def test_status_lifecycle_sets_end_time_and_refuses_reopening(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    finished = client.patch(run_path(created), json={"status": "FINISHED"}).json()
    assert finished["status"] == "FINISHED" and finished["end_time"] >= finished["start_time"]
    again = client.patch(run_path(created), json={"status": "RUNNING"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "INVALID_STATE"
    assert client.patch(run_path(created), json={"status": "DONE"}).status_code == 422


def test_params_are_immutable_but_tags_are_not(client: TestClient) -> None:
    created = run(client, experiment(client)["id"], parameters={"lr": 0.1})
    assert client.post(f"{run_path(created)}/params", json={"lr": 0.1, "depth": 3}).status_code == 200
    changed = client.post(f"{run_path(created)}/params", json={"lr": 0.2, "extra": 1})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "PARAM_IMMUTABLE"
    params = client.get(run_path(created)).json()["params"]
    assert params == {"lr": "0.1", "depth": "3"}, "a refused batch stores nothing"
    client.post(f"{run_path(created)}/tags", json={"team": "a"})
    tags = client.post(f"{run_path(created)}/tags", json={"team": "b"}).json()["tags"]
    assert tags["team"] == "b"
    assert client.delete(f"{run_path(created)}/tags/team").status_code == 204
    assert "team" not in client.get(run_path(created)).json()["tags"]
    assert client.delete(f"{run_path(created)}/tags/team").status_code == 400


def test_nested_runs_record_their_parent(client: TestClient) -> None:
    exp = experiment(client)
    parent = run(client, exp["id"], run_name="sweep")
    child = run(client, exp["id"], parent_run_id=parent["id"], parameters={"lr": 0.1})
    assert child["parent_run_id"] == parent["id"]
    children = client.get(
        f"/api/experiments/{exp['id']}/runs", params={"filter": f"tags.mlflow.parentRunId = '{parent['id']}'"}
    ).json()["items"]
    assert [r["id"] for r in children] == [child["id"]]
    missing = client.post(f"/api/experiments/{exp['id']}/runs", json={"parent_run_id": "f" * 32})
    assert missing.status_code == 404


def test_reproducibility_fields_are_recorded(client: TestClient) -> None:
    created = run(
        client,
        experiment(client)["id"],
        source={"git_commit": "a1b2c3d", "entry_point": "train.py:main"},
        environment={"python_version": "3.11.7", "packages": ["scikit-learn==1.5.2"]},
        datasets=[
            {"name": "train", "source": "s3://data/train.parquet", "digest": "v3", "context": "training"}
        ],
    )
    fetched = client.get(run_path(created)).json()
    assert fetched["source"] == {"git_commit": "a1b2c3d", "entry_point": "train.py:main"}
    assert fetched["environment"]["packages"] == ["scikit-learn==1.5.2"]
    assert fetched["datasets"] == [
        {
            "name": "train",
            "digest": "v3",
            "source_type": "external",
            "source": "s3://data/train.parquet",
            "context": "training",
        }
    ]


def test_delete_and_restore_a_run(client: TestClient) -> None:
    exp = experiment(client)
    created = run(client, exp["id"])
    assert client.delete(run_path(created)).status_code == 204
    assert client.get(f"/api/experiments/{exp['id']}/runs").json()["items"] == []
    refused = client.post(f"{run_path(created)}/metrics", json={"acc": 1})
    assert refused.status_code == 409
    assert client.post(f"{run_path(created)}/restore").json()["lifecycle_stage"] == "active"


def test_unknown_runs_are_404_and_runs_belong_to_their_experiment(client: TestClient) -> None:
    exp, other = experiment(client, "a"), experiment(client, "b")
    created = run(client, exp["id"])
    assert client.get(f"/api/experiments/{exp['id']}/runs/{'0' * 32}").status_code == 404
    assert client.get(f"/api/experiments/{other['id']}/runs/{created['id']}").status_code == 404
    assert client.post("/api/experiments/999/runs", json={}).status_code == 404
    assert client.get(f"/api/experiments/{exp['id']}/runs/bad!id").status_code == 400


def test_wrong_types_are_422(client: TestClient) -> None:
    exp = experiment(client)
    assert client.post(f"/api/experiments/{exp['id']}/runs", json={"parameters": [1, 2]}).status_code == 422
    assert (
        client.post(f"/api/experiments/{exp['id']}/runs", json={"start_time": "yesterday"}).status_code == 422
    )
