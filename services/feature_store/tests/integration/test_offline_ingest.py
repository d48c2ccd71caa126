"""Batch ingestion into the offline store: JSON, CSV and Parquet; every row checked; all or nothing."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from feature_store.tables import OfflineRow
from sqlalchemy import func, select

FEATURES = [
    {"name": "age", "type": "int"},
    {"name": "score", "type": "float"},
    {"name": "country", "type": "string"},
    {"name": "active", "type": "bool"},
    {"name": "signup", "type": "timestamp"},
    {"name": "clicks", "type": "list[int]"},
]


@pytest.fixture
def users(client: TestClient) -> TestClient:
    assert client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}).status_code == 201
    body = {"name": "user_features", "entity": "user", "features": FEATURES}
    assert client.post("/api/feature-sets", json=body).status_code == 201
    return client


def offline_count(client: TestClient) -> int:
    with client.app.state.db.reader.connect() as conn:
        return conn.scalar(select(func.count()).select_from(OfflineRow))


def stored(client: TestClient) -> list[tuple[str, int, int, int, dict]]:
    with client.app.state.db.reader.connect() as conn:
        rows = conn.execute(
            select(
                OfflineRow.entity_key,
                OfflineRow.event_ts,
                OfflineRow.created_ts,
                OfflineRow.version,
                OfflineRow.values,
            ).order_by(OfflineRow.id)
        )
        return [tuple(r) for r in rows]


def test_json_rows_are_written_with_their_types_and_the_answer_says_what(users: TestClient) -> None:
    rows = [
        {
            "user_id": "u1",
            "event_timestamp": "2026-01-01T00:00:00Z",
            "age": 31,
            "score": 0.5,
            "country": "FR",
            "active": True,
            "signup": "2025-12-01T10:00:00",
            "clicks": [1, 2],
        },
        {
            "user_id": "u2",
            "event_timestamp": "2026-01-02T00:00:00+01:00",
            "created_timestamp": 1767225600,
            "age": "40",
        },
    ]
    r = users.post("/api/feature-sets/user_features/rows", json={"rows": rows})
    assert r.status_code == 201, r.text
    assert r.json() == {
        "feature_set": "user_features",
        "version": 1,
        "rows_written": 2,
        "event_time": {"min": "2026-01-01T00:00:00Z", "max": "2026-01-01T23:00:00Z"},
    }
    (k1, e1, _, v1, values1), (k2, e2, c2, _, values2) = stored(users)
    assert (k1, e1, v1) == ("u1", 1767225600_000000, 1)
    # naive timestamps are UTC
    assert values1 == {
        "age": 31,
        "score": 0.5,
        "country": "FR",
        "active": True,
        "signup": 1764583200_000000,
        "clicks": [1, 2],
    }
    assert (k2, e2, c2) == ("u2", 1767308400_000000, 1767225600_000000)
    assert values2["age"] == 40 and values2["country"] is None


def test_a_value_that_does_not_fit_is_a_422_naming_row_and_column_and_nothing_is_written(
    users: TestClient,
) -> None:
    rows = [
        {"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z", "age": 1},
        {"user_id": "u2", "event_timestamp": "2026-01-01T00:00:00Z", "age": "old"},
        {"user_id": "u3", "event_timestamp": "2026-01-01T00:00:00Z", "active": "maybe"},
    ]
    r = users.post("/api/feature-sets/user_features/rows", json={"rows": rows})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "TYPE_MISMATCH"
    assert error["details"]["errors"][:2] == [
        {"row": 1, "column": "age", "reason": "expected an int, got 'old'"},
        {"row": 2, "column": "active", "reason": "expected a bool, got str 'maybe'"},
    ]
    assert "row 1" in error["message"] and "'age'" in error["message"]
    assert offline_count(users) == 0


def test_an_unknown_column_is_a_422_naming_it(users: TestClient) -> None:
    rows = [{"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z", "height": 180}]
    r = users.post("/api/feature-sets/user_features/rows", json={"rows": rows})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "UNKNOWN_COLUMN"
    assert "height" in r.json()["error"]["message"]


def test_a_missing_event_timestamp_is_a_422(users: TestClient) -> None:
    r = users.post("/api/feature-sets/user_features/rows", json={"rows": [{"user_id": "u1", "age": 3}]})
    assert r.status_code == 422
    assert r.json()["error"]["details"] == {"column": "event_timestamp"}
    rows = [
        {"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z"},
        {"user_id": "u1", "event_timestamp": None},
    ]
    r = users.post("/api/feature-sets/user_features/rows", json={"rows": rows})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"][0]["row"] == 1
    assert offline_count(users) == 0


def test_unknown_feature_set_or_version_is_a_404(users: TestClient) -> None:
    rows = [{"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z"}]
    r = users.post("/api/feature-sets/nope/rows", json={"rows": rows})
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    r = users.post("/api/feature-sets/user_features/rows?version=7", json={"rows": rows})
    assert r.status_code == 404


def test_csv_upload_keeps_string_keys_and_converts_values(users: TestClient) -> None:
    csv = (
        "user_id,event_timestamp,age,score,country,active\n"
        "007,2026-01-01T00:00:00Z,31,0.5,FR,true\n"
        "008,2026-01-02 00:00:00,,1.5,,false\n"
    )
    r = users.post(
        "/api/feature-sets/user_features/rows", content=csv.encode(), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows_written"] == 2
    (k1, e1, _, _, v1), (k2, e2, _, _, v2) = stored(users)
    assert (k1, e1, v1) == (
        "007",
        1767225600_000000,
        {"age": 31, "score": 0.5, "country": "FR", "active": True},
    )
    assert (k2, e2) == ("008", 1767312000_000000)
    assert v2 == {"age": None, "score": 1.5, "country": None, "active": False}


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("content_type", "query"),
    [
        ("application/vnd.apache.parquet", ""),
        ("application/x-parquet", ""),
        ("application/octet-stream", "?format=parquet"),
    ],
)
def test_parquet_upload_is_ingested(users: TestClient, content_type: str, query: str) -> None:
    table = pa.table(
        {
            "user_id": ["a", "b"],
            "event_timestamp": pa.array([1767225600_000000, 1767225601_000000], pa.timestamp("us", tz="UTC")),
            "age": pa.array([1, None], pa.int32()),
            "score": [0.25, 2.0],
            "signup": pa.array([1000, 2000], pa.timestamp("us")),
        }
    )
    r = users.post(
        f"/api/feature-sets/user_features/rows{query}",
        content=_parquet(table),
        headers={"content-type": content_type},
    )
    assert r.status_code == 201, r.text
    assert [(k, e, v) for k, e, _, _, v in stored(users)] == [
        ("a", 1767225600_000000, {"age": 1, "score": 0.25, "signup": 1000}),
        ("b", 1767225601_000000, {"age": None, "score": 2.0, "signup": 2000}),
    ]


def test_multipart_file_upload_is_ingested(users: TestClient) -> None:
    csv = b"user_id,event_timestamp,age\nu1,2026-01-01T00:00:00Z,5\n"
    r = users.post("/api/feature-sets/user_features/rows", files={"file": ("rows.csv", csv, "text/csv")})
    assert r.status_code == 201, r.text
    assert stored(users)[0][4] == {"age": 5}


def test_a_corrupt_parquet_body_is_a_400(users: TestClient) -> None:
    r = users.post(
        "/api/feature-sets/user_features/rows",
        content=b"not parquet",
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "INVALID_BODY"


def test_an_upload_over_the_limit_is_a_413(users: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users.app.state.settings, "max_upload_bytes", 100)
    rows = [{"user_id": f"u{i}", "event_timestamp": "2026-01-01T00:00:00Z", "age": i} for i in range(20)]
    r = users.post("/api/feature-sets/user_features/rows", json={"rows": rows})
    assert r.status_code == 413
    assert offline_count(users) == 0


def test_rows_go_to_the_named_schema_version(users: TestClient) -> None:
    new = [*FEATURES, {"name": "city", "type": "string"}]
    assert users.post("/api/feature-sets/user_features/versions", json={"features": new}).status_code == 201
    row = {"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z", "city": "Paris"}
    r = users.post("/api/feature-sets/user_features/rows", json={"rows": [row]})
    assert r.status_code == 201 and r.json()["version"] == 2
    r = users.post("/api/feature-sets/user_features/rows?version=1", json={"rows": [row]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "UNKNOWN_COLUMN"


def test_composite_join_keys_make_one_entity_key(client: TestClient) -> None:
    body = {"name": "trip", "join_keys": ["driver_id", "city"]}
    assert client.post("/api/entities", json=body).status_code == 201
    fs = {"name": "trips", "entity": "trip", "features": [{"name": "n", "type": "int"}]}
    assert client.post("/api/feature-sets", json=fs).status_code == 201
    rows = [{"driver_id": "d1", "city": "Paris", "event_timestamp": "2026-01-01T00:00:00Z", "n": 1}]
    assert client.post("/api/feature-sets/trips/rows", json={"rows": rows}).status_code == 201
    assert stored(client)[0][0] == "d1\x1fParis"
    r = client.post(
        "/api/feature-sets/trips/rows", json={"rows": [{"driver_id": "d1", "event_timestamp": 0}]}
    )
    assert r.status_code == 422 and r.json()["error"]["details"] == {"column": "city"}
