"""16 writers logging to one run at once lose nothing (a real service process, SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx


def test_sixteen_concurrent_writers_lose_no_metric(tracking_url: str) -> None:
    with httpx.Client(base_url=tracking_url, timeout=60) as http:
        exp = http.post("/api/experiments", json={"name": f"concurrency-{id(http)}"}).json()
        created = http.post(f"/api/experiments/{exp['id']}/runs", json={}).json()
    path = f"/api/experiments/{exp['id']}/runs/{created['id']}/metrics"

    def writer(worker: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=tracking_url, timeout=60) as http:
            for step in range(25):
                points = [
                    {"key": "shared", "value": worker, "step": step},
                    {"key": f"w{worker}", "value": step},
                ]
                statuses.append(http.post(path, json={"metrics": points}).status_code)
        return statuses

    with ThreadPoolExecutor(16) as pool:
        statuses = [s for result in pool.map(writer, range(16)) for s in result]
    assert set(statuses) == {200}
    with httpx.Client(base_url=tracking_url, timeout=60) as http:
        base = f"/api/experiments/{exp['id']}/runs/{created['id']}"
        shared = http.get(f"{base}/metrics/shared/history", params={"limit": 1000}).json()["items"]
        latest = http.get(f"{base}/metrics").json()
    assert len(shared) == 16 * 25
    assert sorted((p["step"], p["value"]) for p in shared) == sorted(
        (s, w) for w in range(16) for s in range(25)
    )
    assert all(latest[f"w{w}"]["value"] == 24 for w in range(16))
    assert latest["shared"]["step"] == 24


def test_mixed_native_and_mlflow_writers_never_hit_a_locked_database(tracking_url: str) -> None:
    with httpx.Client(base_url=tracking_url, timeout=60) as http:
        exp = http.post("/api/experiments", json={"name": f"mixed-{id(http)}"}).json()
        run_id = http.post(f"/api/experiments/{exp['id']}/runs", json={}).json()["id"]

    def native(worker: int) -> list[int]:
        with httpx.Client(base_url=tracking_url, timeout=60) as http:
            return [
                http.post(
                    f"/api/experiments/{exp['id']}/runs", json={"parameters": {"w": worker}}
                ).status_code
                for _ in range(10)
            ]

    def mlflow_api(worker: int) -> list[int]:
        with httpx.Client(base_url=tracking_url, timeout=60) as http:
            body = {"run_id": run_id, "key": f"k{worker}", "value": 1.0, "timestamp": 0}
            return [
                http.post("/api/2.0/mlflow/runs/log-metric", json={**body, "step": step}).status_code
                for step in range(10)
            ]

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(native if w % 2 else mlflow_api, w) for w in range(16)]
        statuses = [s for f in futures for s in f.result()]
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    with httpx.Client(base_url=tracking_url, timeout=60) as http:
        runs = http.get(f"/api/experiments/{exp['id']}/runs", params={"limit": 1000}).json()["items"]
        latest = http.get(f"/api/experiments/{exp['id']}/runs/{run_id}/metrics").json()
    assert len(runs) == 1 + 8 * 10
    assert {k: v["step"] for k, v in latest.items()} == {f"k{w}": 9 for w in range(0, 16, 2)}
