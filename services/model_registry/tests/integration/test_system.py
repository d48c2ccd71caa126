from __future__ import annotations

from fastapi.testclient import TestClient
from registry_helpers import register


def test_health_ready_metrics_and_docs(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/health/").status_code == 200
    ready = client.get("/ready").json()
    assert ready == {"status": "ready", "checks": {"database": "ok", "artifact_store": "ok"}}
    register(client, "metered")
    client.get("/api/models/metered")
    metrics = client.get("/metrics").text
    assert 'route="/api/models/{name}"' in metrics
    assert "mlops_http_request_duration_seconds_bucket" in metrics
    assert client.get("/docs").status_code == 200
    assert "/api/models/{name}/versions/{version}/download" in client.get("/openapi.json").json()["paths"]


def test_unknown_route_uses_the_error_shape_and_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/api/nothing-here", headers={"X-Request-ID": "abc123"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert response.headers["x-request-id"] == "abc123"


def test_every_mutation_is_audited(client: TestClient) -> None:
    register(client, "audited")
    client.put("/api/models/audited/aliases/prod", json={"version": "1"})
    client.post("/api/models", json={"name": "bad name"})
    log = client.get("/api/audit-log").json()
    assert [(e["method"], e["path"]) for e in log["items"]] == [
        ("PUT", "/api/models/audited/aliases/prod"),
        ("POST", "/api/models"),
    ]
    assert log["items"][0]["actor"] == "anonymous"


def test_oversized_json_bodies_are_413(client: TestClient) -> None:
    big = {"name": "big", "framework": "onnx", "description": "x" * 20_000_000}
    response = client.post("/api/models", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    def streamed():
        yield b'{"name": "big", "description": "'
        for _ in range(20):
            yield b"x" * 1_000_000
        yield b'"}'

    chunked = client.post("/api/models", content=streamed(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert client.get("/api/models").json()["total"] == 0
