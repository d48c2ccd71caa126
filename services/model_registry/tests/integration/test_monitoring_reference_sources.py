"""Reference profiles by reference (issue 13): a feature-store training frame and a dataset logged
on a tracking run, fetched from real feature store and experiment tracking processes — on SQLite
and PostgreSQL; the profile equals the one built from the same data uploaded directly."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from mlops_kit.testing import free_port, service_on
from registry_helpers import register

REF = "/api/models/churn/versions/1/monitoring/reference"
N = 300


@pytest.fixture(scope="module")
def peers(backend: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Real feature store and experiment tracking processes, on the registry's kind of database."""
    kind = "postgres" if backend[0] == "postgres-s3" else "sqlite"
    tmp = tmp_path_factory.mktemp(f"peers-{kind}")
    env = {"MLOPS_FEATURE_STORE_ONLINE_STORE": "sqlite"}
    with (
        service_on("feature_store", kind, tmp / "fs", env) as feature_store,
        service_on("experiment_tracking", kind, tmp / "tracking") as tracking,
    ):
        yield {"feature_store": feature_store, "tracking": tracking}


@pytest.fixture
def churn(client: TestClient, peers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> TestClient:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings, "feature_store_url", peers["feature_store"])
    monkeypatch.setattr(settings, "experiment_tracking_url", peers["tracking"])
    register(client, "churn", version="1")
    return client


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


# ---- the feature store ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features(peers: dict[str, str]) -> dict[str, Any]:
    """An entity and a feature set with N users' rows; what a training request for them asks."""
    unique = secrets.token_hex(3)
    with httpx.Client(base_url=peers["feature_store"], timeout=30) as fs:
        _ok(fs.post("/api/entities", json={"name": f"user{unique}", "join_keys": ["user_id"]}))
        spec = [
            {"name": "age", "type": "int"},
            {"name": "plan", "type": "string"},
            {"name": "spend", "type": "float"},
        ]
        _ok(
            fs.post(
                "/api/feature-sets",
                json={"name": f"users{unique}", "entity": f"user{unique}", "features": spec},
            )
        )
        rows = [
            {
                "user_id": f"u{i}",
                "event_timestamp": "2026-01-01T00:00:00Z",
                "age": 20 + i % 50,
                "plan": ["free", "pro", "team"][i % 3],
                "spend": None if i % 11 == 0 else i * 1.5,
            }
            for i in range(N)
        ]
        _ok(fs.post(f"/api/feature-sets/users{unique}/rows", json={"rows": rows}))
        entity_rows = [
            {"user_id": f"u{i}", "event_timestamp": "2026-02-01T00:00:00Z", "label": i % 2} for i in range(N)
        ]
        request = {
            "entity_rows": entity_rows,
            "features": [f"users{unique}:age", f"users{unique}:plan", f"users{unique}:spend"],
        }
        frame = _ok(fs.post("/api/features/historical", json=request))
    return {"request": request, "frame": frame, "set": f"users{unique}"}


def test_a_feature_store_training_frame_gives_the_profile_of_the_same_rows(
    churn: TestClient, features: dict[str, Any]
) -> None:
    source = {"feature_store": features["request"]}
    response = churn.put(REF, json={"source": source, "exclude": ["user_id", "event_timestamp"]})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == N
    fetched = churn.get(REF).json()["profile"]
    frame = features["frame"]
    records = [dict(zip(frame["columns"], row, strict=True)) for row in frame["rows"]]
    direct = [{k: v for k, v in r.items() if k not in ("user_id", "event_timestamp")} for r in records]
    assert churn.put(REF, json=direct).status_code == 200
    assert fetched == churn.get(REF).json()["profile"]
    assert {c["name"] for c in fetched["columns"]} == {"label", "age", "plan", "spend"}


def test_event_timestamp_is_left_out_by_default_and_types_can_be_declared(
    churn: TestClient, features: dict[str, Any]
) -> None:
    body = {"source": {"feature_store": features["request"]}, "types": {"label": "categorical"}}
    response = churn.put(REF, json=body)
    assert response.status_code == 200, response.text
    kinds = {c["name"]: c["kind"] for c in response.json()["columns"]}
    assert kinds == {
        "user_id": "categorical",
        "label": "categorical",
        "age": "numeric",
        "plan": "categorical",
        "spend": "numeric",
    }


