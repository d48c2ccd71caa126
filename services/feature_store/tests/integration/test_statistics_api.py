"""Feature statistics follow ingestion, per schema version, in the ingestion's transaction."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

FEATURES = [{"name": "age", "type": "int"}, {"name": "country", "type": "string"}]


@pytest.fixture
def users(client: TestClient) -> TestClient:
    assert client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}).status_code == 201
    body = {"name": "user_features", "entity": "user", "features": FEATURES}
    assert client.post("/api/feature-sets", json=body).status_code == 201
    return client


def rows(ages: list[int | None], country: str = "FR") -> dict:
    return {
        "rows": [
            {"user_id": f"u{i}", "event_timestamp": "2026-01-01T00:00:00Z", "age": a, "country": country}
            for i, a in enumerate(ages)
        ]
    }


def test_statistics_merge_every_ingestion(users: TestClient) -> None:
    first, second = [10, 20, None, 30], [40, 50, 60]
    assert users.post("/api/feature-sets/user_features/rows", json=rows(first)).status_code == 201
    assert users.post("/api/feature-sets/user_features/rows", json=rows(second, "DE")).status_code == 201
    r = users.get("/api/feature-sets/user_features/statistics")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["feature_set"], body["version"], body["rows"]) == ("user_features", 1, 7)
    age = body["features"]["age"]
    ages = [10, 20, 30, 40, 50, 60]
    assert (age["count"], age["nulls"], age["min"], age["max"]) == (6, 1, 10, 60)
    assert age["mean"] == pytest.approx(np.mean(ages))
    assert age["std"] == pytest.approx(np.std(ages, ddof=1))
    assert age["quantiles"]["p50"] == pytest.approx(np.quantile(ages, 0.5))
    assert body["features"]["country"]["top"] == [{"value": "FR", "count": 4}, {"value": "DE", "count": 3}]


def test_a_refused_ingestion_leaves_the_statistics_alone(users: TestClient) -> None:
    assert users.post("/api/feature-sets/user_features/rows", json=rows([1])).status_code == 201
    bad = rows([2, 3])
    bad["rows"][1]["age"] = "x"
    assert users.post("/api/feature-sets/user_features/rows", json=bad).status_code == 422
    assert users.get("/api/feature-sets/user_features/statistics").json()["features"]["age"]["count"] == 1


def test_statistics_are_per_version_and_unknown_ones_are_404(users: TestClient) -> None:
    body = users.get("/api/feature-sets/user_features/statistics").json()
    assert body["rows"] == 0 and body["features"]["age"] == {"type": "int", "count": 0, "nulls": 0}
    assert users.get("/api/feature-sets/user_features/statistics?version=2").status_code == 404
    assert users.get("/api/feature-sets/nope/statistics").status_code == 404
