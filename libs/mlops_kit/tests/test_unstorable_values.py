"""The safety net under the bounds: a value the database itself refuses as data (PostgreSQL's
DataError: out of range, malformed, too long) is the client's 422, not a "retryable" 503 that
retrying clients would loop on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from mlops_kit.app import ServiceSpec, create_service_app
from mlops_kit.audit import audit_table
from mlops_kit.deps import SessionDep
from mlops_kit.settings import ServiceSettings
from mlops_kit.testing import fresh_postgres_database
from sqlalchemy import MetaData, text


class UnstorableSettings(ServiceSettings):
    service_name: ClassVar[str] = "unstorable_app"


router = APIRouter(prefix="/api/cast")


@router.get("/{value}")
def cast(value: str, session: SessionDep) -> dict[str, int]:
    return {"value": session.scalar(text("SELECT CAST(:v AS integer)"), {"v": value})}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("unstorable")
    with fresh_postgres_database("unstorable") as url:
        settings = UnstorableSettings(data_dir=tmp, database_url=url, migrate_on_start=False)
        spec = ServiceSpec(
            title="unstorable",
            version="0",
            routers=[router],
            audit_table=audit_table(MetaData()),
            migrations=tmp,
            uses_artifacts=False,
        )
        with TestClient(create_service_app(settings, spec), raise_server_exceptions=False) as test_client:
            yield test_client


def test_a_value_postgresql_refuses_as_data_is_a_422_not_retryable(client: TestClient) -> None:
    assert client.get("/api/cast/41").json() == {"value": 41}
    for value in ("99999999999", "forty-one"):
        response = client.get(f"/api/cast/{value}")
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "UNSTORABLE_VALUE"
        assert not error["details"].get("retryable")
        assert "Retry-After" not in response.headers
