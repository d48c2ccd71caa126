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
