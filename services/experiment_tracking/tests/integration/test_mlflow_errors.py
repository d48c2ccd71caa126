"""The MLflow REST API keeps MLflow's error shape ({"error_code", "message"}) for every error the
kit can answer: malformed JSON, 413 and 504 from the middleware, 405, and a missing body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from experiment_tracking.app import create_app
from experiment_tracking.settings import TrackingSettings
from fastapi.testclient import TestClient

MLFLOW = "/api/2.0/mlflow"


def _mlflow_error(body: dict, error_code: str) -> None:
    assert set(body) <= {"error_code", "message", "details"}, body
    assert body["error_code"] == error_code, body
    assert body["message"]


def _runs_in(client: TestClient, experiment_id: str) -> int:
    found = client.post(f"{MLFLOW}/runs/search", json={"experiment_ids": [experiment_id]})
    return len(found.json().get("runs", []))


def test_runs_create_without_a_body_is_a_400_and_creates_no_run(client: TestClient) -> None:
    response = client.post(f"{MLFLOW}/runs/create")
    assert response.status_code == 400
    _mlflow_error(response.json(), "INVALID_PARAMETER_VALUE")
    assert "experiment_id" in response.json()["message"]
    assert _runs_in(client, "0") == 0


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_malformed_json_is_a_400_in_mlflow_shape_with_line_and_column(
    client: TestClient, prefix: str
) -> None:
    for path in ("/runs/create", "/experiments/create"):
        response = client.post(
            prefix + path,
            content=b'{"experiment_id": "0",\n oops}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, path
        body = response.json()
        _mlflow_error(body, "INVALID_PARAMETER_VALUE")
        assert (body["details"]["line"], body["details"]["column"]) == (2, 2), body
    assert _runs_in(client, "0") == 0


def test_wrong_method_on_an_mlflow_route_speaks_mlflow(client: TestClient) -> None:
    response = client.put(f"{MLFLOW}/runs/create")
    _mlflow_error(response.json(), "ENDPOINT_NOT_FOUND")


@pytest.fixture
def small_limits(tmp_path: Path) -> Iterator[TestClient]:
    settings = TrackingSettings(
        data_dir=tmp_path, log_level="WARNING", max_json_bytes=1000, max_upload_bytes=1000
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_body_too_large_is_mlflow_shaped_under_mlflow_and_platform_shaped_elsewhere(
    small_limits: TestClient,
) -> None:
    big = b'{"name": "' + b"x" * 5000 + b'"}'
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):
        response = small_limits.post(
            f"{prefix}/experiments/create", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        _mlflow_error(response.json(), "INVALID_PARAMETER_VALUE")
    native = small_limits.post("/api/experiments", content=big, headers={"content-type": "application/json"})
    assert native.status_code == 413
    assert native.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_artifact_upload_too_large_is_mlflow_shaped(small_limits: TestClient) -> None:
    response = small_limits.put(
        "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/model.pkl",
        content=b"x" * 5000,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 413
    _mlflow_error(response.json(), "INVALID_PARAMETER_VALUE")


def test_request_timeout_is_mlflow_shaped_under_mlflow(tmp_path: Path) -> None:
    # a timeout no handler can meet: the first await past the deadline ends the request
    settings = TrackingSettings(data_dir=tmp_path, log_level="WARNING", request_timeout_seconds=1e-6)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        response = test_client.get(f"{MLFLOW}/experiments/get", params={"experiment_id": "0"})
        assert response.status_code == 504
        _mlflow_error(response.json(), "DEADLINE_EXCEEDED")
        native = test_client.get("/api/experiments")
        assert native.status_code == 504
        assert native.json()["error"]["code"] == "REQUEST_TIMEOUT"
