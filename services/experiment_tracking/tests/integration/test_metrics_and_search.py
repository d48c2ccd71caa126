"""Metrics (both body forms, faithful NaN/inf, histories), search, compare and best run."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tracking_helpers import experiment, run, run_path


def test_log_metrics_as_in_the_platform_docs(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    response = client.post(
        f"{run_path(created)}/metrics",
        json={"accuracy": 0.95, "precision": 0.92, "recall": 0.98, "step": 100},
    )
    assert response.status_code == 200 and response.json()["logged"] == 3
    latest = client.get(f"{run_path(created)}/metrics").json()
    assert latest["accuracy"]["value"] == 0.95 and latest["accuracy"]["step"] == 100


def test_batch_form_and_full_history_with_pages(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    points = [{"key": "loss", "value": 1 / (s + 1), "step": s, "timestamp": 1000 + s} for s in range(25)]
    assert client.post(f"{run_path(created)}/metrics", json={"metrics": points}).status_code == 200
    first = client.get(f"{run_path(created)}/metrics/loss/history", params={"limit": 10}).json()
    steps = [p["step"] for p in first["items"]]
    token = first["next_page_token"]
    while token:
        page = client.get(
            f"{run_path(created)}/metrics/loss/history", params={"limit": 10, "page_token": token}
        ).json()
        steps += [p["step"] for p in page["items"]]
        token = page["next_page_token"]
    assert steps == list(range(25))


def test_latest_value_is_the_greatest_step_not_the_last_written(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    client.post(f"{run_path(created)}/metrics", json={"acc": 0.9, "step": 5})
    client.post(f"{run_path(created)}/metrics", json={"acc": 0.1, "step": 2})
    assert client.get(f"{run_path(created)}/metrics").json()["acc"]["value"] == 0.9


def test_nan_and_infinities_are_stored_and_returned_faithfully(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    body = {
        "metrics": [
            {"key": "a", "value": "NaN"},
            {"key": "b", "value": "Infinity"},
            {"key": "c", "value": "-Infinity"},
        ]
    }
    assert client.post(f"{run_path(created)}/metrics", json=body).status_code == 200
    assert client.get(run_path(created)).json()["metrics"] == {"a": "NaN", "b": "Infinity", "c": "-Infinity"}
    history = client.get(f"{run_path(created)}/metrics/a/history").json()["items"]
    assert [p["value"] for p in history] == ["NaN"]


def test_bad_metric_input_is_400_and_stores_nothing(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    path = f"{run_path(created)}/metrics"
    assert client.post(path, json={"acc": "high"}).status_code == 400
    assert client.post(path, json={"bad key!": 1.0}).status_code == 400
    assert client.post(path, json={"step": 3}).status_code == 400
    oversize = {"metrics": [{"key": f"m{i}", "value": 1.0} for i in range(1001)]}
    rejected = client.post(path, json=oversize)
    assert rejected.status_code == 400 and "1000" in rejected.json()["error"]["message"]
    mixed = {"metrics": [{"key": "ok", "value": 1.0}, {"key": "bad", "value": "x"}]}
    assert client.post(path, json=mixed).status_code == 400
    assert client.get(run_path(created)).json()["metrics"] == {}


def _populate(client: TestClient) -> tuple[str, list[dict]]:
    exp = experiment(client)
    runs = []
    for i, (model, acc) in enumerate((("rf", 0.91), ("rf", 0.85), ("gbm", 0.95), ("rf", 0.97))):
        created = run(client, exp["id"], parameters={"model": model}, tags={"team": "x" if i % 2 else "y"})
        client.post(f"{run_path(created)}/metrics", json={"accuracy": acc, "f1": acc - 0.1})
        client.patch(run_path(created), json={"status": "FINISHED" if i != 3 else "FAILED"})
        runs.append(created)
    return exp["id"], runs


def test_search_with_the_filter_language_and_ordering(client: TestClient) -> None:
    exp_id, runs = _populate(client)
    body = {
        "experiment_ids": [exp_id],
        "filter": 'metrics.accuracy > 0.9 and params.model = "rf" and attributes.status = "FINISHED"',
        "order_by": ["metrics.f1 DESC"],
    }
    found = client.post("/api/runs/search", json=body).json()["items"]
    assert [r["id"] for r in found] == [runs[0]["id"]]
    ordered = client.post(
        "/api/runs/search", json={"experiment_ids": [exp_id], "order_by": ["metrics.f1 DESC"]}
    )
    assert [r["metrics"]["accuracy"] for r in ordered.json()["items"]] == [0.97, 0.95, 0.91, 0.85]


def test_invalid_filter_is_400_naming_the_position(client: TestClient) -> None:
    exp_id, _ = _populate(client)
    response = client.post(
        "/api/runs/search", json={"experiment_ids": [exp_id], "filter": "metrics.acc >> 1"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_FILTER" and "position" in error["message"]
    assert isinstance(error["details"]["position"], int)


def test_best_run_by_metric(client: TestClient) -> None:
    exp_id, runs = _populate(client)
    best = client.get(f"/api/experiments/{exp_id}/best-run", params={"metric": "accuracy"}).json()
    assert best["id"] == runs[3]["id"]
    worst = client.get(f"/api/experiments/{exp_id}/best-run", params={"metric": "accuracy", "mode": "min"})
    assert worst.json()["id"] == runs[1]["id"]
    finished = client.get(
        f"/api/experiments/{exp_id}/best-run",
        params={"metric": "accuracy", "filter": "attributes.status = 'FINISHED'"},
    )
    assert finished.json()["id"] == runs[2]["id"]
    none = client.get(f"/api/experiments/{exp_id}/best-run", params={"metric": "missing"})
    assert none.status_code == 404


def test_compare_runs_side_by_side_with_differing_params(client: TestClient) -> None:
    exp = experiment(client)
    a = run(client, exp["id"], parameters={"model": "rf", "seed": 1})
    b = run(client, exp["id"], parameters={"model": "gbm", "seed": 1})
    client.post(f"{run_path(a)}/metrics", json={"acc": 0.9})
    client.post(f"{run_path(b)}/metrics", json={"acc": 0.8, "loss": 0.3})
    compared = client.get("/api/runs/compare", params={"run_ids": f"{a['id']},{b['id']}"}).json()
    assert compared["params"]["model"] == {a["id"]: "rf", b["id"]: "gbm"}
    assert compared["differing_params"] == ["model"]
    assert compared["metrics"]["loss"] == {a["id"]: None, b["id"]: 0.3}
    assert client.get("/api/runs/compare", params={"run_ids": "f" * 32}).status_code == 404


def test_histories_of_several_runs_for_plotting(client: TestClient) -> None:
    exp = experiment(client)
    a, b = run(client, exp["id"]), run(client, exp["id"])
    for created, scale in ((a, 1.0), (b, 2.0)):
        points = [{"key": "loss", "value": scale * s, "step": s} for s in range(3)]
        client.post(f"{run_path(created)}/metrics", json={"metrics": points})
    series = client.get("/api/metrics/history", params={"run_ids": [a["id"], b["id"]], "key": "loss"}).json()[
        "series"
    ]
    assert [[p["value"] for p in s["points"]] for s in series] == [[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]]


def test_keys_and_names_with_slashes_work_in_paths(client: TestClient) -> None:
    exp = experiment(client, "/Users/ana/churn")
    assert client.get("/api/experiments/by-name//Users/ana/churn").json()["id"] == exp["id"]
    created = run(client, exp["id"], tags={"team/owner": "ana"})
    client.post(f"{run_path(created)}/metrics", json={"train/loss": 0.5})
    history = client.get(f"{run_path(created)}/metrics/train/loss/history").json()
    assert [p["value"] for p in history["items"]] == [0.5]
    assert client.delete(f"{run_path(created)}/tags/team/owner").status_code == 204
