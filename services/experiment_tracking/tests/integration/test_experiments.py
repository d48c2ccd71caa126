"""Native experiment API on SQLite + local files and PostgreSQL + S3."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tracking_helpers import experiment, run


def test_create_then_get_by_id_and_by_name(client: TestClient) -> None:
    created = experiment(
        client, "model-optimization-2024", description="Hyperparameter tuning", tags={"team": "growth"}
    )
    assert created["description"] == "Hyperparameter tuning" and created["tags"] == {"team": "growth"}
    assert client.get(f"/api/experiments/{created['id']}").json() == created
    assert client.get("/api/experiments/by-name/model-optimization-2024").json()["id"] == created["id"]


def test_default_experiment_zero_exists(client: TestClient) -> None:
    assert client.get("/api/experiments/0").json()["name"] == "Default"


def test_duplicate_name_is_409_and_nothing_is_created(client: TestClient) -> None:
    experiment(client, "dup")
    response = client.post("/api/experiments", json={"name": "dup"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "EXPERIMENT_EXISTS"
    assert [e["name"] for e in client.get("/api/experiments").json()["items"]].count("dup") == 1


def test_unknown_experiment_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/api/experiments/424242")
    assert response.status_code == 404
    assert "424242" in response.json()["error"]["message"]
    assert client.get("/api/experiments/by-name/nope").status_code == 404
    assert client.get("/api/experiments/not-a-number").status_code == 400


def test_rename_and_describe(client: TestClient) -> None:
    created = experiment(client, "old")
    updated = client.patch(
        f"/api/experiments/{created['id']}", json={"name": "new", "description": "d", "tags": {"a": "1"}}
    ).json()
    assert (updated["name"], updated["description"], updated["tags"]) == ("new", "d", {"a": "1"})
    experiment(client, "taken")
    clash = client.patch(f"/api/experiments/{created['id']}", json={"name": "taken"})
    assert clash.status_code == 409


def test_delete_is_soft_hides_runs_and_restore_brings_both_back(client: TestClient) -> None:
    created = experiment(client, "soft")
    made = run(client, created["id"])
    assert client.delete(f"/api/experiments/{created['id']}").status_code == 204
    assert "soft" not in [e["name"] for e in client.get("/api/experiments").json()["items"]]
    deleted = client.get("/api/experiments", params={"view": "DELETED_ONLY"}).json()["items"]
    assert [e["name"] for e in deleted] == ["soft"]
    assert client.get(f"/api/experiments/{created['id']}/runs").json()["items"] == []
    refused = client.post(f"/api/experiments/{created['id']}/runs", json={})
    assert refused.status_code == 409
    restored = client.post(f"/api/experiments/{created['id']}/restore").json()
    assert restored["lifecycle_stage"] == "active"
    runs = client.get(f"/api/experiments/{created['id']}/runs").json()["items"]
    assert [r["id"] for r in runs] == [made["id"]]


def test_list_filters_by_prefix_and_tag_orders_and_pages(client: TestClient) -> None:
    for name, team in (("churn-a", "x"), ("churn-b", "y"), ("churn-c", "x"), ("fraud", "x")):
        experiment(client, name, tags={"team": team})
    by_prefix = client.get("/api/experiments", params={"name_prefix": "churn", "order_by": "name DESC"})
    assert [e["name"] for e in by_prefix.json()["items"]] == ["churn-c", "churn-b", "churn-a"]
    tagged = client.get("/api/experiments", params={"filter": "tags.team = 'x'", "order_by": "name"})
    assert [e["name"] for e in tagged.json()["items"]] == ["churn-a", "churn-c", "fraud"]
    first = client.get("/api/experiments", params={"order_by": "name", "limit": 2}).json()
    second = client.get(
        "/api/experiments", params={"order_by": "name", "limit": 2, "page_token": first["next_page_token"]}
    ).json()
    assert [e["name"] for e in first["items"] + second["items"]] == [
        "Default",
        "churn-a",
        "churn-b",
        "churn-c",
    ]


def test_invalid_names_and_filters_are_4xx(client: TestClient) -> None:
    assert client.post("/api/experiments", json={"name": ""}).status_code == 422
    assert client.post("/api/experiments", json={"name": "x" * 501}).status_code == 422
    bad = client.get("/api/experiments", params={"filter": "name LIKE"})
    assert bad.status_code == 400 and "position" in bad.json()["error"]["message"]
    assert client.get("/api/experiments", params={"page_token": "garbage"}).status_code == 400
