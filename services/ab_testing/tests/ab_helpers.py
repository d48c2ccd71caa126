"""Helpers of the A/B testing tests (a uniquely named module: every tests dir is on sys.path)."""

from __future__ import annotations

from typing import Any

from ab_testing.events import STAT_FIELDS
from ab_testing.tables import Base
from fastapi.testclient import TestClient
from sqlalchemy import text


def reset(client: TestClient) -> None:
    client.app.state.exposures.flush()  # type: ignore[attr-defined]
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.writer.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))
    client.app.state.definitions._items.clear()  # type: ignore[attr-defined]


def experiment(key: str = "model_v2_test", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": key,
        "variants": [
            {"name": "control", "weight": 0.5, "model_version": "v1.0"},
            {"name": "treatment", "weight": 0.5, "model_version": "v2.0"},
        ],
        "metrics": [
            {"name": "conversion", "type": "binary"},
            {"name": "revenue", "type": "continuous"},
            {"name": "ctr", "type": "ratio", "numerator": "clicks", "denominator": "views"},
        ],
        "primary_metric": "conversion",
    }
    return body | extra


def create(
    client: TestClient, key: str = "model_v2_test", *, start: bool = True, **extra: Any
) -> dict[str, Any]:
    response = client.post("/api/experiments", json=experiment(key, **extra))
    assert response.status_code == 201, response.text
    if start:
        assert client.post(f"/api/experiments/{key}/start").status_code == 200
    return response.json()


def stats(client: TestClient, key: str) -> dict[tuple[str, str], dict[str, float]]:
    db = client.app.state.db  # type: ignore[attr-defined]
    columns = ", ".join(f"s.{name}" for name in STAT_FIELDS)
    with db.reader.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT s.variant, s.metric, {columns} FROM metric_stats s JOIN experiments e "
                "ON e.id = s.experiment_id WHERE e.key = :key"
            ),
            {"key": key},
        ).all()
    return {(r[0], r[1]): dict(zip(STAT_FIELDS, r[2:], strict=True)) for r in rows}
