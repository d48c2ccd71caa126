"""Tracking test fixtures: the real app on SQLite + local files and on PostgreSQL + S3, and real
service processes for the unmodified MLflow client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from experiment_tracking.app import create_app
from experiment_tracking.settings import TrackingSettings
from experiment_tracking.tables import Base, Experiment
from fastapi.testclient import TestClient
from mlops_kit.testing import ServiceProcess, empty_tables
from sqlalchemy import insert

BACKENDS = ["sqlite-local", "postgres-s3"]


def backend_env(backend: str, tmp: Path, db_url: str | None, s3: object | None) -> dict[str, object]:
    values: dict[str, object] = {"data_dir": tmp, "log_level": "WARNING"}
    if backend == "postgres-s3":
        values |= {
            "database_url": db_url,
            "artifact_store": "s3",
            "s3_endpoint": s3.endpoint,  # type: ignore[union-attr]
            "s3_access_key": s3.access_key,  # type: ignore[union-attr]
            "s3_secret_key": s3.secret_key,  # type: ignore[union-attr]
            "s3_bucket": f"tracking-{os.getpid()}-{tmp.name[-6:].lower().replace('_', '-')}",
        }
    return values


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite-local":
        yield backend_env(request.param, tmp, None, None)
        return
    from mlops_kit.testing import fresh_postgres_database

    s3 = request.getfixturevalue("s3_server")
    with fresh_postgres_database("tracking") as url:
        yield backend_env(request.param, tmp, url, s3)


@pytest.fixture(scope="session")
def _app_client(backend: dict) -> Iterator[TestClient]:
    with TestClient(create_app(TrackingSettings(**backend)), raise_server_exceptions=False) as client:
        yield client


def reset(client: TestClient) -> None:
    """Empty every table, then put back the default experiment "0" the migration creates."""
    db = client.app.state.db
    empty_tables(db, Base.metadata)
    with db.writer.begin() as conn:
        conn.execute(
            insert(Experiment.__table__).values(
                id=0,
                name="Default",
                artifact_location="mlflow-artifacts:/0",
                lifecycle_stage="active",
                creation_time=0,
                last_update_time=0,
            )
        )


@pytest.fixture
def client(_app_client: TestClient) -> Iterator[TestClient]:
    reset(_app_client)
    yield _app_client


def _process_env(values: dict[str, object]) -> dict[str, str]:
    env = {f"MLOPS_{k.upper()}": str(v) for k, v in values.items()}
    env["MLOPS_LOG_JSON"] = "false"
    return env


@pytest.fixture(scope="session")
def tracking_url(backend: dict) -> Iterator[str]:
    """A real service process on the backend (what the MLflow client talks to)."""
    tmp = Path(str(backend["data_dir"])) / "process"
    values = {**backend, "data_dir": tmp}
    with ServiceProcess("experiment_tracking", env=_process_env(values), tmp=tmp) as service:
        yield service.url
