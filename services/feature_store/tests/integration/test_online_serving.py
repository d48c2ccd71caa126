"""Online serving and push over HTTP, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from feature_store.online.redis_store import RedisOnlineStore
from feature_store.tables import OfflineRow
from mlops_kit.testing import free_port
from sqlalchemy import func, select

T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-02T00:00:00Z"
FEATURES = [
    {"name": "age", "type": "int"},
    {"name": "avg_session_duration", "type": "float"},
    {"name": "last_login", "type": "timestamp"},
]


def make_set(
    client: TestClient,
    name: str = "user_features",
    *,
    entity: str = "user",
    join_keys: list[str] | None = None,
    value_type: str = "string",
    features: list[dict[str, str]] = FEATURES,
    ttl_seconds: int | None = None,
) -> None:
    if client.get(f"/api/entities/{entity}").status_code == 404:
        made = client.post(
            "/api/entities",
            json={"name": entity, "join_keys": join_keys or [f"{entity}_id"], "value_type": value_type},
        )
        assert made.status_code == 201, made.text
    body: dict[str, Any] = {"name": name, "entity": entity, "features": features}
    if ttl_seconds:
        body["ttl_seconds"] = ttl_seconds
    created = client.post("/api/feature-sets", json=body)
    assert created.status_code == 201, created.text


def push(client: TestClient, name: str, rows: list[dict[str, Any]] | dict[str, Any], **params: Any) -> Any:
    body = {"rows": rows} if isinstance(rows, list) else rows
    response = client.post(f"/api/feature-sets/{name}/push", json=body, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def serve(client: TestClient, entities: str, features: str, **params: str) -> dict[str, Any]:
    response = client.get(
        "/api/features/serve", params={"entities": entities, "features": features, **params}
    )
    assert response.status_code == 200, response.text
    return response.json()


def online(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/features/online", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return body


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def offline_count(client: TestClient) -> int:
    with client.app.state.db.reader.connect() as conn:  # type: ignore[attr-defined]
        return conn.scalar(select(func.count()).select_from(OfflineRow)) or 0


# ---------------------------------------------------------------------------------------------


def test_push_then_serve_answers_values_statuses_and_event_times(client: TestClient) -> None:
    make_set(client)
    result = push(
        client,
        "user_features",
        [
            {"user_id": "user_123", "event_timestamp": T1, "age": 31, "avg_session_duration": 12.5,
             "last_login": "2025-12-31T23:00:00"},
            {"user_id": "user_456", "event_timestamp": 1767312000, "age": "44", "avg_session_duration": 3},
        ],
    )  # fmt: skip
    assert result == {
        "feature_set": "user_features",
        "version": 1,
        "rows_written": 2,
        "event_time": {"min": T1, "max": T2},
        "online_updated": 2,
    }

    body = serve(client, "user_123,user_456,nobody", "age,avg_session_duration,last_login")
    assert body["features"] == ["age", "avg_session_duration", "last_login"]
    assert body["feature_refs"] == [f"user_features:{f['name']}" for f in FEATURES]
    first, second, third = body["results"]
    assert first == {
        "entity": "user_123",
        "values": {"age": 31, "avg_session_duration": 12.5, "last_login": "2025-12-31T23:00:00Z"},
        "statuses": {"age": "PRESENT", "avg_session_duration": "PRESENT", "last_login": "PRESENT"},
        "event_timestamps": {"age": T1, "avg_session_duration": T1, "last_login": T1},
    }
    assert second["values"] == {"age": 44, "avg_session_duration": 3.0, "last_login": None}
    assert second["statuses"]["last_login"] == "MISSING" and second["event_timestamps"]["last_login"] is None
    assert second["event_timestamps"]["age"] == T2
    assert third["statuses"] == {f["name"]: "MISSING" for f in FEATURES}
    assert third["values"] == {f["name"]: None for f in FEATURES}


def test_post_online_accepts_keys_objects_and_columns_with_the_same_answer(client: TestClient) -> None:
    make_set(client)
    push(client, "user_features", [{"user_id": f"u{i}", "event_timestamp": T1, "age": i} for i in range(3)])
    refs = ["user_features:age"]
    by_keys = online(client, {"entities": ["u2", "u0"], "features": refs})
    by_objects = online(client, {"entities": [{"user_id": "u2"}, {"user_id": "u0"}], "features": refs})
    by_columns = online(client, {"entities": {"user_id": ["u2", "u0"]}, "features": refs})
    for body in (by_keys, by_objects, by_columns):
        assert [r["values"]["age"] for r in body["results"]] == [2, 0]
    assert [r["entity"] for r in by_columns["results"]] == [{"user_id": "u2"}, {"user_id": "u0"}]
    star = online(client, {"entities": ["u1"], "features": ["user_features:*"]})
    assert star["features"] == ["age", "avg_session_duration", "last_login"]
    scoped = serve(client, "u1", "age", feature_set="user_features")
    assert scoped["results"][0]["values"] == {"age": 1}


def test_an_older_push_never_replaces_a_newer_row(client: TestClient) -> None:
    make_set(client)
    assert (
        push(client, "user_features", {"user_id": "u", "event_timestamp": T2, "age": 2})["online_updated"]
        == 1
    )
    older = push(client, "user_features", {"user_id": "u", "event_timestamp": T1, "age": 1})
    assert older["online_updated"] == 0 and older["rows_written"] == 1
    assert serve(client, "u", "age")["results"][0]["values"]["age"] == 2
    # same event time: the later created time wins, an earlier one does not
    later = {"user_id": "u", "event_timestamp": T2, "created_timestamp": "2030-01-01T00:00:00Z", "age": 3}
    assert push(client, "user_features", later)["online_updated"] == 1
    earlier = {"user_id": "u", "event_timestamp": T2, "created_timestamp": "2029-01-01T00:00:00Z", "age": 4}
    assert push(client, "user_features", earlier)["online_updated"] == 0
    assert serve(client, "u", "age")["results"][0]["values"]["age"] == 3
    # within one batch too, whatever the order
    batch = [{"user_id": "v", "event_timestamp": 1_700_000_000 + k, "age": k} for k in (5, 9, 1, 7)]
    push(client, "user_features", batch)
    assert serve(client, "v", "age")["results"][0]["values"]["age"] == 9
    assert offline_count(client) == 4 + len(batch)


def test_concurrent_pushes_leave_the_newest_event_online(client: TestClient) -> None:
    make_set(client)
    ages = list(range(40))
    random.Random(7).shuffle(ages)

    def one(age: int) -> int:
        row = {"user_id": "hot", "event_timestamp": 1_700_000_000 + age, "age": age}
        response = client.post("/api/feature-sets/user_features/push", json=row)
        assert response.status_code == 200, response.text
        return int(response.json()["online_updated"])

    with ThreadPoolExecutor(8) as pool:
        updated = list(pool.map(one, ages))
    assert 1 <= sum(updated) <= len(ages)
    body = serve(client, "hot", "age")["results"][0]
    assert body["values"]["age"] == 39
    assert body["event_timestamps"]["age"] == "2023-11-14T22:13:59Z"
    assert offline_count(client) == len(ages)


def test_ttl_expires_rows_older_than_it_at_read_time(client: TestClient) -> None:
    make_set(client, ttl_seconds=3600)
    now = datetime.now(UTC)
    fresh, stale = now - timedelta(seconds=3600 - 60), now - timedelta(seconds=3600 + 60)
    push(
        client,
        "user_features",
        [
            {"user_id": "fresh", "event_timestamp": iso(fresh), "age": 1},
            {"user_id": "stale", "event_timestamp": iso(stale), "age": 2},
            {"user_id": "future", "event_timestamp": iso(now + timedelta(days=1)), "age": 3},
        ],
    )
    results = serve(client, "fresh,stale,future", "age,avg_session_duration")["results"]
    assert results[0]["statuses"] == {"age": "PRESENT", "avg_session_duration": "MISSING"}
    assert results[0]["values"]["age"] == 1
    assert results[1]["statuses"] == {"age": "EXPIRED", "avg_session_duration": "MISSING"}
    assert results[1]["values"]["age"] is None
    assert results[1]["event_timestamps"]["age"] == iso(stale)
    assert results[2]["statuses"]["age"] == "PRESENT"
    # removing the TTL brings the stale row back at once in this process
    assert client.patch("/api/feature-sets/user_features", json={"ttl_seconds": 0}).status_code == 200
    assert serve(client, "stale", "age")["results"][0]["values"]["age"] == 2


def test_composite_join_keys(client: TestClient) -> None:
    make_set(
        client,
        "pair_stats",
        entity="pair",
        join_keys=["user_id", "merchant_id"],
        features=[{"name": "txn_count", "type": "int"}],
    )
    push(
        client,
        "pair_stats",
        [
            {"user_id": "u1", "merchant_id": "m1", "event_timestamp": T1, "txn_count": 11},
            {"user_id": "u1", "merchant_id": "m2", "event_timestamp": T1, "txn_count": 12},
        ],
    )
    objects = online(
        client,
        {
            "entities": [{"user_id": "u1", "merchant_id": "m2"}, {"merchant_id": "m1", "user_id": "u1"}],
            "features": ["txn_count"],
        },
    )
    assert [r["values"]["txn_count"] for r in objects["results"]] == [12, 11]
    columns = online(
        client,
        {"entities": {"user_id": ["u1", "u2"], "merchant_id": ["m1", "m1"]}, "features": ["txn_count"]},
    )
    assert [r["statuses"]["txn_count"] for r in columns["results"]] == ["PRESENT", "MISSING"]
    bare = client.get("/api/features/serve", params={"entities": "u1", "features": "txn_count"})
    assert "merchant_id" in error(bare, 400, "INVALID_REQUEST")["message"]
    half = client.post(
        "/api/features/online", json={"entities": [{"user_id": "u1"}], "features": ["txn_count"]}
    )
    assert error(half, 400, "INVALID_REQUEST")["details"]["missing"] == ["merchant_id"]
    no_key = client.post(
        "/api/feature-sets/pair_stats/push", json={"user_id": "u1", "event_timestamp": T1, "txn_count": 1}
    )
    assert error(no_key, 422, "MISSING_COLUMN")["details"] == {"column": "merchant_id"}


def test_int_entity_keys_are_normalized_and_checked(client: TestClient) -> None:
    make_set(
        client,
        "driver_stats",
        entity="driver",
        value_type="int",
        features=[{"name": "rating", "type": "float"}],
    )
    push(client, "driver_stats", [{"driver_id": 42, "event_timestamp": T1, "rating": 4.5}])
    push(client, "driver_stats", [{"driver_id": "7", "event_timestamp": T1, "rating": 3.0}])
    results = serve(client, "42,042,7,8", "rating")["results"]
    assert [r["values"]["rating"] for r in results] == [4.5, 4.5, 3.0, None]
    assert (
        online(client, {"entities": [7, 42], "features": ["rating"]})["results"][1]["values"]["rating"] == 4.5
    )
    bad = client.get("/api/features/serve", params={"entities": "42,driver_x", "features": "rating"})
    assert "driver_x" in error(bad, 400, "INVALID_REQUEST")["message"]
    bad_post = client.post("/api/features/online", json={"entities": [4.5], "features": ["rating"]})
    error(bad_post, 400, "INVALID_REQUEST")
    bad_push = client.post(
        "/api/feature-sets/driver_stats/push", json={"driver_id": "x1", "event_timestamp": T1, "rating": 1.0}
    )
    assert error(bad_push, 422, "TYPE_MISMATCH")["details"]["errors"][0]["column"] == "driver_id"


def test_feature_service_serves_its_pinned_features(client: TestClient) -> None:
    make_set(client)
    make_set(
        client, "user_risk", features=[{"name": "score", "type": "float"}, {"name": "age", "type": "int"}]
    )
    push(
        client,
        "user_features",
        {"user_id": "u", "event_timestamp": T1, "age": 30, "avg_session_duration": 1.5},
    )
    push(client, "user_risk", {"user_id": "u", "event_timestamp": T2, "score": 0.25, "age": 99})
    made = client.post(
        "/api/feature-services",
        json={"name": "fraud_model", "features": ["user_features:age", "user_risk:score", "user_risk:age"]},
    )
    assert made.status_code == 201, made.text
    body = online(client, {"entities": ["u", "v"], "feature_service": "fraud_model"})
    assert body["features"] == ["user_features:age", "score", "user_risk:age"]
    assert body["results"][0]["values"] == {"user_features:age": 30, "score": 0.25, "user_risk:age": 99}
    assert body["results"][0]["event_timestamps"] == {
        "user_features:age": T1,
        "score": T2,
        "user_risk:age": T2,
    }
    assert set(body["results"][1]["statuses"].values()) == {"MISSING"}
    pinned = online(
        client, {"entities": ["u"], "feature_service": "fraud_model", "feature_service_version": 1}
    )
    assert pinned["results"][0]["values"]["score"] == 0.25
    missing = client.post("/api/features/online", json={"entities": ["u"], "feature_service": "nope"})
    assert "nope" in error(missing, 404, "FEATURE_SERVICE_NOT_FOUND")["message"]
    no_version = client.post(
        "/api/features/online",
        json={"entities": ["u"], "feature_service": "fraud_model", "feature_service_version": 5},
    )
    error(no_version, 404, "FEATURE_SERVICE_NOT_FOUND")


def test_a_name_in_two_requested_sets_is_keyed_by_set_and_ambiguous_bare_names_are_refused(
    client: TestClient,
) -> None:
    make_set(client)
    make_set(client, "user_risk", features=[{"name": "age", "type": "int"}])
    push(client, "user_features", {"user_id": "u", "event_timestamp": T1, "age": 1})
    push(client, "user_risk", {"user_id": "u", "event_timestamp": T1, "age": 2})
    body = serve(client, "u", "user_features:age,user_risk:age,avg_session_duration")
    assert body["features"] == ["user_features:age", "user_risk:age", "avg_session_duration"]
    assert body["results"][0]["values"] == {
        "user_features:age": 1,
        "user_risk:age": 2,
        "avg_session_duration": None,
    }
    ambiguous = client.get("/api/features/serve", params={"entities": "u", "features": "age"})
    assert error(ambiguous, 400, "INVALID_REQUEST")["details"]["feature_sets"] == [
        "user_features",
        "user_risk",
    ]


def test_serving_errors_are_4xx_naming_the_problem(client: TestClient) -> None:
    make_set(client)
    get = client.get
    unknown_set = get("/api/features/serve", params={"entities": "u", "features": "nope:age"})
    assert "nope" in error(unknown_set, 404, "FEATURE_SET_NOT_FOUND")["message"]
    unknown_feature = get("/api/features/serve", params={"entities": "u", "features": "user_features:height"})
    assert "height" in error(unknown_feature, 404, "FEATURE_NOT_FOUND")["message"]
    unknown_bare = get("/api/features/serve", params={"entities": "u", "features": "height"})
    assert "height" in error(unknown_bare, 404, "FEATURE_NOT_FOUND")["message"]
    default_set = get(
        "/api/features/serve", params={"entities": "u", "features": "age", "feature_set": "nope"}
    )
    error(default_set, 404, "FEATURE_SET_NOT_FOUND")
    error(get("/api/features/serve", params={"entities": ",", "features": "age"}), 400, "INVALID_REQUEST")
    error(get("/api/features/serve", params={"entities": "u", "features": ","}), 400, "INVALID_REQUEST")
    error(get("/api/features/serve", params={"features": "age"}), 400, "INVALID_REQUEST")
    post = client.post
    error(post("/api/features/online", json={"entities": [], "features": ["age"]}), 400, "INVALID_REQUEST")
    error(post("/api/features/online", json={"entities": ["u"]}), 400, "INVALID_REQUEST")
    error(post("/api/features/online", json={"entities": "u", "features": ["age"]}), 400, "INVALID_REQUEST")
    typo = post("/api/features/online", json={"entities": ["u"], "feature": ["age"]})
    assert error(typo, 400, "INVALID_REQUEST")["details"]["unknown"] == ["feature"]
    ragged = post("/api/features/online", json={"entities": {"a": ["1"], "b": []}, "features": ["age"]})
    error(ragged, 400, "INVALID_REQUEST")
    error(post("/api/features/online", content=b"{not json"), 400, "INVALID_JSON")
    limit = client.app.state.settings.max_entities_per_request  # type: ignore[attr-defined]
    too_many = post(
        "/api/features/online", json={"entities": [f"u{i}" for i in range(limit + 1)], "features": ["age"]}
    )
    assert error(too_many, 400, "TOO_MANY_ENTITIES")["details"]["max_entities_per_request"] == limit


def test_push_is_all_or_nothing_and_names_the_row_and_column(client: TestClient) -> None:
    make_set(client)
    good = {"user_id": "u", "event_timestamp": T1, "age": 1}
    mismatch = client.post(
        "/api/feature-sets/user_features/push", json={"rows": [good, {**good, "user_id": "v", "age": "old"}]}
    )
    (problem,) = error(mismatch, 422, "TYPE_MISMATCH")["details"]["errors"]
    assert problem["row"] == 1 and problem["column"] == "age" and "old" in problem["reason"]
    bad_time = client.post(
        "/api/feature-sets/user_features/push", json={**good, "event_timestamp": "yesterday"}
    )
    assert error(bad_time, 422, "TYPE_MISMATCH")["details"]["errors"][0]["column"] == "event_timestamp"
    unknown = client.post(
        "/api/feature-sets/user_features/push", json={"rows": [good, {**good, "height": 2}]}
    )
    assert error(unknown, 422, "UNKNOWN_COLUMN")["details"]["columns"] == ["height"]
    no_time = client.post("/api/feature-sets/user_features/push", json={"user_id": "u", "age": 1})
    assert error(no_time, 422, "MISSING_COLUMN")["details"]["column"] == "event_timestamp"
    not_object = client.post("/api/feature-sets/user_features/push", json={"rows": [good, 5]})
    assert error(not_object, 400, "INVALID_REQUEST")["details"]["row"] == 1
    error(client.post("/api/feature-sets/user_features/push", json={"rows": []}), 400, "INVALID_REQUEST")
    too_many = client.post("/api/feature-sets/user_features/push", json={"rows": [good] * 1001})
    assert error(too_many, 413, "PAYLOAD_TOO_LARGE")["details"]["max_rows"] == 1000
    unknown_set = client.post("/api/feature-sets/nope/push", json=good)
    assert "nope" in error(unknown_set, 404, "FEATURE_SET_NOT_FOUND")["message"]
    no_version = client.post("/api/feature-sets/user_features/push", json=good, params={"version": 9})
    error(no_version, 404, "FEATURE_SET_NOT_FOUND")
    assert offline_count(client) == 0
    assert serve(client, "u,v", "age")["results"][0]["statuses"]["age"] == "MISSING"


def test_push_keeps_offline_rows_with_version_and_ingestion_time(client: TestClient) -> None:
    make_set(client)
    added = client.post(
        "/api/feature-sets/user_features/versions",
        json={"features": [*FEATURES, {"name": "country", "type": "string"}]},
    )
    assert added.status_code == 201, added.text
    before = time.time_ns() // 1000
    push(client, "user_features", {"user_id": "u", "event_timestamp": T1, "age": 5, "country": "NL"})
    push(client, "user_features", {"user_id": "w", "event_timestamp": T1, "age": 6}, version=1)
    old_schema = client.post(
        "/api/feature-sets/user_features/push", params={"version": 1},
        json={"user_id": "w", "event_timestamp": T1, "country": "NL"},
    )  # fmt: skip
    error(old_schema, 422, "UNKNOWN_COLUMN")
    with client.app.state.db.reader.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(OfflineRow).order_by(OfflineRow.id)).all()
    assert [(r.entity_key, r.version, r.values) for r in rows] == [
        ("u", 2, {"age": 5, "country": "NL"}),
        ("w", 1, {"age": 6}),
    ]
    assert rows[0].event_ts == 1_767_225_600_000_000
    assert before <= rows[0].created_ts <= time.time_ns() // 1000
    assert serve(client, "u", "country")["results"][0]["values"] == {"country": "NL"}
    stats = client.get("/api/feature-sets/user_features/statistics").json()
    assert stats["features"]["age"]["count"] == 1 and stats["features"]["country"]["count"] == 1


def test_two_hundred_entities_in_one_request(client: TestClient) -> None:
    make_set(client)
    rows = [
        {"user_id": f"user_{i}", "event_timestamp": T1, "age": i, "avg_session_duration": i / 4}
        for i in range(200)
    ]
    push(client, "user_features", rows)
    ids = [f"user_{i}" for i in range(199, -1, -1)]
    body = online(client, {"entities": ids, "features": ["age", "avg_session_duration"]})
    assert [r["entity"] for r in body["results"]] == ids
    assert [r["values"]["age"] for r in body["results"]] == list(range(199, -1, -1))
    assert all(r["values"]["avg_session_duration"] == int(r["entity"][5:]) / 4 for r in body["results"])
    got = serve(client, ",".join(ids), "age")
    assert [r["values"]["age"] for r in got["results"]] == list(range(199, -1, -1))


def test_a_schema_change_is_served_at_once_in_this_process(client: TestClient) -> None:
    make_set(client)
    push(client, "user_features", {"user_id": "u", "event_timestamp": T1, "age": 5})
    assert serve(client, "u", "user_features:*")["features"] == ["age", "avg_session_duration", "last_login"]
    new = [*FEATURES, {"name": "country", "type": "string"}]
    assert client.post("/api/feature-sets/user_features/versions", json={"features": new}).status_code == 201
    assert serve(client, "u", "user_features:*")["features"][-1] == "country"
    assert client.delete("/api/feature-sets/user_features").status_code == 204
    gone = client.get("/api/features/serve", params={"entities": "u", "features": "user_features:age"})
    error(gone, 404, "FEATURE_SET_NOT_FOUND")


@pytest.fixture
def unreachable_online_store(client: TestClient) -> Any:
    """A real Redis client pointed at a port nobody listens on, in place of the app's store."""
    app = client.app
    kept = app.state.online  # type: ignore[attr-defined]
    dead = RedisOnlineStore(f"redis://127.0.0.1:{free_port()}/0", "dead")
    app.state.online = dead  # type: ignore[attr-defined]
    yield dead
    app.state.online = kept  # type: ignore[attr-defined]
    client.portal.call(dead.close)  # type: ignore[union-attr]


