"""The kit's OpenAPI: common errors documented on every route, 405 naming every method, refs that resolve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from mlops_kit.app import ServiceSpec, create_service_app
from mlops_kit.audit import audit_table
from mlops_kit.errors import error_responses
from mlops_kit.openapi import inline_schema, json_body
from mlops_kit.settings import ServiceSettings
from mlops_kit.testing.openapi import openapi_problems
from pydantic import BaseModel
from sqlalchemy import MetaData


class DemoSettings(ServiceSettings):
    service_name: ClassVar[str] = "demo_openapi"


class Inner(BaseModel):
    x: int


class Outer(BaseModel):
    inner: Inner
    many: list[Inner] = []


class OtherError(BaseModel):
    error_code: str
    message: str


router = APIRouter(prefix="/api/things")
other = APIRouter(prefix="/api/other", responses=error_responses(OtherError))


@router.post("/search")  # declared first: it, not `/{name}`, serves /search
def search_things() -> Inner:
    return Inner(x=0)


@router.get("/{name}")
def get_thing(name: str) -> Inner:
    return Inner(x=len(name))


@router.delete("/{name}", status_code=204)
def delete_thing(name: str) -> None:
    return None


@router.post("", openapi_extra=json_body(Outer))
def create_thing() -> Inner:
    return Inner(x=1)


@other.get("")
def get_other() -> Inner:
    return Inner(x=2)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    spec = ServiceSpec(
        title="demo",
        version="0",
        routers=[router, other],
        audit_table=audit_table(MetaData()),
        migrations=tmp_path,
        uses_artifacts=False,
    )
    app = create_service_app(DemoSettings(data_dir=tmp_path, migrate_on_start=False), spec)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_405_allow_names_every_method_served_at_the_path(client: TestClient) -> None:
    response = client.put("/api/things/a")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "DELETE, GET"


def test_every_route_documents_the_common_errors_in_the_error_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert openapi_problems(spec, system_paths=("/health", "/ready")) == []
    conflict = spec["paths"]["/api/things/{name}"]["get"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


def test_a_routers_own_error_shape_wins(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    not_found = spec["paths"]["/api/other"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OtherError"}


def test_inline_schema_leaves_no_local_refs() -> None:
    schema = inline_schema(Outer)
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert schema["properties"]["inner"]["properties"]["x"]["type"] == "integer"
    assert schema["properties"]["many"]["items"]["required"] == ["x"]


def test_problems_name_dangling_refs_and_routes_without_a_success_schema() -> None:
    spec = {
        "paths": {"/a": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}}},
        "components": {"schemas": {"B": {"$ref": "#/components/schemas/Missing"}}},
    }
    assert openapi_problems(spec, system_paths=("/a",)) == [
        "GET /a: no 2xx response with a schema",
        "unresolved $ref #/components/schemas/Missing",
    ]


def test_405_allow_ignores_routes_whose_parameter_matches_a_fixed_segment(client: TestClient) -> None:
    response = client.put("/api/things/search")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
