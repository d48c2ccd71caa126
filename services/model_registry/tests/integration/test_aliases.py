from __future__ import annotations

from fastapi.testclient import TestClient
from registry_helpers import register


def _three(client: TestClient, name: str = "m") -> None:
    for _ in range(3):
        register(client, name)


def test_alias_set_move_and_resolve_every_way(client: TestClient) -> None:
    _three(client)
    first = client.put("/api/models/m/aliases/production", json={"version": "1"})
    assert first.status_code == 200 and first.json()["version"] == "1"
    client.put("/api/models/m/aliases/production", json={"version": "2"})
    assert client.get("/api/models/m/aliases/production").json()["version"] == "2"
    assert client.get("/api/models/m@production").json()["version"] == "2"
    assert client.get("/api/models/m/versions/@production").json()["version"] == "2"
    assert client.get("/api/models/m").json()["aliases"] == {"production": "2"}
    assert client.get("/api/models/m/versions/2").json()["aliases"] == ["production"]


def test_alias_history_records_who_and_rollback_restores(client: TestClient) -> None:
    _three(client)
    client.put("/api/models/m/aliases/champion", json={"version": "1"})
    client.put("/api/models/m/aliases/champion", json={"version": "3"})
    rolled = client.post("/api/models/m/aliases/champion/rollback")
    assert rolled.status_code == 200 and rolled.json()["version"] == "1"
    history = client.get("/api/models/m/history?kind=alias&of=champion").json()
    assert [(h["action"], h["from_value"], h["to_value"]) for h in history["items"]] == [
        ("rollback", "3", "1"),
        ("move", "1", "3"),
        ("set", None, "1"),
    ]
    assert {h["actor"] for h in history["items"]} == {"anonymous"}


def test_rollback_of_first_set_removes_alias(client: TestClient) -> None:
    _three(client)
    client.put("/api/models/m/aliases/staging", json={"version": "2"})
    assert client.post("/api/models/m/aliases/staging/rollback").status_code == 200
    assert client.get("/api/models/m/aliases/staging").status_code == 404


def test_rollback_without_history_is_409(client: TestClient) -> None:
    _three(client)
    response = client.post("/api/models/m/aliases/never/rollback")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "NOTHING_TO_ROLL_BACK"


def test_delete_alias_and_bad_alias_input(client: TestClient) -> None:
    _three(client)
    client.put("/api/models/m/aliases/blue", json={"version": "1"})
    assert client.delete("/api/models/m/aliases/blue").status_code == 204
    assert client.delete("/api/models/m/aliases/blue").status_code == 404
    assert client.put("/api/models/m/aliases/9bad", json={"version": "1"}).status_code == 422
    assert client.put("/api/models/m/aliases/ok", json={"version": "7"}).status_code == 404
    assert client.put("/api/models/m/aliases/ok", json={}).status_code == 422
    assert client.get("/api/models/m/aliases").json() == []


def test_stage_transition_archives_existing_and_rolls_back(client: TestClient) -> None:
    _three(client)
    client.post("/api/models/m/versions/1/stage", json={"stage": "Production"})
    moved = client.post(
        "/api/models/m/versions/2/stage", json={"stage": "production", "archive_existing": True}
    )
    assert moved.status_code == 200 and moved.json()["stage"] == "Production"
    assert client.get("/api/models/m/versions/1").json()["stage"] == "Archived"
    undone = client.post("/api/models/m/stages/Production/rollback")
    assert sorted(undone.json()) == ["1", "2"]
    assert client.get("/api/models/m/versions/1").json()["stage"] == "Production"
    assert client.get("/api/models/m/versions/2").json()["stage"] == "None"
    stages = client.get("/api/models/m/history?kind=stage").json()["items"]
    assert stages[0]["action"] == "rollback"


def test_stage_without_archive_keeps_others(client: TestClient) -> None:
    _three(client)
    client.post("/api/models/m/versions/1/stage", json={"stage": "Staging"})
    client.post("/api/models/m/versions/2/stage", json={"stage": "Staging"})
    staged = client.get("/api/models/m/versions?stage=Staging").json()["items"]
    assert sorted(v["version"] for v in staged) == ["1", "2"]
    bad = client.post("/api/models/m/versions/1/stage", json={"stage": "Live"})
    assert bad.status_code == 422


def test_resolving_one_alias_lists_every_alias_of_the_version(client: TestClient) -> None:
    _three(client)
    for alias in ("production", "champion", "blue"):
        client.put(f"/api/models/m/aliases/{alias}", json={"version": "3"})
    for path in ("/api/models/m/aliases/champion", "/api/models/m@blue", "/api/models/m/versions/3"):
        assert client.get(path).json()["aliases"] == ["blue", "champion", "production"], path
