"""Registry: entities, feature sets with versioned schemas, feature services (both backends)."""

from __future__ import annotations

from fastapi.testclient import TestClient

USER_FEATURES = {
    "name": "user_features",
    "description": "User demographic and behavioral features",
    "features": [{"name": "age", "type": "int"}, {"name": "avg_session_duration", "type": "float"}],
}


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return response.json()["error"]["code"]


def test_platform_docs_example_creates_a_feature_set_on_the_default_entity(client: TestClient) -> None:
    created = client.post("/api/feature-sets", json=USER_FEATURES)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["entity"] == "default" and body["join_keys"] == ["entity_id"]
    assert body["version"] == 1 and body["versions"] == [1]
    assert [f["name"] for f in body["features"]] == ["age", "avg_session_duration"]
    assert client.get("/api/entities/default").json()["join_keys"] == ["entity_id"]
    again = client.post("/api/feature-sets", json=USER_FEATURES)
    assert again.status_code == 409 and error_code(again) == "ALREADY_EXISTS"


def test_entity_lifecycle_and_conflicts(client: TestClient) -> None:
    made = client.post("/api/entities", json={"name": "driver", "value_type": "int", "description": "d"})
    assert made.status_code == 201 and made.json()["join_keys"] == ["driver"]
    assert client.post("/api/entities", json={"name": "driver"}).status_code == 409
    patched = client.patch("/api/entities/driver", json={"tags": {"team": "ops"}})
    assert patched.json()["tags"] == {"team": "ops"} and patched.json()["description"] == "d"
    client.post("/api/feature-sets", json={**USER_FEATURES, "name": "driver_stats", "entity": "driver"})
    in_use = client.delete("/api/entities/driver")
    assert in_use.status_code == 409 and in_use.json()["error"]["details"]["feature_sets"] == ["driver_stats"]
    assert client.delete("/api/feature-sets/driver_stats").status_code == 204
    assert client.delete("/api/entities/driver").status_code == 204
    missing = client.get("/api/entities/driver")
    assert missing.status_code == 404 and "driver" in missing.json()["error"]["message"]
    page = client.get("/api/entities").json()
    assert page["total"] == 0 and page["items"] == []


def test_bad_definitions_are_4xx_and_store_nothing(client: TestClient) -> None:
    bad_type = client.post(
        "/api/feature-sets", json={**USER_FEATURES, "features": [{"name": "age", "type": "decimal"}]}
    )
    assert bad_type.status_code == 422 and "decimal" in bad_type.text
    duplicate = client.post(
        "/api/feature-sets",
        json={**USER_FEATURES, "features": [{"name": "a", "type": "int"}, {"name": "a", "type": "float"}]},
    )
    assert duplicate.status_code == 422 and "duplicate" in duplicate.text
    bad_name = client.post("/api/feature-sets", json={**USER_FEATURES, "name": "has space"})
    assert bad_name.status_code == 422
    unknown_entity = client.post("/api/feature-sets", json={**USER_FEATURES, "entity": "nobody"})
    assert unknown_entity.status_code == 404 and error_code(unknown_entity) == "ENTITY_NOT_FOUND"
    reserved = client.post(
        "/api/feature-sets", json={**USER_FEATURES, "features": [{"name": "event_timestamp", "type": "int"}]}
    )
    assert reserved.status_code == 422
    client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]})
    clash = client.post(
        "/api/feature-sets",
        json={**USER_FEATURES, "entity": "user", "features": [{"name": "user_id", "type": "string"}]},
    )
    assert clash.status_code == 400 and "user_id" in clash.text
    assert client.get("/api/feature-sets").json()["total"] == 0


def test_types_and_aliases_are_normalized(client: TestClient) -> None:
    features = [
        {"name": "a", "type": "INT64"},
        {"name": "b", "type": "double"},
        {"name": "c", "type": "str"},
        {"name": "d", "type": "boolean"},
        {"name": "e", "type": "datetime"},
        {"name": "f", "type": "list[int]"},
        {"name": "g", "type": "list[float]"},
    ]
    body = client.post("/api/feature-sets", json={"name": "typed", "features": features, "ttl": "2d"}).json()
    assert [f["type"] for f in body["features"]] == [
        "int",
        "float",
        "string",
        "bool",
        "timestamp",
        "list[int]",
        "list[float]",
    ]
    assert body["ttl_seconds"] == 2 * 86400


