"""Serving from a real service process (uvicorn, uvloop, its own store connections) under
concurrent clients: every answer is the entity's own, newest values."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

ENTITIES = 300


def test_concurrent_clients_get_each_entity_s_own_values(feature_store_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    entity, name = f"customer_{tag}", f"customer_stats_{tag}"
    features = [{"name": f"f{k}", "type": "float" if k < 3 else "int"} for k in range(6)]
    with httpx.Client(base_url=feature_store_url, timeout=30) as client:
        made = client.post("/api/entities", json={"name": entity, "join_keys": ["cid"], "value_type": "int"})
        assert made.status_code == 201, made.text
        made = client.post("/api/feature-sets", json={"name": name, "entity": entity, "features": features})
        assert made.status_code == 201, made.text
        rows = [
            {"cid": i, "event_timestamp": 1_700_000_000, **{f"f{k}": i * 10 + k for k in range(6)}}
            for i in range(ENTITIES)
        ]
        pushed = client.post(f"/api/feature-sets/{name}/push", json={"rows": rows})
        assert pushed.status_code == 200 and pushed.json()["online_updated"] == ENTITIES, pushed.text
        newer = {"cid": 7, "event_timestamp": 1_700_000_001, **{f"f{k}": -k for k in range(6)}}
        assert client.post(f"/api/feature-sets/{name}/push", json=newer).status_code == 200

    def expected(i: int) -> dict[str, float | int]:
        if i == 7:
            return {f"f{k}": -k for k in range(6)}
        return {f"f{k}": i * 10 + k for k in range(6)}

    def worker(start: int) -> int:
        checked = 0
        with httpx.Client(base_url=feature_store_url, timeout=30) as client:
            for n in range(40):
                ids = [(start * 37 + n * 11 + j) % (ENTITIES + 20) for j in range(1 + n % 9)]
                if n % 2:
                    response = client.post(
                        "/api/features/online", json={"entities": ids, "features": [f"{name}:*"]}
                    )
                else:
                    query = {"entities": ",".join(map(str, ids)), "features": f"{name}:*"}
                    response = client.get("/api/features/serve", params=query)
                assert response.status_code == 200, response.text
                for i, result in zip(ids, response.json()["results"], strict=True):
                    if i < ENTITIES:
                        assert result["values"] == expected(i)
                    else:
                        assert set(result["statuses"].values()) == {"MISSING"}
                    checked += 1
        return checked

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(worker, range(8))) > 8 * 40
