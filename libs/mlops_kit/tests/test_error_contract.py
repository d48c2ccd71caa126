"""The kit's one error contract on a small app: malformed JSON, 405, 413/504 in a foreign API's shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from mlops_kit.app import ServiceSpec, create_service_app
from mlops_kit.audit import audit_table
from mlops_kit.errors import JsonResponse, parse_json
from mlops_kit.settings import ServiceSettings
from pydantic import BaseModel
from sqlalchemy import MetaData


class ContractSettings(ServiceSettings):
    service_name: ClassVar[str] = "contract_app"


class Thing(BaseModel):
    name: str


router = APIRouter(prefix="/api/things")


@router.post("")
def create_thing(thing: Thing) -> dict[str, str]:
    return {"name": thing.name}


@router.get("")
def list_things() -> list[str]:
    return []


@router.delete("")
def delete_things() -> None:
    return None


@router.post("/raw")
async def create_raw(request: Request) -> Any:
    return parse_json(await request.body())


other = APIRouter(prefix="/other/api")


@other.post("/echo")
def echo(thing: Thing) -> dict[str, str]:
    return {"name": thing.name}


@other.get("/slow")
async def slow() -> dict[str, str]:
    await anyio.sleep(30)
    return {}


def other_shape(request: Request, status: int, code: str, message: str, details: dict) -> Response | None:
    """A second API under /other speaks its own error shape (as MLflow's does in tracking)."""
    if not request.url.path.startswith("/other/"):
        return None
    return JsonResponse({"error_code": code, "message": message}, status_code=status)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = ContractSettings(
        data_dir=tmp_path, migrate_on_start=False, request_timeout_seconds=0.3, max_json_bytes=1000
    )
    spec = ServiceSpec(
        title="contract",
        version="0",
        routers=[router, other],
        audit_table=audit_table(MetaData()),
        migrations=tmp_path,
        uses_artifacts=False,
        error_renderer=other_shape,
    )
    with TestClient(create_service_app(settings, spec), raise_server_exceptions=False) as test_client:
        yield test_client


BAD = b'{\n  "name": "x",\n  oops\n}'


@pytest.mark.parametrize("path", ["/api/things", "/api/things/raw"])
def test_malformed_json_is_a_400_invalid_json_with_line_and_column(client: TestClient, path: str) -> None:
    response = client.post(path, content=BAD, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_JSON"
    assert {k: error["details"][k] for k in ("line", "column", "position")} == {
        "line": 3,
        "column": 3,
        "position": BAD.index(b"oops"),
    }
    assert "line 3 column 3" in error["message"]


@pytest.mark.parametrize("path", ["/api/things", "/api/things/raw"])
def test_a_body_that_is_not_utf8_is_invalid_json(client: TestClient, path: str) -> None:
    response = client.post(path, content=b'{"name": "\xff"}', headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_JSON"
    assert (error["details"]["line"], error["details"]["column"]) == (1, 11)


def test_an_empty_body_parsed_by_hand_is_invalid_json(client: TestClient) -> None:
    response = client.post("/api/things/raw", content=b"")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["line"] == 1


def test_malformed_json_under_a_foreign_api_keeps_its_shape(client: TestClient) -> None:
    response = client.post("/other/api/echo", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_JSON"


def test_405_lists_every_method_of_the_path_in_the_error_shape(client: TestClient) -> None:
    response = client.put("/api/things")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, POST"
    error = response.json()["error"]
    assert error["code"] == "METHOD_NOT_ALLOWED"
    assert error["details"]["allowed_methods"] == ["DELETE", "GET", "POST"]


def test_413_by_content_length_speaks_the_foreign_shape_under_its_prefix(client: TestClient) -> None:
    big = b'{"name": "' + b"x" * 2000 + b'"}'
    native = client.post("/api/things", content=big, headers={"content-type": "application/json"})
    assert native.status_code == 413
    assert native.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    foreign = client.post("/other/api/echo", content=big, headers={"content-type": "application/json"})
    assert foreign.status_code == 413
    assert foreign.json()["error_code"] == "PAYLOAD_TOO_LARGE"


def _chunked_body() -> Iterator[bytes]:
    yield b'{"name": "'
    yield from (b"x" * 500 for _ in range(10))
    yield b'"}'


def test_a_chunked_body_over_the_limit_is_a_413_not_a_parse_error(client: TestClient) -> None:
    for path in ("/api/things", "/api/things/raw"):
        response = client.post(path, content=_chunked_body(), headers={"content-type": "application/json"})
        assert response.status_code == 413, path
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    foreign = client.post(
        "/other/api/echo", content=_chunked_body(), headers={"content-type": "application/json"}
    )
    assert foreign.status_code == 413
    assert foreign.json()["error_code"] == "PAYLOAD_TOO_LARGE"


def test_504_speaks_the_foreign_shape_under_its_prefix(client: TestClient) -> None:
    response = client.get("/other/api/slow")
    assert response.status_code == 504
    assert response.json()["error_code"] == "REQUEST_TIMEOUT"
