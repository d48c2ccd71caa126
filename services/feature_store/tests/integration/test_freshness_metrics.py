"""The online store's freshness on /metrics (on both backend pairs): a feature set's last online
write is its latest successful materialization job (from the database, whichever replica ran it)
or the latest push this replica wrote, and its TTL beside it; a feature set never written has no
timestamp yet."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from mlops_kit.testing.backends import wait_until
from prometheus_client.parser import text_string_to_metric_families

WRITTEN = "mlops_feature_store_online_last_write_timestamp_seconds"
TTL = "mlops_feature_store_feature_set_ttl_seconds"


def exported(client: TestClient, name: str, feature_set: str) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels.get("feature_set") == feature_set:
                return float(s.value)
    return None


def feature_set(client: TestClient, name: str, ttl: str | None) -> None:
    body = {"name": name, "entity": "shop", "features": [{"name": "orders", "type": "int"}]}
    assert client.post("/api/feature-sets", json=body | ({"ttl": ttl} if ttl else {})).status_code == 201


def test_materialization_and_push_are_the_last_online_writes(client: TestClient) -> None:
    assert client.post("/api/entities", json={"name": "shop", "join_keys": ["shop_id"]}).status_code == 201
    feature_set(client, "shop_daily", "2h")
    feature_set(client, "shop_live", None)
    feature_set(client, "shop_unused", "1h")
    started = time.time()
    rows = {"rows": [{"shop_id": "s1", "event_timestamp": started - 60, "orders": 3}]}
    assert client.post("/api/feature-sets/shop_daily/rows", json=rows).status_code == 201
    job = client.post("/api/feature-sets/shop_daily/materialize").json()
    wait_until(
        lambda: client.get(f"/api/materialization-jobs/{job['id']}").json()["status"] == "SUCCEEDED",
        timeout=30,
        what="the materialization job",
    )
    pushed = {"shop_id": "s1", "event_timestamp": started, "orders": 4}
    assert client.post("/api/feature-sets/shop_live/push", json=pushed).status_code == 200

    daily = wait_until(lambda: exported(client, WRITTEN, "shop_daily"), timeout=15, what="shop_daily written")
    live = wait_until(lambda: exported(client, WRITTEN, "shop_live"), timeout=15, what="shop_live written")
    assert started - 1 <= daily <= time.time() + 1
    assert started - 1 <= live <= time.time() + 1
    assert exported(client, TTL, "shop_daily") == 7200
    assert exported(client, TTL, "shop_live") is None  # no TTL: never expires
    assert exported(client, WRITTEN, "shop_unused") is None
    assert exported(client, TTL, "shop_unused") == 3600
