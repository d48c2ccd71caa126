"""Monitoring REST API (issue 13): reference profiles, prediction and label logs, drift and
performance over a window — on SQLite and PostgreSQL; the numbers equal the core called directly."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlops_kit.testing import BACKENDS, race, service_on
from model_registry.app import create_app
from model_registry.monitoring.performance import compare_with_registered, compute_performance
from model_registry.monitoring.profile import build_profile
from model_registry.monitoring.report import drift
from model_registry.settings import RegistrySettings
from registry_helpers import register

BASE = "/api/models/churn"
REF = f"{BASE}/versions/1/monitoring/reference"


def _reference(n: int = 2000, seed: int = 1) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed)
    return {
        "f1": [float(v) for v in rng.normal(0.0, 1.0, n)],
        "f2": [str(v) for v in rng.choice(["a", "b", "c"], n)],
        "prediction": [int(v) for v in rng.integers(0, 2, n)],
        "label": [int(v) for v in rng.integers(0, 2, n)],
    }


def _records(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _window(prefix: str, hour: int, shift: float, n: int = 400, seed: int = 2) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    shares = [0.7, 0.2, 0.1] if shift else None  # a shifted window moves f1 and the categories of f2
    return [
        {
            "request_id": f"{prefix}-{i}",
            "version": "1",
            "timestamp": f"2026-01-01T{hour:02d}:{i * 60 // n:02d}:00Z",
            "features": {
                "f1": float(rng.normal(shift, 1.0)),
                "f2": str(rng.choice(["a", "b", "c"], p=shares)),
            },
            "prediction": int(rng.integers(0, 2)),
            "probability": float(rng.uniform()),
        }
        for i in range(n)
    ]


def _setup(client: TestClient) -> dict[str, list[Any]]:
    register(client, "churn", version="1", metrics={"accuracy": 0.5, "auc": 0.6})
    reference = _reference()
    response = client.put(REF, json=_records(reference))
    assert response.status_code == 200, response.text
    return reference


def _expected_drift(reference: dict[str, list[Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    current = {
        "f1": [r["features"]["f1"] for r in rows],
        "f2": [r["features"]["f2"] for r in rows],
        "prediction": [r["prediction"] for r in rows],
    }
    return drift(build_profile(reference), current)


def test_reference_from_json_records_is_the_cores_profile(client: TestClient) -> None:
    reference = _setup(client)
    summary = client.put(REF, json=_records(reference)).json()  # replaced, not duplicated
    assert summary["rows"] == 2000 and summary["sampled"] is False
    assert {c["name"]: c["kind"] for c in summary["columns"]} == {
        "f1": "numeric",
        "f2": "categorical",
        "prediction": "numeric",
        "label": "numeric",
    }
    stored = client.get(REF).json()
    assert stored["profile"] == json.loads(build_profile(reference).to_json())
    assert stored["rows"] == 2000 and stored["version"] == "1"


def test_reference_from_csv_with_declared_types(client: TestClient) -> None:
    register(client, "churn", version="1")
    reference = _reference(300)
    lines = ["f1,f2,prediction,label"] + [
        f"{a!r},{b},{c},{d}" for a, b, c, d in zip(*reference.values(), strict=True)
    ]
    response = client.put(
        REF,
        content="\n".join(lines).encode(),
        headers={"content-type": "text/csv"},
        params={"types": ["label:categorical"]},
    )
    assert response.status_code == 200, response.text
    kinds = {c["name"]: c["kind"] for c in response.json()["columns"]}
    assert kinds == {"f1": "numeric", "f2": "categorical", "prediction": "numeric", "label": "categorical"}
    expected = build_profile(
        {
            **reference,
            "label": [str(v) for v in reference["label"]],
            "prediction": [float(v) for v in reference["prediction"]],
        },
        {"f1": "numeric", "f2": "categorical", "prediction": "numeric", "label": "categorical"},
    )
    assert client.get(REF).json()["profile"] == json.loads(expected.to_json())


def test_a_wrong_type_is_a_422_naming_row_and_column(client: TestClient) -> None:
    register(client, "churn", version="1")
    rows = [{"f1": float(i), "f2": "a"} for i in range(20)]
    rows[7]["f1"] = "abc"
    mixed = client.put(REF, json=rows)
    assert mixed.status_code == 422, mixed.text
    error = mixed.json()["error"]
    assert error["code"] == "COLUMN_TYPE_MISMATCH"
    assert (error["details"]["column"], error["details"]["row"]) == ("f1", 7)
    declared = client.put(
        REF,
        json={
            "rows": [{"f1": 1.0, "f2": "x"}] * 12_000 + [{"f1": 2.0, "f2": 3.5}],
            "types": {"f2": "boolean"},
        },
    )
    assert declared.status_code == 422
    assert declared.json()["error"]["details"] | {"expected": None} == {
        "column": "f2",
        "row": 0,
        "expected": None,
    }
    csv = client.put(
        REF,
        content=b"f1,f2\n1,a\n2,b\nx,c\n",
        headers={"content-type": "text/csv"},
        params={"types": ["f1:numeric"]},
    )
    assert csv.status_code == 422
    assert (csv.json()["error"]["details"]["column"], csv.json()["error"]["details"]["row"]) == ("f1", 2)
    assert client.get(REF).status_code == 404  # nothing half-written


def test_unknown_model_version_or_reference_is_a_404(client: TestClient) -> None:
    assert (
        client.put("/api/models/nope/versions/1/monitoring/reference", json=[{"a": 1}]).json()["error"][
            "code"
        ]
        == "MODEL_NOT_FOUND"
    )
    register(client, "churn", version="1")
    assert client.put(f"{BASE}/versions/9/monitoring/reference", json=[{"a": 1}]).status_code == 404
    missing = client.get(REF)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "REFERENCE_NOT_FOUND"
    no_ref = client.get(f"{BASE}/monitoring/drift", params={"version": "1"})
    assert no_ref.status_code == 404 and no_ref.json()["error"]["code"] == "REFERENCE_NOT_FOUND"
    assert client.post("/api/models/nope/predictions", json=_window("x", 1, 0.0, 1)).status_code == 404


def test_predictions_are_idempotent_on_request_id(client: TestClient) -> None:
    register(client, "churn", version="1")
    rows = _window("a", 1, 0.0, 50)
    assert client.post(f"{BASE}/predictions", json=rows).json() == {"accepted": 50, "duplicates": 0}
    again = client.post(f"{BASE}/predictions", json={"predictions": rows[:10] + _window("b", 1, 0.0, 5)})
    assert again.json() == {"accepted": 5, "duplicates": 10}
    repeated = client.post(f"{BASE}/predictions", json=_window("c", 1, 0.0, 3) + _window("c", 1, 0.0, 1))
    assert repeated.json() == {"accepted": 3, "duplicates": 1}
    bad = client.post(f"{BASE}/predictions", json=[{**rows[0], "request_id": "z", "version": "7"}])
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "UNKNOWN_VERSION"


def test_drift_of_a_shifted_window_and_an_unshifted_one_equal_the_core(client: TestClient) -> None:
    reference = _setup(client)
    same, shifted = _window("same", 1, 0.0, seed=3), _window("shift", 2, 1.0, seed=4)
    for rows in (same, shifted):
        assert client.post(f"{BASE}/predictions", json=rows).json()["accepted"] == len(rows)
    hour1 = {"version": "1", "start": "2026-01-01T01:00:00Z", "end": "2026-01-01T02:00:00Z"}
    calm = client.get(f"{BASE}/monitoring/drift", params=hour1).json()
    assert calm["window"]["count"] == 400 and calm["dataset"]["drifted"] is False
    expected = _expected_drift(reference, same)
    assert calm["features"] == expected["features"] and calm["dataset"] == expected["dataset"]
    assert calm["missing_columns"] == ["label"]
    moved = client.get(
        f"{BASE}/monitoring/drift", params={"start": "2026-01-01T02:00:00Z", "end": "2026-01-01T03:00:00Z"}
    ).json()
    assert moved["version"] == "1" and moved["dataset"]["drifted"] is True
    assert moved["dataset"]["drifted_features"] == ["f1", "f2"]
    assert moved["features"] == _expected_drift(reference, shifted)["features"]
    last = client.get(f"{BASE}/monitoring/drift", params={"last_n": 100}).json()
    assert last["window"]["count"] == 100
    assert last["features"] == _expected_drift(reference, shifted[-100:])["features"]
    empty = client.get(f"{BASE}/monitoring/drift", params={"last": "1h"})
    assert empty.status_code == 200
    assert empty.json()["window"]["count"] == 0 and empty.json()["dataset"]["status"] == "insufficient_data"
    assert empty.json()["dataset"]["drifted"] is False


def test_labels_join_and_performance_equals_the_core(client: TestClient) -> None:
    _setup(client)
    rows = _window("p", 1, 0.0, 200, seed=5)
    client.post(f"{BASE}/predictions", json=rows)
    rng = np.random.default_rng(6)
    labels = [{"request_id": r["request_id"], "label": int(rng.integers(0, 2))} for r in rows[:150]]
    answer = client.post(f"{BASE}/labels", json={"labels": [*labels, {"request_id": "ghost", "label": 1}]})
    assert answer.json() == {"labelled": 150, "unknown": 1, "unknown_request_ids": ["ghost"]}
    body = client.get(f"{BASE}/monitoring/performance", params={"version": "1"}).json()
    assert body["window"]["count"] == 150
    expected = compute_performance(
        [r["prediction"] for r in rows[:150]],
        [x["label"] for x in labels],
        [r["probability"] for r in rows[:150]],
    )
    assert body["performance"] == expected.to_dict()
    assert body["registered"] == compare_with_registered(expected, {"accuracy": 0.5, "auc": 0.6})
    assert body["registered"]["accuracy"]["registered"] == 0.5


def test_inputs_are_bounded(client: TestClient) -> None:
    register(client, "churn", version="1")
    too_many = client.post(f"{BASE}/predictions", json=_window("a", 1, 0.0, 10_001))
    assert too_many.status_code == 422
    assert client.post(f"{BASE}/labels", json=[]).status_code == 422
    nested = client.post(f"{BASE}/predictions", json=[{**_window("a", 1, 0.0, 1)[0], "features": {"x": [1]}}])
    assert nested.status_code == 422
    bad_last = client.get(f"{BASE}/monitoring/drift", params={"last": "soon"})
    assert bad_last.status_code == 422 and bad_last.json()["error"]["code"] == "INVALID_MONITORING_QUERY"
    assert client.get(f"{BASE}/monitoring/drift", params={"last_n": 0}).status_code == 422
    for last in ("999999999w", "0s"):
        far = client.get(f"{BASE}/monitoring/performance", params={"last": last})
        assert far.status_code == 422 and far.json()["error"]["code"] == "INVALID_MONITORING_QUERY"
    both = {"last": "1h", "start": "2026-01-01T00:00:00Z"}
    assert client.get(f"{BASE}/monitoring/drift", params=both).status_code == 422
    assert client.put(REF, content=b"x", headers={"content-type": "application/xml"}).status_code == 422


def test_drift_names_a_logged_value_of_the_wrong_type_and_resolves_versions(client: TestClient) -> None:
    _setup(client)
    assert client.put(f"{BASE}/aliases/champion", json={"version": "1"}).status_code == 200
    empty = client.get(f"{BASE}/monitoring/drift")  # no prediction yet: the latest version
    assert empty.status_code == 200 and empty.json()["version"] == "1"
    row = {**_window("w", 1, 0.0, 1)[0], "features": {"f1": "abc", "f2": "a"}}
    assert client.post(f"{BASE}/predictions", json=[row]).json()["accepted"] == 1
    wrong = client.get(f"{BASE}/monitoring/drift", params={"version": "@champion"})
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["error"]["code"] == "COLUMN_TYPE_MISMATCH"
    assert wrong.json()["error"]["details"] | {"expected": None} == {
        "column": "f1",
        "request_id": "w-0",
        "expected": None,
    }


def test_malformed_reference_bodies_are_422s(client: TestClient) -> None:
    register(client, "churn", version="1")
    for body in (
        b"not json",
        b"[]",
        b"[1, 2]",
        b'{"rows": [{"a": 1}], "types": "x"}',
        b'{"rows": [{"a": 1}], "types": {"b": "numeric"}}',
        b'[{"a": 1e400}, {"a": 123456789012345678901234567890}]',
    ):
        response = client.put(REF, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (body, response.text)
    ragged = client.put(REF, content=b"a,b\n1,2\n3\n", headers={"content-type": "text/csv"})
    assert ragged.status_code == 422 and ragged.json()["error"]["details"] == {"row": 1}
    assert client.get(REF).status_code == 404


@pytest.fixture(
    scope="module", params=[(b, w) for b in BACKENDS for w in (1, 2)], ids=lambda p: f"{p[0]}-{p[1]}-workers"
)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The registry as a real process, or as two (MLOPS_MODEL_REGISTRY_WORKERS=2: replicas on one port)."""
    backend, workers = request.param
    env = {"MLOPS_MODEL_REGISTRY_WORKERS": str(workers)}
    with service_on("model_registry", backend, tmp_path_factory.mktemp(backend), env) as found:
        yield found


