from __future__ import annotations

from fastapi.testclient import TestClient
from registry_helpers import register


def test_register_creates_model_and_version_with_all_fields(client: TestClient) -> None:
    body = {
        "name": "my-classifier-v1",
        "version": "1.0.0",
        "framework": "scikit-learn",
        "metrics": {"accuracy": 0.95, "f1_score": 0.92},
        "params": {"C": 1.0, "kernel": "rbf"},
        "tags": ["production", "healthcare"],
        "description": "first",
        "signature": {"inputs": [{"name": "age", "type": "long"}], "outputs": [{"type": "double"}]},
        "lineage": {
            "run_id": "r1",
            "experiment_id": "e1",
            "pipeline_run_id": "p1",
            "datasets": [{"name": "train", "version": "3"}],
            "feature_sets": [{"name": "user_features", "version": "2"}],
        },
    }
    created = client.post("/api/models", json=body)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["version"] == "1.0.0"
    assert version["format"] == "pkl"
    assert version["stage"] == "None"
    assert version["metrics"] == {"accuracy": 0.95, "f1_score": 0.92}
    assert version["lineage"]["feature_sets"] == [{"name": "user_features", "version": "2"}]
    fetched = client.get("/api/models/my-classifier-v1/versions/1.0.0").json()
    assert fetched == version
    model = client.get("/api/models/my-classifier-v1").json()
    assert model["latest_version"] == "1.0.0"
    assert model["version_count"] == 1
    assert [v["version"] for v in model["versions"]] == ["1.0.0"]


def test_versions_auto_increment_when_omitted(client: TestClient) -> None:
    versions = [register(client, "auto")["version"] for _ in range(3)]
    assert versions == ["1", "2", "3"]
    assert client.get("/api/models/auto/versions/latest").json()["version"] == "3"


def test_auto_increment_skips_explicit_integer_versions(client: TestClient) -> None:
    register(client, "mixed", version="2")
    assert [register(client, "mixed")["version"] for _ in range(2)] == ["3", "4"]


