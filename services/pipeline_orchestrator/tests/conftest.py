"""Orchestrator fixtures: the real app (engine + local worker processes) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from orchestrator_helpers import reset
from pipeline_orchestrator.app import create_app
from pipeline_orchestrator.settings import OrchestratorSettings

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def orchestrator_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp(f"orchestrator-{request.param}")
    values: dict[str, Any] = {
        "data_dir": tmp,
        "log_level": "WARNING",
        "workers": 3,
        "scheduler_interval_seconds": 0.2,
        "lease_seconds": 5,
    }
    if request.param == "sqlite":
        yield values
        return
    from mlops_kit.testing import fresh_postgres_database

    with fresh_postgres_database("orchestrator") as url:
        yield values | {"database_url": url}


@pytest.fixture(scope="session")
def _orchestrator(orchestrator_backend: dict) -> Iterator[TestClient]:
    settings = OrchestratorSettings(**orchestrator_backend)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture()
def api(_orchestrator: TestClient) -> Iterator[TestClient]:
    yield _orchestrator
    reset(_orchestrator)
