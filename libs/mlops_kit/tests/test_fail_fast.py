"""Sick backends answer fast: a frozen (SIGSTOP) or slow PostgreSQL or S3 server gives a 503 in the
error shape within seconds, `/ready` says which backend is down, and service resumes with it.

The servers are this session's own (never the shared development PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from mlops_kit.app import ServiceSpec, create_service_app
from mlops_kit.audit import audit_table
from mlops_kit.db import Database, DbTimeouts
from mlops_kit.deps import SessionDep
from mlops_kit.settings import ServiceSettings
from mlops_kit.testing import PrivateServer, S3Server, frozen_process, wait_until
from sqlalchemy import MetaData, text

# a request against a frozen backend answers within this (connect 2 s + a 1 s statement bound)
REQUEST_BOUND = 4.5
READY_BOUND = 2.0


class SickSettings(ServiceSettings):
    service_name: ClassVar[str] = "sick_backends"


router = APIRouter(prefix="/api/demo")


@router.get("/query")
def query(session: SessionDep) -> dict[str, int]:
    return {"one": int(session.execute(text("SELECT 1")).scalar_one())}


@router.get("/sleep")
def sleep(session: SessionDep) -> dict[str, str]:
    session.execute(text("SELECT pg_sleep(5)"))
    return {"status": "slept"}


@router.get("/artifact")
def artifact(request: Request) -> dict[str, Any]:
    return {"size": request.app.state.store.size("some/key")}


def _client(settings: SickSettings) -> TestClient:
    spec = ServiceSpec(
        title="sick",
        version="0",
        routers=[router],
        audit_table=audit_table(MetaData()),
        migrations=Path("."),
        uses_artifacts=settings.artifact_store == "s3",
    )
    return TestClient(create_service_app(settings, spec), raise_server_exceptions=False)


@pytest.fixture
def on_postgres(tmp_path: Path, private_postgres: PrivateServer) -> Iterator[TestClient]:
    settings = SickSettings(
        data_dir=tmp_path,
        migrate_on_start=False,
        database_url=private_postgres.url,
        db_connect_timeout_seconds=2,
        db_statement_timeout_seconds=0.5,
        log_level="WARNING",
    )
    with _client(settings) as client:
        yield client


@pytest.fixture
def on_s3(tmp_path: Path, s3_server: S3Server) -> Iterator[TestClient]:
    settings = SickSettings(
        data_dir=tmp_path,
        migrate_on_start=False,
        artifact_store="s3",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_connect_timeout_seconds=1,
        s3_read_timeout_seconds=1,
        s3_max_retries=0,
        log_level="WARNING",
    )
    with _client(settings) as client:
        yield client


def timed(client: TestClient, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["details"]["retryable"] is True
    assert response.headers["retry-after"] == "1"


def assert_recovers(client: TestClient, path: str) -> None:
    wait_until(lambda: client.get(path).status_code == 200, timeout=15, what=f"{path} after SIGCONT")
    assert client.get("/ready").status_code == 200


def test_a_frozen_postgres_gives_a_fast_503_and_ready_reports_it(
    on_postgres: TestClient, private_postgres: PrivateServer
) -> None:
    assert on_postgres.get("/api/demo/query").json() == {"one": 1}  # the pool holds a connection
    with private_postgres.frozen():
        response, took = timed(on_postgres, "/api/demo/query")
        assert_unavailable(response, "DATABASE_UNAVAILABLE")
        assert took < REQUEST_BOUND
        ready, took = timed(on_postgres, "/ready")
        assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
        assert ready.json()["checks"]["database"].startswith("error:")
        assert took < READY_BOUND
        again, took = timed(on_postgres, "/api/demo/query")
        assert_unavailable(again, "DATABASE_UNAVAILABLE")
        assert took < REQUEST_BOUND
    assert_recovers(on_postgres, "/api/demo/query")


def test_a_statement_over_the_timeout_is_a_503_database_timeout(on_postgres: TestClient) -> None:
    response, took = timed(on_postgres, "/api/demo/sleep")
    assert_unavailable(response, "DATABASE_TIMEOUT")
    assert took < 3
    assert on_postgres.get("/api/demo/query").json() == {"one": 1}


def test_a_frozen_s3_server_gives_a_fast_503_and_ready_reports_it(
    on_s3: TestClient, s3_server: S3Server
) -> None:
    assert on_s3.get("/api/demo/artifact").json() == {"size": None}
    with frozen_process(s3_server.process.pid):
        response, took = timed(on_s3, "/api/demo/artifact")
        assert_unavailable(response, "ARTIFACT_STORE_UNAVAILABLE")
        assert took < REQUEST_BOUND
        ready, took = timed(on_s3, "/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["artifact_store"].startswith("error:")
        assert ready.json()["checks"]["database"] == "ok"
        assert took < READY_BOUND
    assert_recovers(on_s3, "/api/demo/artifact")


def test_the_statement_timeout_keeps_the_urls_own_options(private_postgres: PrivateServer) -> None:
    url = f"{private_postgres.url}?options=-c%20application_name%3Dfrom_url"
    db = Database.connect(url, pool_size=1, timeouts=DbTimeouts(statement=0.75))
    try:
        with db.reader.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "750ms"
            assert conn.execute(text("SHOW application_name")).scalar_one() == "from_url"

        async def read_async() -> tuple[str, str]:
            assert db.async_reader is not None
            async with db.async_reader.connect() as conn:
                timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
                name = (await conn.execute(text("SHOW application_name"))).scalar_one()
                return timeout, name

        assert anyio.run(read_async) == ("750ms", "from_url")
    finally:
        anyio.run(db.adispose)
