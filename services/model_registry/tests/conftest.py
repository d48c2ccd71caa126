"""Registry test fixtures: the real app on SQLite + local files and on PostgreSQL + S3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlops_kit.storage import ArtifactStore
from mlops_kit.testing import empty_tables
from model_registry.app import create_app
from model_registry.settings import RegistrySettings
from model_registry.tables import Base

BACKENDS = ["sqlite-local", "postgres-s3"]


def _settings(tmp: Path, backend: str, db_url: str | None, s3: object | None) -> RegistrySettings:
    values: dict[str, object] = {"data_dir": tmp, "log_level": "WARNING"}
    if backend == "postgres-s3":
        values |= {
            "database_url": db_url,
            "artifact_store": "s3",
            "s3_endpoint": s3.endpoint,  # type: ignore[union-attr]
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,  # type: ignore[union-attr]
            "s3_bucket": f"registry-{os.getpid()}",
        }
    return RegistrySettings(**values)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, RegistrySettings]]:
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite-local":
        yield request.param, _settings(tmp, request.param, None, None)
        return
    from mlops_kit.testing import fresh_postgres_database

    s3 = request.getfixturevalue("s3_server")
    with fresh_postgres_database("registry") as url:
        yield request.param, _settings(tmp, request.param, url, s3)


@pytest.fixture(scope="session")
def _app_client(backend: tuple[str, RegistrySettings]) -> Iterator[TestClient]:
    _, settings = backend
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _clean(client: TestClient) -> None:
    empty_tables(client.app.state.db, Base.metadata)


@pytest.fixture
def client(_app_client: TestClient) -> Iterator[TestClient]:
    _clean(_app_client)
    yield _app_client


@pytest.fixture
def store(client: TestClient) -> ArtifactStore:
    return client.app.state.store


@pytest.fixture
def settings(client: TestClient) -> RegistrySettings:
    return client.app.state.settings