def test_feature_store_errors_are_named_and_nothing_is_stored(
    churn: TestClient, features: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    request = {**features["request"], "features": ["nope:age"]}
    missing = _error(churn.put(REF, json={"source": {"feature_store": request}}), 404)
    assert missing["code"] == "SOURCE_NOT_FOUND"
    assert missing["details"]["answer"]["code"] == "FEATURE_SET_NOT_FOUND"
    bad_rows = {**features["request"], "entity_rows": [{"event_timestamp": "2026-01-01T00:00:00Z"}]}
    refused = _error(churn.put(REF, json={"source": {"feature_store": bad_rows}}), 422)
    assert refused["code"] == "INVALID_REFERENCE_SOURCE" and refused["details"]["status"] == 400
    both = {**features["request"], "feature_service": "s"}
    assert (
        _error(churn.put(REF, json={"source": {"feature_store": both}}), 422)["code"]
        == "INVALID_REFERENCE_DATA"
    )
    monkeypatch.setattr(churn.app.state.settings, "feature_store_url", f"http://127.0.0.1:{free_port()}")  # type: ignore[attr-defined]
    down = _error(churn.put(REF, json={"source": {"feature_store": features["request"]}}), 503)
    assert down["code"] == "SOURCE_UNAVAILABLE"
    assert churn.get(REF).status_code == 404


# ---- experiment tracking ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(peers: dict[str, str]) -> dict[str, Any]:
    """A run with a Parquet and a CSV artifact, the Parquet one logged as its `train` dataset."""
    table = pa.table({"x": [float(i % 37) for i in range(N)], "tier": [["a", "b"][i % 2] for i in range(N)]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    with httpx.Client(base_url=peers["tracking"], timeout=30) as tracking:
        mlflow = "/api/2.0/mlflow"
        experiment = _ok(tracking.post(f"{mlflow}/experiments/create", json={"name": secrets.token_hex(4)}))
        created = _ok(
            tracking.post(f"{mlflow}/runs/create", json={"experiment_id": experiment["experiment_id"]})
        )
        run_id = created["run"]["info"]["run_id"]
        base = f"/api/experiments/{experiment['experiment_id']}/runs/{run_id}/artifacts"
        _ok(tracking.put(f"{base}/data/train.parquet", content=sink.getvalue()))
        _ok(tracking.put(f"{base}/data/valid.csv", content=b"x,tier\n1.5,a\n2.5,b\n"))
        datasets = [
            {
                "dataset": {
                    "name": "train",
                    "digest": "d1",
                    "source_type": "run",
                    "source": json.dumps({"uri": f"runs:/{run_id}/data/train.parquet"}),
                }
            },
            {
                "dataset": {
                    "name": "lake",
                    "digest": "d2",
                    "source_type": "s3",
                    "source": "s3://bucket/train.parquet",
                }
            },
        ]
        _ok(tracking.post(f"{mlflow}/runs/log-inputs", json={"run_id": run_id, "datasets": datasets}))
    return {"run_id": run_id, "table": table}


def test_a_runs_logged_dataset_gives_the_profile_of_its_file(churn: TestClient, run: dict[str, Any]) -> None:
    source = {"tracking_run": {"run_id": run["run_id"], "dataset": "train"}}
    response = churn.put(REF, json={"source": source})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == N
    fetched = churn.get(REF).json()["profile"]
    assert churn.put(REF, json=run["table"].to_pylist()).status_code == 200
    assert fetched == churn.get(REF).json()["profile"]
    by_path = {"tracking_run": {"run_id": run["run_id"], "artifact_path": "data/valid.csv"}}
    csv = churn.put(REF, json={"source": by_path, "types": {"x": "categorical"}})
    assert csv.status_code == 200, csv.text
    assert csv.json()["rows"] == 2 and {c["kind"] for c in csv.json()["columns"]} == {"categorical"}


def test_tracking_errors_name_what_is_missing(churn: TestClient, run: dict[str, Any]) -> None:
    run_id = run["run_id"]
    unknown = _error(
        churn.put(REF, json={"source": {"tracking_run": {"run_id": "f" * 32, "dataset": "train"}}}), 404
    )
    assert unknown["code"] == "SOURCE_NOT_FOUND"
    no_dataset = _error(
        churn.put(REF, json={"source": {"tracking_run": {"run_id": run_id, "dataset": "test"}}}), 404
    )
    assert no_dataset["details"]["datasets"] == ["lake", "train"]
    wrong_digest = {"run_id": run_id, "dataset": "train", "digest": "zz"}
    assert (
        _error(churn.put(REF, json={"source": {"tracking_run": wrong_digest}}), 404)["code"]
        == "SOURCE_NOT_FOUND"
    )
    outside = _error(
        churn.put(REF, json={"source": {"tracking_run": {"run_id": run_id, "dataset": "lake"}}}), 422
    )
    assert outside["code"] == "INVALID_REFERENCE_SOURCE"
    no_file = {"run_id": run_id, "artifact_path": "data/none.parquet"}
    assert (
        _error(churn.put(REF, json={"source": {"tracking_run": no_file}}), 404)["code"] == "SOURCE_NOT_FOUND"
    )
    neither = {"run_id": run_id}
    assert (
        _error(churn.put(REF, json={"source": {"tracking_run": neither}}), 422)["code"]
        == "INVALID_REFERENCE_DATA"
    )
    assert churn.get(REF).status_code == 404