def test_online_store_failure_is_503_and_a_push_keeps_its_offline_rows(
    client: TestClient, unreachable_online_store: Any
) -> None:
    make_set(client)
    pushed = client.post(
        "/api/feature-sets/user_features/push", json={"user_id": "u", "event_timestamp": T1, "age": 1}
    )
    assert error(pushed, 503, "ONLINE_WRITE_FAILED")["details"] == {"retryable": True, "offline_rows": 1}
    assert offline_count(client) == 1
    errors = "mlops_feature_store_online_store_errors_total"
    before = metric(client, errors, op="read")
    served = client.get("/api/features/serve", params={"entities": "u", "features": "age"})
    assert error(served, 503, "ONLINE_STORE_UNAVAILABLE")["details"]["retryable"] is True
    assert metric(client, errors, op="read") == before + 1


def metric(client: TestClient, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, "service": "feature_store"}.items()))
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.split()[-1])
    return 0.0


def test_serving_and_push_are_counted_in_metrics(client: TestClient) -> None:
    make_set(client)
    lookups, pushes = "mlops_feature_store_online_lookups_total", "mlops_feature_store_pushed_rows_total"
    before = [metric(client, lookups, result=r) for r in ("found", "not_found")]
    pushed_before = [metric(client, pushes, online=r) for r in ("applied", "older")]
    push(client, "user_features", [{"user_id": "u", "event_timestamp": T2, "age": 1}])
    push(client, "user_features", [{"user_id": "u", "event_timestamp": T1, "age": 0}])
    serve(client, "u,v,w", "age")
    assert [metric(client, lookups, result=r) for r in ("found", "not_found")] == [
        before[0] + 1,
        before[1] + 2,
    ]
    assert [metric(client, pushes, online=r) for r in ("applied", "older")] == [
        pushed_before[0] + 1,
        pushed_before[1] + 1,
    ]
