"""Helpers shared by the tracking tests (imported by name: the tests dir is on pytest's pythonpath)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def experiment(client: TestClient, name: str = "churn", **fields: Any) -> dict[str, Any]:
    response = client.post("/api/experiments", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def run(client: TestClient, experiment_id: str, **fields: Any) -> dict[str, Any]:
    response = client.post(f"/api/experiments/{experiment_id}/runs", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


def run_path(created: dict[str, Any]) -> str:
    return f"/api/experiments/{created['experiment_id']}/runs/{created['id']}"