def test_schema_versions_additive_breaking_and_old_versions_readable(client: TestClient) -> None:
    client.post("/api/feature-sets", json=USER_FEATURES)
    added = client.post(
        "/api/feature-sets/user_features/versions",
        json={"features": [*USER_FEATURES["features"], {"name": "country", "type": "string"}]},
    )
    assert added.status_code == 201 and added.json()["version"] == 2 and not added.json()["breaking"]
    assert added.json()["change"] == "added country"

    removed = client.post(
        "/api/feature-sets/user_features/versions", json={"features": [{"name": "age", "type": "int"}]}
    )
    assert removed.status_code == 409 and error_code(removed) == "BREAKING_SCHEMA_CHANGE"
    assert removed.json()["error"]["details"]["removed"] == ["avg_session_duration", "country"]
    retyped = client.post(
        "/api/feature-sets/user_features/versions",
        json={
            "features": [{"name": "age", "type": "float"}, {"name": "avg_session_duration", "type": "float"}]
        },
    )
    assert retyped.status_code == 409
    assert retyped.json()["error"]["details"]["retyped"][0] == {
        "feature": "age",
        "from": "int",
        "to": "float",
    }
    same = client.post(
        "/api/feature-sets/user_features/versions", json={"features": added.json()["features"]}
    )
    assert same.status_code == 409 and error_code(same) == "ALREADY_EXISTS"

    breaking = client.post(
        "/api/feature-sets/user_features/versions",
        json={
            "features": [{"name": "age", "type": "float"}],
            "breaking": True,
            "change": "age in years, float",
        },
    )
    assert breaking.status_code == 201 and breaking.json()["version"] == 3 and breaking.json()["breaking"]

    latest = client.get("/api/feature-sets/user_features").json()
    assert latest["version"] == latest["latest_version"] == 3 and latest["versions"] == [1, 2, 3]
    assert latest["features"] == [{"name": "age", "type": "float", "description": ""}]
    v1 = client.get("/api/feature-sets/user_features", params={"version": 1}).json()
    assert [f["name"] for f in v1["features"]] == ["age", "avg_session_duration"] and v1["version"] == 1
    history = client.get("/api/feature-sets/user_features/versions").json()
    assert [(v["version"], v["breaking"]) for v in history] == [(1, False), (2, False), (3, True)]
    assert client.get("/api/feature-sets/user_features/versions/9").status_code == 404


def test_apply_is_idempotent_and_versions_only_on_change(client: TestClient) -> None:
    first = client.put("/api/feature-sets/churn", json={"features": [{"name": "x", "type": "float"}]})
    assert first.status_code == 201 and first.json()["version"] == 1
    again = client.put("/api/feature-sets/churn", json={"features": [{"name": "x", "type": "float"}]})
    assert again.status_code == 200 and again.json()["version"] == 1
    grown = client.put(
        "/api/feature-sets/churn",
        json={"features": [{"name": "x", "type": "float"}, {"name": "y", "type": "int"}], "ttl": "1h"},
    )
    assert grown.status_code == 200 and grown.json()["version"] == 2 and grown.json()["ttl_seconds"] == 3600
    shrunk = client.put("/api/feature-sets/churn", json={"features": [{"name": "y", "type": "int"}]})
    assert shrunk.status_code == 409
    assert client.get("/api/feature-sets/churn").json()["version"] == 2


