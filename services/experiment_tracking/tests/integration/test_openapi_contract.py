"""What the fuzzer checks, pinned: a wrong method is a 405 naming every allowed one, in each API's shape."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_wrong_method_on_an_mlflow_route_is_405_with_mlflow_body_and_allow(client: TestClient) -> None:
    response = client.put("/api/2.0/mlflow/runs/get")
    assert response.status_code == 405
    # the body MLflow clients read to fall back to another endpoint
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert response.headers["allow"] == "GET"


def test_wrong_method_on_a_native_route_lists_every_method_at_the_path(client: TestClient) -> None:
    response = client.put("/api/experiments/0/runs/abc")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "DELETE, GET, PATCH"


def test_a_boolean_is_not_an_epoch_time(client: TestClient) -> None:
    created = client.post("/api/experiments/0/runs", json={"start_time": False})
    assert created.status_code == 422, created.text
    run = client.post("/api/experiments/0/runs", json={}).json()
    finished = client.patch(
        f"/api/experiments/0/runs/{run['id']}", json={"status": "FINISHED", "end_time": True}
    )
    assert finished.status_code == 422, finished.text


def test_405_on_a_fixed_segment_does_not_advertise_the_parameter_routes_methods(client: TestClient) -> None:
    response = client.put("/api/2.0/mlflow/logged-models/search")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
