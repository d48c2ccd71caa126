"""pytest plugin (entry point `mlops_kit`): session fixtures for real backends."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mlops_kit.testing.backends import S3Server, redis_url, start_s3_server
from mlops_kit.testing.servers import PrivateServer, start_postgres_server, start_redis_server


def pytest_configure(config: pytest.Config) -> None:
    """Hermetic settings: no developer .env, no MLOPS_* from the shell (MLOPS_TEST_* stay)."""
    for key in [k for k in os.environ if k.startswith("MLOPS_") and not k.startswith("MLOPS_TEST_")]:
        del os.environ[key]
    os.environ["MLOPS_ENV_FILE"] = ""


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server for this test session (one per xdist worker)."""
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_redis_url() -> str:
    return redis_url()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    """A Redis of this test session alone, which a test may freeze (`with private_redis.frozen():`)."""
    server = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivateServer]:
    """A PostgreSQL cluster of this test session alone (initdb in a temp dir), which a test may
    freeze (`with private_postgres.frozen():`). Never freeze the shared development server."""
    server = start_postgres_server()
    yield server
    server.stop()
