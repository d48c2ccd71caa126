"""Historical retrieval refuses bad requests with a 4xx that names the problem."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

URL = "/api/features/historical"
ROW = {"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z"}


@pytest.fixture
def users(client: TestClient) -> TestClient:
    assert client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}).status_code == 201
    body = {"name": "user_features", "entity": "user", "features": [{"name": "age", "type": "int"}]}
    assert client.post("/api/feature-sets", json=body).status_code == 201
    return client


def test_empty_entity_rows_is_a_400(users: TestClient) -> None:
    r = users.post(URL, json={"entity_rows": [], "features": ["user_features:age"]})
    assert r.status_code == 400 and "entity_rows" in r.json()["error"]["message"]


def test_unknown_feature_set_and_feature_are_404s_naming_them(users: TestClient) -> None:
    r = users.post(URL, json={"entity_rows": [ROW], "features": ["nope:age"]})
    assert r.status_code == 404 and r.json()["error"]["details"]["feature_set"] == "nope"
    r = users.post(URL, json={"entity_rows": [ROW], "features": ["user_features:height"]})
    assert r.status_code == 404 and r.json()["error"]["details"]["feature"] == "height"
    r = users.post(URL, json={"entity_rows": [ROW], "feature_service": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "FEATURE_SERVICE_NOT_FOUND"


def test_entity_rows_without_the_join_key_are_a_400_naming_it(users: TestClient) -> None:
    r = users.post(URL, json={"entity_rows": [{"event_timestamp": 0}], "features": ["age"]})
    assert r.status_code == 400 and r.json()["error"]["details"]["missing"] == ["user_id"]


def test_a_bad_or_missing_timestamp_is_a_422_naming_the_row(users: TestClient) -> None:
    rows = [ROW, {"user_id": "u2", "event_timestamp": "yesterday"}]
    r = users.post(URL, json={"entity_rows": rows, "features": ["age"]})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"][0] == {
        "row": 1,
        "column": "event_timestamp",
        "reason": "expected an ISO 8601 timestamp, got 'yesterday'",
    }
    r = users.post(URL, json={"entity_rows": [{"user_id": "u1"}], "features": ["age"]})
    assert r.status_code == 422


def test_features_or_feature_service_must_be_given_and_not_both(users: TestClient) -> None:
    assert users.post(URL, json={"entity_rows": [ROW]}).status_code == 400
    r = users.post(URL, json={"entity_rows": [ROW], "features": ["age"], "feature_service": "s"})
    assert r.status_code == 400


def test_unknown_fields_and_non_object_rows_are_400s(users: TestClient) -> None:
    assert users.post(URL, json={"entity_rows": [ROW], "features": ["age"], "extra": 1}).status_code == 400
    assert users.post(URL, json={"entity_rows": [1], "features": ["age"]}).status_code == 400
    assert users.post(URL, content=b"{", headers={"content-type": "application/json"}).status_code == 400


def test_an_output_column_clash_asks_for_full_feature_names(users: TestClient) -> None:
    r = users.post(URL, json={"entity_rows": [ROW | {"age": 3}], "features": ["age"]})
    assert r.status_code == 400 and "full_feature_names" in r.json()["error"]["message"]


def test_too_many_entity_rows_is_a_400(users: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users.app.state.settings, "max_historical_rows", 2)
    r = users.post(URL, json={"entity_rows": [ROW] * 3, "features": ["age"]})
    assert r.status_code == 400 and r.json()["error"]["details"] == {"max_rows": 2}