def test_concurrent_overlapping_batches_log_each_request_once(url: str) -> None:
    body = {"name": "raced", "framework": "sklearn", "version": "1"}
    assert httpx.post(f"{url}/api/models", json=body).status_code == 201
    rows = [{**row, "version": "1"} for row in _window("r", 1, 0.0, 300)]

    def log(client: httpx.Client, i: int) -> httpx.Response:
        return client.post("/api/models/raced/predictions", json=rows[i * 20 : i * 20 + 200])

    answers = [r.json() for r in race(url, log, 6)]
    assert sum(a["accepted"] for a in answers) == 300
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == 6 * 200
    window = httpx.get(f"{url}/api/models/raced/monitoring/performance", params={"version": "1"}).json()
    assert window["window"]["count"] == 0  # nothing labelled yet
    labels = [{"request_id": r["request_id"], "label": 1} for r in rows]
    assert httpx.post(f"{url}/api/models/raced/labels", json=labels).json()["labelled"] == 300


def test_routes_need_a_key_writes_an_editor_and_every_write_is_audited(tmp_path: Path) -> None:
    admin, editor, viewer = (secrets.token_hex(16) for _ in range(3))
    keys = f"admin:root:{admin},editor:app:{editor},viewer:dash:{viewer}"
    settings = RegistrySettings(data_dir=tmp_path, api_keys=keys, log_level="WARNING")
    with TestClient(create_app(settings)) as secured:
        as_editor = {"Authorization": f"Bearer {editor}"}
        as_viewer = {"Authorization": f"Bearer {viewer}"}
        body = {"name": "churn", "framework": "sklearn", "version": "1"}
        assert secured.post("/api/models", json=body, headers=as_editor).status_code == 201
        rows = _window("a", 1, 0.0, 5)
        assert secured.post(f"{BASE}/predictions", json=rows).status_code == 401
        assert secured.get(f"{BASE}/monitoring/performance").status_code == 401
        assert secured.post(f"{BASE}/predictions", json=rows, headers=as_viewer).status_code == 403
        assert secured.put(REF, json=[{"a": 1}], headers=as_viewer).status_code == 403
        assert secured.post(f"{BASE}/predictions", json=rows, headers=as_editor).status_code == 200
        assert secured.put(REF, json=[{"a": 1}], headers=as_editor).status_code == 200
        labels = [{"request_id": "a-0", "label": 1}]
        assert secured.post(f"{BASE}/labels", json=labels, headers=as_editor).status_code == 200
        assert secured.get(f"{BASE}/monitoring/performance", headers=as_viewer).status_code == 200
        assert secured.get(REF, headers=as_viewer).status_code == 200
        audit = secured.get(
            "/api/audit-log", params={"limit": 100}, headers={"Authorization": f"Bearer {admin}"}
        )
        paths = {(e["method"], e["path"]) for e in audit.json()["items"]}
        assert {("POST", f"{BASE}/predictions"), ("PUT", REF), ("POST", f"{BASE}/labels")} <= paths
