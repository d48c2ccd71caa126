"""What storage holds, held at the edge (issue 12), native API and MLflow API alike, on SQLite
and PostgreSQL: 64-bit steps, timestamps that are dates, page offsets, no NUL, bounded strings,
and an audit entry for every write. NaN and infinite metric values still round-trip."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from experiment_tracking.app import create_app
from experiment_tracking.settings import TrackingSettings
from fastapi.testclient import TestClient
from mlops_kit.testing.openapi_bounds import offset_failures, request_problems
from tracking_helpers import experiment, run, run_path

MLFLOW = "/api/2.0/mlflow"
# a step or timestamp no BIGINT holds, or (timestamps) no date has
OUT_OF_RANGE = [2**63, -(2**63) - 1, 2**70, 1e20, -1e20, "9223372036854775808"]
# MLflow bodies are parsed as JSON numbers: -(2^63)-1 rounds to -(2^63), a valid step
MLFLOW_OUT_OF_RANGE = [2**63, -(2**64), 2**70, 1e20, -1e20, "9223372036854775808"]
HUGE_TOKEN = base64.urlsafe_b64encode(orjson.dumps({"offset": 2**63})).decode()


def test_every_request_string_array_map_and_integer_is_bounded(tmp_path: Path) -> None:
    spec = create_app(TrackingSettings(data_dir=tmp_path)).openapi()
    assert request_problems(spec) == []


def test_every_list_endpoint_refuses_offsets_and_page_tokens_out_of_range(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    assert offset_failures(client, client.app.openapi(), {}) == []
    pages = [
        ("get", "/api/experiments", {"page_token": HUGE_TOKEN}),
        ("get", f"/api/experiments/{created['experiment_id']}/runs", {"page_token": HUGE_TOKEN}),
        ("get", f"{run_path(created)}/metrics/m/history", {"page_token": HUGE_TOKEN}),
        ("get", f"{MLFLOW}/experiments/search", {"page_token": HUGE_TOKEN}),
        ("get", f"/api/experiments/{2**63}", {}),
        ("get", f"{MLFLOW}/experiments/get", {"experiment_id": str(2**64)}),
    ]
    for method, path, params in pages:
        response = client.request(method, path, params=params)
        assert 400 <= response.status_code < 500, (path, response.text)
    body = {"experiment_ids": [created["experiment_id"]], "page_token": HUGE_TOKEN}
    assert client.post(f"{MLFLOW}/runs/search", json=body).status_code == 400
    assert client.post("/api/runs/search", json=body).status_code == 400


@pytest.mark.parametrize("field", ["step", "timestamp"])
@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=str)
def test_native_metric_step_or_timestamp_out_of_range_is_a_400(
    client: TestClient, field: str, value: object
) -> None:
    created = run(client, experiment(client)["id"])
    response = client.post(f"{run_path(created)}/metrics", json={"loss": 0.5, field: value})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    assert field in response.json()["error"]["message"]
    items = [{"key": "loss", "value": 1.0, field: value}]
    assert client.post(f"{run_path(created)}/metrics", json={"metrics": items}).status_code == 400
    assert client.get(f"{run_path(created)}/metrics").json() in ({}, {"metrics": {}}, [])


@pytest.mark.parametrize("field", ["step", "timestamp"])
@pytest.mark.parametrize("value", MLFLOW_OUT_OF_RANGE, ids=str)
def test_mlflow_metric_step_or_timestamp_out_of_range_is_mlflows_400(
    client: TestClient, field: str, value: object
) -> None:
    run_id = run(client, experiment(client)["id"])["id"]
    metric = {"key": "loss", "value": 0.5, "timestamp": 1, "step": 0} | {field: value}
    for path, body in (
        ("runs/log-metric", {"run_id": run_id, **metric}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [metric]}),
    ):
        response = client.post(f"{MLFLOW}/{path}", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    history = client.get(f"{MLFLOW}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    assert history.json().get("metrics", []) == []


@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_run_times_out_of_range_are_refused_on_both_apis(client: TestClient, field: str) -> None:
    exp = experiment(client)["id"]
    created = run(client, exp)
    if field == "start_time":
        assert client.post(f"/api/experiments/{exp}/runs", json={field: 2**63}).status_code == 422
        mlflow = client.post(f"{MLFLOW}/runs/create", json={"experiment_id": exp, field: 10**17})
    else:
        assert client.patch(run_path(created), json={field: -(2**63) - 1}).status_code == 422
        mlflow = client.post(f"{MLFLOW}/runs/update", json={"run_id": created["id"], field: 2**70})
    assert mlflow.status_code == 400, mlflow.text
    assert mlflow.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_extreme_but_storable_steps_and_non_finite_values_round_trip(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    points = [
        {"key": "m", "value": "NaN", "step": 2**63 - 1, "timestamp": 253_402_214_399_999},
        {"key": "m", "value": "-Infinity", "step": -(2**63), "timestamp": -62_135_510_400_000},
    ]
    response = client.post(f"{MLFLOW}/runs/log-batch", json={"run_id": created["id"], "metrics": points})
    assert response.status_code == 200, response.text
    history = client.get(f"{MLFLOW}/metrics/get-history", params={"run_id": created["id"], "metric_key": "m"})
    got = sorted((m["step"], m["timestamp"], m["value"]) for m in history.json()["metrics"])
    assert got == [(-(2**63), -62_135_510_400_000, "-Infinity"), (2**63 - 1, 253_402_214_399_999, "NaN")]


def test_nul_is_refused_the_same_on_both_backends_in_both_apis(client: TestClient) -> None:
    native = client.post("/api/experiments", json={"name": "a\x00b"})
    assert native.status_code == 422, native.text
    assert native.json()["error"]["code"] == "VALIDATION_ERROR"
    mlflow = client.post(f"{MLFLOW}/experiments/create", json={"name": "a\x00b"})
    assert mlflow.status_code == 400, mlflow.text
    assert mlflow.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    in_path = client.get(f"{MLFLOW}/experiments/get-by-name", params={"experiment_name": "a\x00b"})
    assert in_path.status_code == 400 and in_path.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    created = run(client, experiment(client)["id"])
    tag = client.post(f"{MLFLOW}/runs/set-tag", json={"run_id": created["id"], "key": "k", "value": "\x00"})
    assert tag.status_code == 400
    names = [e["name"] for e in client.get("/api/experiments").json()["items"]]
    assert names == ["churn", "Default"] or sorted(names) == ["Default", "churn"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "e", "tags": {"k": "v" * 20_001}}, "tags"),
        ({"name": "e", "description": "d" * 20_001}, "description"),
        ({"name": "e", "artifact_location": "s3://b/" + "x" * 900}, "artifact_location"),
        ({"name": "e" * 501}, "name"),
    ],
)
def test_oversize_experiment_field_is_a_422_naming_it(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/api/experiments", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]


def test_an_artifact_location_the_column_cannot_hold_is_refused_by_mlflow_too(client: TestClient) -> None:
    body = {"name": "e", "artifact_location": "s3://b/" + "x" * 995}
    response = client.post(f"{MLFLOW}/experiments/create", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    fits = client.post(
        f"{MLFLOW}/experiments/create", json={"name": "e", "artifact_location": "s3://b/" + "x" * 890}
    )
    assert fits.status_code == 200, fits.text
    run_id = client.post(f"{MLFLOW}/runs/create", json={"experiment_id": fits.json()["experiment_id"]})
    assert run_id.status_code == 200, run_id.text


def test_oversize_run_field_is_a_422_naming_it(client: TestClient) -> None:
    exp = experiment(client)["id"]
    for body, field in (
        ({"tags": {"k": "v" * 8001}}, "tags"),
        ({"parameters": {"p": "v" * 6001}}, "parameters"),
        ({"environment": {"e": "v" * 65_537}}, "environment"),
        ({"datasets": [{"name": "d", "source": "s"}] * 1001}, "datasets"),
    ):
        response = client.post(f"/api/experiments/{exp}/runs", json=body)
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]["message"]


def test_every_write_leaves_an_audit_entry_in_both_apis(client: TestClient) -> None:
    exp = experiment(client)["id"]
    created = run(client, exp)
    writes = [
        client.post(f"{run_path(created)}/metrics", json={"loss": 0.1}),
        client.post(f"{run_path(created)}/params", json={"lr": 0.1}),
        client.post(f"{MLFLOW}/experiments/create", json={"name": "other"}),
        client.post(f"{MLFLOW}/runs/log-batch", json={"run_id": created["id"], "metrics": []}),
        client.post(f"{MLFLOW}/runs/set-tag", json={"run_id": created["id"], "key": "k", "value": "v"}),
    ]
    assert all(w.status_code < 300 for w in writes), [w.text for w in writes]
    entries = client.get("/api/audit-log", params={"limit": 1000}).json()["items"]
    audited = {e["route"] for e in entries} | {e["path"] for e in entries}
    assert audited >= {
        "/api/experiments",
        "/api/experiments/{experiment_id}/runs",
        "/api/experiments/{experiment_id}/runs/{run_id}/metrics",
        "/api/experiments/{experiment_id}/runs/{run_id}/params",
        f"{MLFLOW}/experiments/create",
        f"{MLFLOW}/runs/log-batch",
        f"{MLFLOW}/runs/set-tag",
    }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "runs/log-inputs",
            {
                "datasets": [
                    {"dataset": {"name": "d" * 501, "digest": "x", "source_type": "s", "source": "s"}}
                ]
            },
        ),
        (
            "runs/log-inputs",
            {"datasets": [{"dataset": {"name": "d", "digest": "x" * 37, "source_type": "s", "source": "s"}}]},
        ),
        ("runs/outputs", {"models": [{"model_id": "m" * 37, "step": 0}]}),
        ("runs/outputs", {"models": [{"model_id": "m", "step": 2**64}]}),
        ("runs/log-metric", {"key": "k", "value": 1, "timestamp": 1, "model_id": "m" * 37}),
        ("runs/log-metric", {"key": "k", "value": 1, "timestamp": 1, "dataset_name": "d" * 501}),
    ],
)
def test_mlflow_fields_longer_than_their_columns_are_refused(
    client: TestClient, path: str, body: dict
) -> None:
    run_id = run(client, experiment(client)["id"])["id"]
    response = client.post(f"{MLFLOW}/{path}", json={"run_id": run_id, **body})
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_an_artifact_path_segment_no_file_system_holds_is_refused_not_a_500(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    long_name = "x" * 256
    put = client.put(f"{run_path(created)}/artifacts/dir/{long_name}", content=b"data")
    assert put.status_code == 400, put.text
    assert client.get(f"{MLFLOW}-artifacts/artifacts/{long_name}").status_code == 400
    assert client.put(f"{run_path(created)}/artifacts/dir/{'x' * 200}", content=b"data").status_code == 200
