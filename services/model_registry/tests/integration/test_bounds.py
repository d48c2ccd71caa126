"""What storage holds, held at the edge (issue 12): offsets, NUL characters, string lengths,
the OpenAPI bounds check, and an audit entry for every write — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlops_kit.testing.openapi_bounds import offset_failures, paginated_operations, request_problems
from model_registry.app import create_app
from model_registry.settings import RegistrySettings
from registry_helpers import register


def test_every_request_string_array_map_and_integer_is_bounded(tmp_path: Path) -> None:
    spec = create_app(RegistrySettings(data_dir=tmp_path)).openapi()
    assert request_problems(spec) == []


def test_every_list_endpoint_refuses_offsets_and_limits_out_of_range(client: TestClient) -> None:
    register(client, "churn", version="1.0.0")
    client.put("/api/models/churn/aliases/champion", json={"version": "1.0.0"})
    assert len(paginated_operations(client.app.openapi())) >= 4
    values = {"name": "churn", "version": "1.0.0", "alias": "champion"}
    assert offset_failures(client, client.app.openapi(), values) == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/models", {"name": "churn", "description": "a\x00b"}),
        ("post", "/api/models", {"name": "churn", "params": {"k": "a\x00b"}}),
        ("post", "/api/models", {"name": "churn", "tags": ["ok", "a\x00"]}),
        ("get", "/api/models/churn%00x", None),
        ("get", "/api/models?tags=a%00b", None),
        ("patch", "/api/models/churn", {"description": "\x00"}),
    ],
)
def test_nul_character_is_refused_the_same_on_both_backends(
    client: TestClient, method: str, path: str, body: dict | None
) -> None:
    register(client, "churn", version="1.0.0")
    response = client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "NUL" in response.json()["error"]["message"]
    assert client.get("/api/models/churn").json()["description"] in (None, "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "churn", "description": "d" * 10_001}, "description"),
        ({"name": "churn", "tags": ["t" * 257]}, "tags"),
        ({"name": "churn", "run_id": "r" * 129}, "run_id"),
        ({"name": "churn", "params": {"p": "v" * 65_537}}, "params"),
        ({"name": "churn", "signature": {"inputs": [{"type": "long", "shape": [2**40]}]}}, "shape"),
        ({"name": "churn", "metrics": {"m" * 129: 1.0}}, "metrics"),
    ],
)
def test_oversize_or_unstorable_value_is_a_422_naming_the_field(
    client: TestClient, body: dict, field: str
) -> None:
    response = client.post("/api/models", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]
    assert client.get("/api/models/churn").status_code == 404


def test_every_write_leaves_an_audit_entry(client: TestClient) -> None:
    register(client, "churn", version="1.0.0")
    writes = [
        client.patch("/api/models/churn", json={"description": "d"}),
        client.put("/api/models/churn/aliases/champion", json={"version": "1.0.0"}),
        client.post("/api/models/churn/versions/1.0.0/stage", json={"stage": "Staging"}),
        client.delete("/api/models/churn/aliases/champion"),
    ]
    assert [w.status_code < 300 for w in writes] == [True] * 4, [w.text for w in writes]
    entries = client.get("/api/audit-log", params={"limit": 100}).json()["items"]
    audited = {(e["method"], e["route"]) for e in entries}
    assert audited >= {
        ("POST", "/api/models"),
        ("PATCH", "/api/models/{name}"),
        ("PUT", "/api/models/{name}/aliases/{alias}"),
        ("POST", "/api/models/{name}/versions/{version}/stage"),
        ("DELETE", "/api/models/{name}/aliases/{alias}"),
    }


def test_an_artifact_path_segment_no_file_system_holds_is_refused_not_a_500(client: TestClient) -> None:
    register(client, "churn", version="1.0.0")
    too_long = client.put(f"/api/models/churn/versions/1.0.0/artifacts/{'m' * 256}", content=b"model")
    assert too_long.status_code == 422, too_long.text
    fits = client.put(f"/api/models/churn/versions/1.0.0/artifacts/{'m' * 200}", content=b"model")
    assert fits.status_code < 300, fits.text