def test_existing_version_is_a_conflict_and_changes_nothing(client: TestClient) -> None:
    register(client, "dup", version="1.0.0", metrics={"accuracy": 0.5})
    again = client.post(
        "/api/models",
        json={"name": "dup", "version": "1.0.0", "framework": "onnx", "metrics": {"accuracy": 0.9}},
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "MODEL_VERSION_EXISTS"
    kept = client.get("/api/models/dup/versions/1.0.0").json()
    assert kept["metrics"] == {"accuracy": 0.5}
    assert client.get("/api/models/dup").json()["version_count"] == 1


def test_invalid_name_states_the_rule(client: TestClient) -> None:
    response = client.post("/api/models", json={"name": "bad name!", "framework": "onnx"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "letters, digits" in error["message"] and "128" in error["message"]
    assert client.get("/api/models").json()["total"] == 0


def test_unknown_framework_lists_the_allowed_ones(client: TestClient) -> None:
    response = client.post("/api/models", json={"name": "m", "framework": "fortran-ml"})
    assert response.status_code == 422
    assert "scikit-learn" in response.json()["error"]["message"]


def test_wrong_types_unknown_fields_and_bad_versions_are_rejected(client: TestClient) -> None:
    cases = [
        {"name": "m", "metrics": {"accuracy": "high"}},
        {"name": "m", "tags": "x"},
        {"name": "m", "version": "one"},
        {"name": "m", "format": "docx"},
        {"name": "m", "colour": "blue"},
        {"name": 5},
        {"framework": "onnx"},
    ]
    for body in cases:
        response = client.post("/api/models", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["details"]["errors"]
    assert client.get("/api/models").json()["total"] == 0


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post("/api/models", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_JSON"


def test_framework_and_format_aliases_are_normalised(client: TestClient) -> None:
    version = register(client, "torchy", framework="torch", format="pt")
    assert (version["framework"], version["format"]) == ("pytorch", "pytorch")
    assert register(client, "tfm", framework="tensorflow")["format"] == "tensorflow-savedmodel"


def test_list_filters_by_tags_framework_metrics_and_prefix(client: TestClient) -> None:
    register(client, "fraud-a", framework="xgboost", metrics={"accuracy": 0.95}, tags=["production"])
    register(client, "fraud-b", framework="sklearn", metrics={"accuracy": 0.85}, tags=["staging"])
    register(client, "churn-a", framework="sklearn", metrics={"accuracy": 0.97}, tags=["production"])

    def names(query: str) -> list[str]:
        response = client.get(f"/api/models?{query}")
        assert response.status_code == 200, response.text
        return [m["name"] for m in response.json()["items"]]

    assert names("tags=production") == ["churn-a", "fraud-a"]
    assert names("framework=scikit-learn") == ["churn-a", "fraud-b"]
    assert names("metric=accuracy>0.9") == ["churn-a", "fraud-a"]
    assert names("metric=accuracy>0.9&framework=sklearn") == ["churn-a"]
    assert names("metric=accuracy<=0.85") == ["fraud-b"]
    assert names("name_prefix=fraud") == ["fraud-a", "fraud-b"]
    assert names("tags=production,staging") == []
    assert names("order_by=-name") == ["fraud-b", "fraud-a", "churn-a"]


def test_bad_filters_are_422(client: TestClient) -> None:
    for query in ("metric=accuracy~0.9", "order_by=colour", "limit=0", "limit=5000"):
        response = client.get(f"/api/models?{query}")
        assert response.status_code == 422, query


def test_pagination_walks_every_model_once(client: TestClient) -> None:
    for i in range(7):
        register(client, f"page-{i}")
    seen, offset = [], 0
    while offset is not None:
        page = client.get(f"/api/models?limit=3&offset={offset}").json()
        assert page["total"] == 7
        seen += [m["name"] for m in page["items"]]
        offset = page["next_offset"]
    assert seen == sorted(f"page-{i}" for i in range(7))


def test_versions_list_orders_by_metric_and_filters_stage(client: TestClient) -> None:
    for acc in (0.7, 0.9, 0.8):
        register(client, "ranked", metrics={"accuracy": acc})
    page = client.get("/api/models/ranked/versions?order_by=-metric:accuracy").json()
    assert [v["metrics"]["accuracy"] for v in page["items"]] == [0.9, 0.8, 0.7]
    client.post("/api/models/ranked/versions/2/stage", json={"stage": "Production"})
    staged = client.get("/api/models/ranked/versions?stage=production").json()
    assert [v["version"] for v in staged["items"]] == ["2"]


def test_register_version_under_model_path(client: TestClient) -> None:
    register(client, "pathy")
    response = client.post("/api/models/pathy/versions", json={"framework": "onnx"})
    assert response.status_code == 201
    assert response.json()["version"] == "2"


def test_missing_model_and_version_are_404_with_codes(client: TestClient) -> None:
    assert client.get("/api/models/nope").json()["error"]["code"] == "MODEL_NOT_FOUND"
    register(client, "here")
    missing = client.get("/api/models/here/versions/9.9.9")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "MODEL_VERSION_NOT_FOUND"


def test_update_description_and_tags(client: TestClient) -> None:
    register(client, "upd", tags=["a"])
    model = client.patch("/api/models/upd", json={"description": "new", "tags": ["team-x"]})
    assert model.status_code == 200
    assert (model.json()["description"], model.json()["tags"]) == ("new", ["team-x"])
    version = client.patch("/api/models/upd/versions/1", json={"tags": ["b", "c"]}).json()
    assert version["tags"] == ["b", "c"]
    assert [m["name"] for m in client.get("/api/models?tags=c").json()["items"]] == ["upd"]
    assert client.get("/api/models?tags=a").json()["total"] == 0
    assert [m["name"] for m in client.get("/api/models?tags=team-x").json()["items"]] == ["upd"]


def test_archive_and_delete_version(client: TestClient) -> None:
    register(client, "gone")
    register(client, "gone")
    archived = client.post("/api/models/gone/versions/1/archive").json()
    assert archived["stage"] == "Archived"
    client.put("/api/models/gone/aliases/champion", json={"version": "2"})
    assert client.delete("/api/models/gone/versions/2").status_code == 204
    assert client.get("/api/models/gone/versions/2").status_code == 404
    assert client.get("/api/models/gone/aliases/champion").status_code == 404
    assert client.get("/api/models/gone").json()["aliases"] == {}


def test_delete_model_removes_everything(client: TestClient) -> None:
    register(client, "doomed")
    assert client.delete("/api/models/doomed").status_code == 204
    assert client.get("/api/models/doomed").status_code == 404
    assert register(client, "doomed")["version"] == "1"


def test_lineage_records_upstream_and_parent(client: TestClient) -> None:
    register(client, "lin", version="1.0.0")
    child = register(
        client,
        "lin",
        version="1.1.0",
        run_id="run-7",
        parent_version="1.0.0",
        lineage={"datasets": [{"name": "clicks", "version": "2026-11-01"}]},
    )
    assert child["lineage"]["run_id"] == "run-7"
    lineage = client.get("/api/models/lin/versions/1.1.0/lineage").json()
    assert lineage["lineage"]["datasets"] == [{"name": "clicks", "version": "2026-11-01"}]
    assert lineage["parent"]["version"] == "1.0.0"
    assert client.get("/api/models/lin/versions/1.0.0/lineage").json()["children"] == ["1.1.0"]


def test_unknown_parent_version_is_404_and_nothing_stored(client: TestClient) -> None:
    register(client, "orphan", version="1.0.0")
    response = client.post("/api/models", json={"name": "orphan", "parent_version": "0.9.0"})
    assert response.status_code == 404
    assert client.get("/api/models/orphan").json()["version_count"] == 1
