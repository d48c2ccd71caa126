"""A frozen Redis (SIGSTOP) costs a serving request about a second: 503 ONLINE_STORE_UNAVAILABLE with
Retry-After, `/ready` reports the online store down, and serving resumes when Redis does.

The Redis is this session's own (`private_redis`), never the shared one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from feature_store.app import create_app
from feature_store.settings import FeatureStoreSettings
from mlops_kit.testing import PrivateServer, wait_until

READ_BOUND = 3.0  # a serving read's limit is 1 s by default; the rest is the request around it
READY_BOUND = 2.0


@pytest.fixture
def client(tmp_path: Path, private_redis: PrivateServer) -> Iterator[TestClient]:
    settings = FeatureStoreSettings(
        data_dir=tmp_path,
        online_store="redis",
        redis_url=private_redis.url,
        redis_prefix=f"sick-{tmp_path.name}",
        redis_socket_timeout_seconds=1,
        log_level="WARNING",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def make_feature_set(client: TestClient, name: str = "user_features") -> None:
    entity = {"name": "user", "join_keys": ["user_id"], "value_type": "string"}
    if client.get("/api/entities/user").status_code == 404:
        assert client.post("/api/entities", json=entity).status_code == 201
    body = {"name": name, "entity": "user", "features": [{"name": "age", "type": "int"}]}
    assert client.post("/api/feature-sets", json=body).status_code == 201


def push_age(client: TestClient, age: int) -> httpx.Response:
    row = {"user_id": "u1", "event_timestamp": f"2026-01-01T00:00:{age:02d}Z", "age": age}
    return client.post("/api/feature-sets/user_features/push", json=row)


def served_age(client: TestClient) -> Any:
    response = client.get("/api/features/serve", params={"entities": "u1", "features": "user_features:age"})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["values"]["age"]


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["retryable"] is True
    assert response.headers["retry-after"] == "1"
    return dict(error)


def test_a_frozen_redis_gives_fast_503s_and_ready_reports_the_online_store_down(
    client: TestClient, private_redis: PrivateServer
) -> None:
    make_feature_set(client)
    make_feature_set(client, "doomed")
    assert push_age(client, 30).status_code == 200
    assert served_age(client) == 30
    assert client.get("/ready").json()["checks"]["online_store"] == "ok"
    serve = {"entities": "u1", "features": "user_features:age"}
    with private_redis.frozen():
        for _ in range(2):  # the second read must not queue behind the first one's late reply
            response, took = timed(lambda: client.get("/api/features/serve", params=serve))
            error = assert_unavailable(response, "ONLINE_STORE_UNAVAILABLE")
            assert "did not answer within 1 s" in error["message"]
            assert took < READ_BOUND
        ready, took = timed(lambda: client.get("/ready"))
        assert ready.status_code == 503
        assert ready.json()["checks"]["online_store"].startswith("error:")
        assert ready.json()["checks"]["database"] == "ok"
        assert took < READY_BOUND
        pushed, took = timed(lambda: push_age(client, 31))
        assert_unavailable(pushed, "ONLINE_WRITE_FAILED")
        assert took < READ_BOUND
        deleted, took = timed(lambda: client.delete("/api/feature-sets/doomed"))
        assert deleted.status_code == 503 and deleted.json()["error"]["code"] == "ONLINE_DELETE_FAILED"
        assert deleted.json()["error"]["details"]["feature_set_deleted"] is True
        assert took < READ_BOUND
    wait_until(lambda: client.get("/ready").status_code == 200, timeout=15, what="ready after SIGCONT")
    assert served_age(client) == 30
    assert push_age(client, 32).status_code == 200
    assert served_age(client) == 32
