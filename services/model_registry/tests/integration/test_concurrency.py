"""20 clients registering versions of one model at once, against a real process on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlops_kit.testing import S3Server, ServiceProcess, fresh_postgres_database

CLIENTS = 20


@pytest.fixture(scope="module")
def registry_on_postgres(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("pg-process")
    with fresh_postgres_database("concurrency") as url:
        env = {
            "MLOPS_DATA_DIR": str(tmp),
            "MLOPS_DATABASE_URL": url,
            "MLOPS_ARTIFACT_STORE": "s3",
            "MLOPS_S3_ENDPOINT": s3_server.endpoint,
            "MLOPS_S3_ACCESS_KEY": s3_server.access_key,
            "MLOPS_S3_SECRET_KEY": s3_server.secret_key,
            "MLOPS_S3_BUCKET": "concurrency",
        }
        with ServiceProcess("model_registry", env=env, tmp=Path(tmp)) as service:
            yield service.url


def _race(url: str, work) -> list[httpx.Response]:
    barrier = threading.Barrier(CLIENTS)
    responses: list[httpx.Response] = [None] * CLIENTS  # type: ignore[list-item]

    def run(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            barrier.wait()
            responses[i] = work(client, i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return responses


def test_concurrent_registrations_get_distinct_gapless_versions(registry_on_postgres: str) -> None:
    def register(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(
            "/api/models",
            json={
                "name": "contended",
                "framework": "sklearn",
                "metrics": {"client": float(i)},
                "params": {"client": i},
                "tags": [f"client-{i}"],
            },
        )

    responses = _race(registry_on_postgres, register)
    assert [r.status_code for r in responses] == [201] * CLIENTS, [
        r.text for r in responses if r.status_code != 201
    ]
    versions = sorted(int(r.json()["version"]) for r in responses)
    assert versions == list(range(1, CLIENTS + 1))
    listed = httpx.get(f"{registry_on_postgres}/api/models/contended/versions?limit=100").json()
    assert listed["total"] == CLIENTS
    by_client = {v["params"]["client"]: v for v in listed["items"]}
    assert sorted(by_client) == list(range(CLIENTS))
    for i, version in by_client.items():
        assert version["metrics"] == {"client": float(i)}
        assert version["tags"] == [f"client-{i}"]


def test_concurrent_first_registrations_of_new_models_all_succeed(registry_on_postgres: str) -> None:
    def register(client: httpx.Client, i: int) -> httpx.Response:
        return client.post("/api/models", json={"name": f"fresh-{i % 4}", "framework": "onnx"})

    responses = _race(registry_on_postgres, register)
    assert [r.status_code for r in responses] == [201] * CLIENTS
    for n in range(4):
        model = httpx.get(f"{registry_on_postgres}/api/models/fresh-{n}").json()
        assert model["version_count"] == CLIENTS // 4


def test_concurrent_uploads_of_one_path_leave_exactly_one_artifact(registry_on_postgres: str) -> None:
    httpx.post(f"{registry_on_postgres}/api/models", json={"name": "racy", "version": "1.0.0"})

    def upload(client: httpx.Client, i: int) -> httpx.Response:
        return client.put("/api/models/racy/versions/1.0.0/artifacts/model.bin", content=bytes([i]) * 1000)

    codes = sorted(r.status_code for r in _race(registry_on_postgres, upload))
    assert codes.count(200) == 1 and set(codes) <= {200, 409}
    winner = httpx.get(f"{registry_on_postgres}/api/models/racy/versions/1.0.0/download")
    assert winner.status_code == 200 and len(set(winner.content)) == 1
