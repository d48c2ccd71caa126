"""Feature store fixtures: the real app on two backend pairs, one suite for both.

- `sqlite`: offline store and online store in SQLite files (the embedded default);
- `postgres-redis`: offline store in PostgreSQL, online store in Redis (production).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from feature_store.app import create_app
from feature_store.settings import FeatureStoreSettings
from feature_store.tables import Base
from mlops_kit.testing import ServiceProcess, empty_tables

BACKENDS = ["sqlite", "postgres-redis"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp(request.param)
    values: dict[str, object] = {"data_dir": tmp, "log_level": "WARNING"}
    if request.param == "sqlite":
        yield values
        return
    from mlops_kit.testing import fresh_postgres_database

    redis_url = request.getfixturevalue("local_redis_url")
    prefix = f"fs-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    with fresh_postgres_database("features") as url:
        yield values | {
            "database_url": url,
            "online_store": "redis",
            "redis_url": redis_url,
            "redis_prefix": prefix,
        }
    import redis

    conn = redis.Redis.from_url(redis_url)
    for key in conn.scan_iter(f"{prefix}:*", count=1000):
        conn.delete(key)


@pytest.fixture(scope="session")
def _app_client(backend: dict) -> Iterator[TestClient]:
    with TestClient(create_app(FeatureStoreSettings(**backend)), raise_server_exceptions=False) as client:
        yield client


def reset(client: TestClient) -> None:
    """Empty every table, the online store and the schema cache."""
    app = client.app
    empty_tables(app.state.db, Base.metadata, restart_identity=True)
    online = getattr(app.state, "online", None)
    if online is not None and hasattr(online, "clear"):
        client.portal.call(online.clear)  # type: ignore[union-attr]
    views = getattr(app.state, "views", None)
    if views is not None:
        views.invalidate()


@pytest.fixture
def client(_app_client: TestClient) -> Iterator[TestClient]:
    reset(_app_client)
    yield _app_client


@pytest.fixture
def is_postgres(backend: dict) -> bool:
    return "database_url" in backend


def _process_env(values: dict[str, object]) -> dict[str, str]:
    env = {f"MLOPS_FEATURE_STORE_{k.upper()}": str(v) for k, v in values.items()}
    env["MLOPS_LOG_JSON"] = "false"
    return env


@pytest.fixture(scope="session")
def feature_store_url(backend: dict) -> Iterator[str]:
    """A real service process on the backend (for tests that need real HTTP and concurrency)."""
    tmp = Path(str(backend["data_dir"])) / "process"
    values = {**backend, "data_dir": tmp}
    if "redis_prefix" in values:
        values["redis_prefix"] = f"{values['redis_prefix']}-proc"
    with ServiceProcess("feature_store", env=_process_env(values), tmp=tmp) as service:
        yield service.url
