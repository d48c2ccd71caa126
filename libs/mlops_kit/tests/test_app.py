"""The app factory's cross-cutting behaviour, on a small app built with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import ClassVar

import anyio
import pytest
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from mlops_kit.app import ServiceSpec, create_service_app
from mlops_kit.audit import audit_table
from mlops_kit.errors import Conflict
from mlops_kit.settings import ServiceSettings
from sqlalchemy import MetaData


class DemoSettings(ServiceSettings):
    service_name: ClassVar[str] = "demo_app"


router = APIRouter(prefix="/api/demo")


@router.get("/slow")
async def slow() -> dict[str, str]:
    await anyio.sleep(30)
    return {"status": "finished"}


@router.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            await anyio.sleep(0.1)
            yield f"chunk{i};".encode()

    return StreamingResponse(chunks())


@router.get("/conflict")
def conflict() -> None:
    raise Conflict("already there", {"id": 7}, code="DEMO_EXISTS")


@router.get("/boom")
def boom() -> None:
    raise RuntimeError("bug")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = DemoSettings(data_dir=tmp_path, migrate_on_start=False, request_timeout_seconds=0.3)
    spec = ServiceSpec(
        title="demo",
        version="0",
        routers=[router],
        audit_table=audit_table(MetaData()),
        migrations=tmp_path,
        uses_artifacts=False,
    )
    with TestClient(create_service_app(settings, spec), raise_server_exceptions=False) as test_client:
        yield test_client


def test_slow_handler_gets_504_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/demo/slow")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "REQUEST_TIMEOUT"


def test_streaming_longer_than_the_timeout_is_not_cut(client: TestClient) -> None:
    response = client.get("/api/demo/stream")
    assert response.status_code == 200
    assert response.text == "chunk0;chunk1;chunk2;chunk3;chunk4;"


def test_domain_errors_render_their_code_and_status(client: TestClient) -> None:
    response = client.get("/api/demo/conflict")
    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "DEMO_EXISTS", "message": "already there", "details": {"id": 7}}
    }


def test_bugs_are_500s_in_the_error_shape_without_internals(client: TestClient) -> None:
    response = client.get("/api/demo/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "bug" not in response.text


def test_ready_reports_each_backend(client: TestClient) -> None:
    assert client.get("/ready").json() == {"status": "ready", "checks": {"database": "ok"}}