def test_update_list_filter_and_delete(client: TestClient) -> None:
    client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]})
    for i, owner in enumerate(["ana", "bo", "ana"]):
        client.post(
            "/api/feature-sets",
            json={
                **USER_FEATURES,
                "name": f"set_{i}",
                "entity": "user",
                "owner": owner,
                "tags": {"tier": str(i)},
            },
        )
    client.post("/api/feature-sets", json={**USER_FEATURES, "name": "other"})
    patched = client.patch("/api/feature-sets/set_0", json={"ttl_seconds": 60, "description": "new"})
    assert patched.json()["ttl_seconds"] == 60 and patched.json()["description"] == "new"
    assert client.patch("/api/feature-sets/set_0", json={"ttl_seconds": 0}).json()["ttl_seconds"] is None

    names = lambda **q: [x["name"] for x in client.get("/api/feature-sets", params=q).json()["items"]]  # noqa: E731
    assert names(entity="user") == ["set_0", "set_1", "set_2"]
    assert names(owner="ana") == ["set_0", "set_2"]
    assert names(tags="tier=1") == ["set_1"]
    assert names(name_prefix="set_") == ["set_0", "set_1", "set_2"]
    page = client.get("/api/feature-sets", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4 and page["next_offset"] == 3 and len(page["items"]) == 2

    assert client.delete("/api/feature-sets/set_1").status_code == 204
    assert client.get("/api/feature-sets/set_1").status_code == 404
    assert client.delete("/api/feature-sets/set_1").status_code == 404


def test_feature_services_version_and_pin_schema_versions(client: TestClient) -> None:
    client.post("/api/feature-sets", json=USER_FEATURES)
    client.post(
        "/api/feature-sets", json={"name": "txn", "features": [{"name": "amount_7d", "type": "float"}]}
    )
    made = client.post(
        "/api/feature-services", json={"name": "churn_model", "features": ["user_features:*", "amount_7d"]}
    )
    assert made.status_code == 201, made.text
    assert made.json()["version"] == 1
    assert [(r["feature_set"], r["feature"], r["version"]) for r in made.json()["features"]] == [
        ("user_features", "age", 1),
        ("user_features", "avg_session_duration", 1),
        ("txn", "amount_7d", 1),
    ]
    same = client.post(
        "/api/feature-services", json={"name": "churn_model", "features": ["user_features:*", "amount_7d"]}
    )
    assert same.status_code == 200 and same.json()["version"] == 1
    fewer = client.post(
        "/api/feature-services", json={"name": "churn_model", "features": ["user_features:age"]}
    )
    assert fewer.status_code == 201 and fewer.json()["version"] == 2
    assert client.get("/api/feature-services/churn_model").json()["version"] == 2
    assert len(client.get("/api/feature-services/churn_model", params={"version": 1}).json()["features"]) == 3
    assert [v["version"] for v in client.get("/api/feature-services/churn_model/versions").json()] == [1, 2]
    assert client.get("/api/feature-services").json()["total"] == 1

    in_use = client.delete("/api/feature-sets/user_features")
    assert in_use.status_code == 409 and in_use.json()["error"]["details"]["feature_services"] == [
        "churn_model"
    ]
    unknown = client.post("/api/feature-services", json={"name": "x", "features": ["user_features:nope"]})
    assert (
        unknown.status_code == 404 and error_code(unknown) == "FEATURE_NOT_FOUND" and "nope" in unknown.text
    )
    no_set = client.post("/api/feature-services", json={"name": "x", "features": ["ghost:age"]})
    assert no_set.status_code == 404 and error_code(no_set) == "FEATURE_SET_NOT_FOUND"
    client.post("/api/feature-sets", json={"name": "dup", "features": [{"name": "age", "type": "int"}]})
    ambiguous = client.post("/api/feature-services", json={"name": "x", "features": ["age"]})
    assert ambiguous.status_code == 400 and "dup" in ambiguous.text and "user_features" in ambiguous.text
    assert client.delete("/api/feature-services/churn_model").status_code == 204
    assert client.get("/api/feature-services/churn_model").status_code == 404


def test_int_entity_keys_follow_one_rule_for_ingestion_and_serving(client: TestClient) -> None:
    client.post("/api/entities", json={"name": "driver", "join_keys": ["driver_id"], "value_type": "int"})
    client.post(
        "/api/feature-sets",
        json={"name": "trips", "entity": "driver", "features": [{"name": "n", "type": "int"}]},
    )
    ts = "2026-01-01T00:00:00Z"
    bad = client.post(
        "/api/feature-sets/trips/rows", json={"rows": [{"driver_id": 4.5, "event_timestamp": ts, "n": 1}]}
    )
    assert 400 <= bad.status_code < 500 and "4.5" in bad.text
    assert client.get("/api/feature-sets/trips/statistics").json()["rows"] == 0
    ok = client.post("/api/feature-sets/trips/push", json={"driver_id": "042", "event_timestamp": ts, "n": 7})
    assert ok.status_code in (200, 201), ok.text
    served = client.get("/api/features/serve", params={"entities": "42", "features": "trips:n"}).json()
    assert served["results"][0]["values"] == {"n": 7}
    assert (
        client.get("/api/features/serve", params={"entities": "4.5", "features": "trips:n"}).status_code
        == 400
    )
