"""The hot read path (one SQL statement, orjson) answers exactly what the ORM path's ModelVersionRead does."""

from __future__ import annotations

from fastapi.testclient import TestClient
from model_registry.models.schemas import ModelVersionRead
from registry_helpers import register

# names whose order differs between code points and case- or punctuation-folding collations
PATHS = ["b.txt", "A.txt", "a_b.bin", "a-b.bin", "dir/z.bin", "dir/a.bin"]
ALIASES = ["champion", "Zed", "a_b", "a-b"]


def _version_with_artifacts_and_aliases(client: TestClient) -> None:
    register(
        client,
        "paths",
        metrics={"accuracy": 0.9},
        params={"depth": 3, "nested": {"k": [1, 2]}},
        tags=["x", "y"],
        description="with everything",
        signature={"inputs": [{"name": "age", "type": "long"}]},
        lineage={"run_id": "r1"},
    )
    for path in PATHS:
        uploaded = client.put(f"/api/models/paths/versions/1/artifacts/{path}", content=path.encode())
        assert uploaded.status_code == 200, uploaded.text
    for alias in ALIASES:
        assert client.put(f"/api/models/paths/aliases/{alias}", json={"version": "1"}).status_code == 200
    register(client, "paths")  # a second version, without artifacts or aliases


def test_fast_path_equals_the_response_model_for_a_version_with_artifacts_and_aliases(
    client: TestClient,
) -> None:
    _version_with_artifacts_and_aliases(client)
    listed = client.get("/api/models/paths/versions", params={"order_by": "version"}).json()["items"]
    normal = {item["version"]: item for item in listed}
    assert sorted(normal["1"]["aliases"]) == sorted(ALIASES)
    assert sorted(a["path"] for a in normal["1"]["artifacts"]) == sorted(PATHS)
    for version in ("1", "2"):
        fast = client.get(f"/api/models/paths/versions/{version}").json()
        assert fast == normal[version]
        assert ModelVersionRead.model_validate(fast).model_dump(mode="json") == fast


def test_fast_path_by_alias_and_latest_equals_the_response_model(client: TestClient) -> None:
    _version_with_artifacts_and_aliases(client)
    model = client.get("/api/models/paths").json()
    normal = {v["version"]: v for v in model["versions"]}
    for alias in ALIASES:
        assert client.get(f"/api/models/paths/versions/@{alias}").json() == normal["1"]
        assert client.get(f"/api/models/paths/aliases/{alias}").json() == normal["1"]
        assert client.get(f"/api/models/paths@{alias}").json() == normal["1"]
    assert client.get("/api/models/paths/versions/latest").json() == normal["2"]
    patched = client.patch("/api/models/paths/versions/1", json={"description": "changed"}).json()
    assert client.get("/api/models/paths/versions/1").json() == patched
