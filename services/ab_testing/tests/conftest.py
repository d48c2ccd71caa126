"""A/B testing fixtures: the real app on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ab_helpers import reset
from ab_testing.app import create_app
from ab_testing.settings import AbTestingSettings
from fastapi.testclient import TestClient

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def ab_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp(f"ab-{request.param}")
    values: dict[str, Any] = {"data_dir": tmp, "log_level": "WARNING", "exposure_flush_seconds": 0.05}
    if request.param == "sqlite":
        yield values
        return
    from mlops_kit.testing import fresh_postgres_database

    with fresh_postgres_database("abtesting") as url:
        yield values | {"database_url": url}


@pytest.fixture(scope="session")
def _ab(ab_backend: dict) -> Iterator[TestClient]:
    with TestClient(create_app(AbTestingSettings(**ab_backend)), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture()
def ab(_ab: TestClient) -> Iterator[TestClient]:
    yield _ab
    reset(_ab)
