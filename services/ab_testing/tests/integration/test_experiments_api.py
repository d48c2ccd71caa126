"""Experiments over HTTP: validation that names the problem, lifecycle, phases, overrides."""

from __future__ import annotations

from ab_helpers import create, experiment
from fastapi.testclient import TestClient


def test_create_read_list_and_the_platform_docs_shape(ab: TestClient) -> None:
    body = create(ab, start=False)
    assert body["key"] == "model_v2_test" and body["status"] == "draft" and body["control"] == "control"
    assert body["seed"] == "model_v2_test" and body["phase"] == 1
    assert ab.get("/api/experiments/model_v2_test").json()["id"] == body["id"]
    assert ab.get(f"/api/experiments/{body['id']}").json()["key"] == "model_v2_test"
    assert ab.get("/api/experiments", params={"status": "draft"}).json()["total"] == 1
    again = ab.post("/api/experiments", json=experiment())
    assert again.status_code == 409 and again.json()["error"]["code"] == "EXPERIMENT_EXISTS"


def test_bad_definitions_are_422_naming_the_problem_and_store_nothing(ab: TestClient) -> None:
    two = [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]
    cases = [
        ({"variants": [{"name": "a", "weight": 0.6}, {"name": "b", "weight": 0.6}]}, "sum to 1"),
        ({"variants": [{"name": "a", "weight": 1.0}]}, "at least 2 variants"),
        ({"variants": [{"name": "a", "weight": 0.5}, {"name": "a", "weight": 0.5}]}, "unique"),
        ({"variants": two, "primary_metric": "nope"}, "'nope'"),
        ({"variants": two, "metrics": [{"name": "r", "type": "ratio"}]}, "numerator"),
        ({"variants": two, "coverage": 1.5}, "coverage"),
        ({"variants": two, "mode": "canary", "canary": {"stages": [50, 10]}}, "stages"),
    ]
    for patch, fragment in cases:
        response = ab.post("/api/experiments", json=experiment("bad") | patch)
        assert response.status_code == 422, (patch, response.text)
        assert fragment in response.text, (fragment, response.text)
    # within ±0.01 is accepted
    ok = ab.post(
        "/api/experiments",
        json=experiment("rounded")
        | {
            "variants": [
                {"name": "a", "weight": 0.333},
                {"name": "b", "weight": 0.333},
                {"name": "c", "weight": 0.333},
            ],
            "primary_metric": None,
        },
    )
    assert ok.status_code == 201
    assert [e["key"] for e in ab.get("/api/experiments").json()["items"]] == ["rounded"]
    assert ab.get("/api/experiments/nope").status_code == 404


def test_lifecycle_transitions(ab: TestClient) -> None:
    create(ab, start=False)
    path = "/api/experiments/model_v2_test"
    assert ab.post(f"{path}/pause").status_code == 409
    assert ab.post(f"{path}/start").json()["status"] == "running"
    assert ab.post(f"{path}/pause").json()["status"] == "paused"
    assert ab.post(f"{path}/start").json()["status"] == "running"
    archive = ab.post(f"{path}/archive")
    assert archive.status_code == 409 and archive.json()["error"]["code"] == "INVALID_TRANSITION"
    stopped = ab.post(f"{path}/stop").json()
    assert stopped["status"] == "stopped" and stopped["stopped_at"]
    assert ab.post(f"{path}/archive").json()["status"] == "archived"
    assert ab.patch(path, json={"description": "x"}).status_code == 409


def test_new_weights_on_a_running_experiment_open_a_new_phase(ab: TestClient) -> None:
    create(ab)
    path = "/api/experiments/model_v2_test"
    users = [f"u{i}" for i in range(400)]
    before = {
        u: ab.get("/api/route", params={"user_id": u, "experiment": "model_v2_test"}).json() for u in users
    }
    updated = ab.patch(
        path,
        json={
            "variants": [
                {"name": "control", "weight": 0.3, "model_version": "v1.0"},
                {"name": "treatment", "weight": 0.7, "model_version": "v2.0"},
            ]
        },
    ).json()
    assert updated["phase"] == 2 and updated["seed"] == "model_v2_test"
    after = {
        u: ab.get("/api/route", params={"user_id": u, "experiment": "model_v2_test"}).json() for u in users
    }
    assert all(a["phase"] == 2 for a in after.values())
    # same seed: only users in the moved slice of the range change (control -> treatment)
    moved = [u for u in users if before[u]["variant"] != after[u]["variant"]]
    assert moved and all(before[u]["variant"] == "control" for u in moved)
    reseeded = ab.patch(path, json={"reassign": True}).json()
    assert reseeded["phase"] == 3 and reseeded["seed"] != "model_v2_test"
    phases = ab.get(f"{path}/phases").json()["items"]
    assert [p["number"] for p in phases] == [1, 2, 3]
    assert phases[0]["ended_at"] and phases[2]["ended_at"] is None
    assert [v["weight"] for v in phases[1]["variants"]] == [0.3, 0.7]
