"""Migration 0003: predictions logged before it (features as JSON per row) are moved into
segments, and drift over them answers as the core does on the same values (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from mlops_kit.db import normalize_url
from model_registry.app import MIGRATIONS, create_app
from model_registry.monitoring.profile import build_profile
from model_registry.monitoring.report import drift
from model_registry.settings import RegistrySettings
from registry_helpers import register


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'registry.db'}"
        return
    from mlops_kit.testing import fresh_postgres_database

    with fresh_postgres_database("migration") as url:
        yield normalize_url(url)


def _upgrade(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, revision)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rows_logged_before_0003_are_moved_into_segments(backend: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    f1, f2 = rng.normal(0.5, 1.0, 300), rng.choice(["a", "b"], 300)
    with _database(backend, tmp_path) as url:
        _upgrade(url, "0002")
        old = RegistrySettings(
            data_dir=tmp_path, database_url=url, log_level="WARNING", migrate_on_start=False
        )
        with TestClient(create_app(old)) as client:  # the registry as it was at 0002
            assert register(client, "churn", version="1")["name"] == "churn"
        engine = sa.create_engine(url)
        now = datetime(2026, 1, 1, 1, tzinfo=UTC)
        with engine.begin() as conn:
            model_id = conn.execute(sa.text("SELECT id FROM registered_models")).scalar_one()
            table = sa.table(
                "monitoring_predictions",
                *(sa.column(c) for c in ("model_id", "request_id", "version")),
                sa.column("timestamp", sa.DateTime(timezone=True)),
                sa.column("logged_at", sa.DateTime(timezone=True)),
                sa.column("features", sa.JSON()),
                sa.column("prediction", sa.JSON()),
                sa.column("probability", sa.JSON()),
            )
            conn.execute(
                table.insert(),
                [
                    {
                        "model_id": model_id,
                        "request_id": f"r{i}",
                        "version": "1",
                        "timestamp": now.replace(minute=i % 60),
                        "logged_at": now,
                        "features": {"f1": float(f1[i]), "f2": str(f2[i])},
                        "prediction": i % 2,
                        "probability": 0.5,
                    }
                    for i in range(300)
                ],
            )
        engine.dispose()
        settings = RegistrySettings(data_dir=tmp_path, database_url=url, log_level="WARNING")
        with TestClient(create_app(settings)) as client:
            reference = {"f1": rng.normal(0, 1, 500).tolist(), "f2": rng.choice(["a", "b"], 500).tolist()}
            rows = [{"f1": a, "f2": b} for a, b in zip(reference["f1"], reference["f2"], strict=True)]
            assert (
                client.put("/api/models/churn/versions/1/monitoring/reference", json=rows).status_code == 200
            )
            answer = client.get("/api/models/churn/monitoring/drift", params={"version": "1"}).json()
            assert answer["window"]["count"] == 300
            expected = drift(build_profile(reference), {"f1": f1.tolist(), "f2": f2.tolist()})
            assert answer["features"] == expected["features"]
            again = client.post(
                "/api/models/churn/predictions",
                json=[{"request_id": "r7", "version": "1", "features": {"f1": 1.0}}],
            )
            assert again.json() == {"accepted": 0, "duplicates": 1}
