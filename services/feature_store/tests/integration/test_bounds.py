"""What storage holds, held at the edge (issue 12), on SQLite and on PostgreSQL + Redis: event
times that are dates, TTLs that are durations, page offsets, keys and string values that fit,
no NUL, and an audit entry for every write. Nothing is half-written when a row is refused."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from feature_store.app import create_app
from feature_store.settings import FeatureStoreSettings
from feature_store.tables import OfflineRow
from mlops_kit.testing.openapi_bounds import offset_failures, request_problems
from sqlalchemy import func, select

FEATURES = [
    {"name": "age", "type": "int"},
    {"name": "country", "type": "string"},
    {"name": "seen", "type": "timestamp"},
]
# epoch seconds past year 9999 or before year 1, and the first second of year 10000
BAD_TIMES = [1e12, 1e20, 253_402_300_800, -1e12, 2**63, "10000-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00"]


@pytest.fixture
def users(client: TestClient) -> TestClient:
    assert client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}).status_code == 201
    body = {"name": "users", "entity": "user", "features": FEATURES, "ttl": "7d"}
    assert client.post("/api/feature-sets", json=body).status_code == 201
    return client


def offline_count(client: TestClient) -> int:
    with client.app.state.db.reader.connect() as conn:
        return conn.scalar(select(func.count()).select_from(OfflineRow))


def test_every_request_string_array_map_and_integer_is_bounded(tmp_path: Path) -> None:
    spec = create_app(FeatureStoreSettings(data_dir=tmp_path)).openapi()
    assert request_problems(spec) == []


def test_every_list_endpoint_refuses_offsets_and_limits_out_of_range(users: TestClient) -> None:
    assert offset_failures(users, users.app.openapi(), {"name": "users"}) == []
    for path in ("/api/feature-sets/users/versions/9223372036854775808", "/api/materialization-jobs/-1"):
        assert users.get(path).status_code == 422
    assert users.get("/api/feature-sets/users", params={"version": 2**63}).status_code == 422


@pytest.mark.parametrize("when", BAD_TIMES, ids=str)
@pytest.mark.parametrize("route", ["rows", "push"])
def test_event_timestamp_outside_years_1_to_9999_is_a_4xx_and_nothing_is_written(
    users: TestClient, route: str, when: object
) -> None:
    rows = [
        {"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z", "age": 1},
        {"user_id": "u2", "event_timestamp": when, "age": 2},
    ]
    response = users.post(f"/api/feature-sets/users/{route}", json={"rows": rows})
    assert 400 <= response.status_code < 500, response.text
    assert "out of range" in response.text or "ISO 8601" in response.text
    assert offline_count(users) == 0
    served = users.get("/api/features/serve", params={"entities": "u1,u2", "features": "users:age"})
    assert served.status_code == 200
    assert [r["statuses"]["age"] for r in served.json()["results"]] == ["MISSING", "MISSING"]


def test_a_timestamp_feature_value_out_of_range_is_refused(users: TestClient) -> None:
    rows = [{"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z", "seen": 1e20}]
    response = users.post("/api/feature-sets/users/rows", json={"rows": rows})
    assert response.status_code == 422, response.text
    assert offline_count(users) == 0


def test_native_parquet_timestamps_out_of_range_are_refused(users: TestClient) -> None:
    table = pa.table(
        {
            "user_id": ["u1"],
            "event_timestamp": pa.array([2**62], type=pa.timestamp("us")),
            "age": [1],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    response = users.post(
        "/api/feature-sets/users/rows",
        content=sink.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 422, response.text
    assert offline_count(users) == 0


def test_extreme_but_storable_event_times_round_trip(users: TestClient) -> None:
    rows = [
        {"user_id": "u1", "event_timestamp": "9999-12-30T00:00:00Z", "age": 1},
        {"user_id": "u2", "event_timestamp": "0001-01-02T00:00:00Z", "age": 2},
    ]
    assert users.post("/api/feature-sets/users/rows", json={"rows": rows}).status_code == 201
    assert offline_count(users) == 2


@pytest.mark.parametrize(
    "ttl",
    [
        {"ttl": "9999999999999999d"},
        {"ttl": 2**63},
        {"ttl_seconds": 2**63},
        {"ttl": "101000000000000000000000000s"},
    ],
    ids=str,
)
def test_ttl_past_100_years_is_a_422(client: TestClient, ttl: dict) -> None:
    assert client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}).status_code == 201
    body = {"name": "users", "entity": "user", "features": FEATURES, **ttl}
    response = client.post("/api/feature-sets", json=body)
    assert response.status_code == 422, response.text
    assert "ttl" in response.json()["error"]["message"]
    assert client.get("/api/feature-sets/users").status_code == 404


def test_ttl_update_past_100_years_is_a_422(users: TestClient) -> None:
    for body in ({"ttl": "9999999999999999d"}, {"ttl_seconds": 10**12}):
        response = users.patch("/api/feature-sets/users", json=body)
        assert response.status_code == 422, response.text
    assert users.get("/api/feature-sets/users").json()["ttl_seconds"] == 7 * 86_400


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/entities", {"name": "a\x00b"}),
        ("post", "/api/feature-sets", {"name": "s", "features": FEATURES, "description": "\x00"}),
        (
            "post",
            "/api/feature-sets/users/rows",
            {"rows": [{"user_id": "u\x00", "event_timestamp": 1, "age": 1}]},
        ),
        (
            "post",
            "/api/feature-sets/users/push",
            {"rows": [{"user_id": "u", "event_timestamp": 1, "country": "\x00"}]},
        ),
        ("get", "/api/feature-sets/us%00ers", None),
        ("get", "/api/features/serve?entities=u%001&features=users:age", None),
    ],
)
def test_nul_is_refused_the_same_on_both_backends(
    users: TestClient, method: str, path: str, body: dict | None
) -> None:
    response = users.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["error"]["message"]
    assert offline_count(users) == 0


def test_nul_in_a_csv_string_value_is_refused(users: TestClient) -> None:
    csv = "user_id,event_timestamp,country\nu1,2026-01-01T00:00:00Z,a\x00b\n"
    response = users.post(
        "/api/feature-sets/users/rows", content=csv.encode(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422, response.text
    assert offline_count(users) == 0


@pytest.mark.parametrize(
    ("row", "what"),
    [
        ({"user_id": "u" * 513, "age": 1}, "user_id"),
        ({"user_id": "u1", "country": "c" * 65_537}, "country"),
    ],
)
def test_oversize_key_or_string_value_is_refused_naming_the_column(
    users: TestClient, row: dict, what: str
) -> None:
    row = {"event_timestamp": "2026-01-01T00:00:00Z", **row}
    for route in ("rows", "push"):
        response = users.post(f"/api/feature-sets/users/{route}", json={"rows": [row]})
        assert 400 <= response.status_code < 500, response.text
        assert what in response.text
    assert offline_count(users) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "s", "features": FEATURES, "description": "d" * 10_001}, "description"),
        ({"name": "s", "features": FEATURES, "tags": {"k": "v" * 8001}}, "tags"),
        ({"name": "s", "features": [{"name": "f", "type": "t" * 33}]}, "type"),
        ({"name": "s" * 129, "features": FEATURES}, "name"),
    ],
)
def test_oversize_registry_field_is_a_422_naming_it(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/api/feature-sets", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]


def test_every_write_leaves_an_audit_entry(users: TestClient) -> None:
    row = {"user_id": "u1", "event_timestamp": "2026-01-01T00:00:00Z", "age": 1}
    writes = [
        users.patch("/api/feature-sets/users", json={"description": "d"}),
        users.post("/api/feature-sets/users/rows", json={"rows": [row]}),
        users.post("/api/feature-sets/users/push", json={"rows": [row]}),
        users.post("/api/feature-sets/users/materialize", json={}),
    ]
    assert all(w.status_code < 300 for w in writes), [w.text for w in writes]
    audited = {e["route"] for e in users.get("/api/audit-log", params={"limit": 1000}).json()["items"]}
    assert audited >= {
        "/api/entities",
        "/api/feature-sets",
        "/api/feature-sets/{name}",
        "/api/feature-sets/{name}/rows",
        "/api/feature-sets/{name}/push",
        "/api/feature-sets/{name}/materialize",
    }
