"""Helpers of the A/B testing tests (a uniquely named module: every tests dir is on sys.path)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from ab_testing.folding import STAT_FIELDS, catch_up
from ab_testing.tables import Base
from fastapi.testclient import TestClient
from mlops_client.ab_routing import evaluate
from mlops_kit.testing import empty_tables
from sqlalchemy import text


def reset(client: TestClient) -> None:
    client.app.state.exposures.flush()  # type: ignore[attr-defined]
    empty_tables(client.app.state.db, Base.metadata, truncate=False)  # type: ignore[attr-defined]
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


def stats(client: TestClient, key: str, *, fold: bool = True) -> dict[tuple[str, str], dict[str, float]]:
    """The experiment's metric_stats rows, after folding every accepted event (unless not `fold`)."""
    db = client.app.state.db  # type: ignore[attr-defined]
    if fold:
        catch_up(db)
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


def sample_events(rng: np.random.Generator, n_users: int = 120) -> list[dict]:
    """Events of `n_users` users for the helpers' experiment: conversions, revenue with CUPED
    covariates, and the views and clicks of the ratio metric ctr."""
    events = []
    k = 0
    for u in range(n_users):
        user = f"user{u}"
        for _ in range(int(rng.integers(0, 3))):
            events.append({"metric": "conversion", "value": int(rng.integers(0, 2))})
        for _ in range(int(rng.integers(0, 4))):
            events.append({"metric": "revenue", "value": float(np.round(rng.exponential(10), 2))})
        if rng.random() < 0.7:
            events.append({"metric": "revenue", "covariate": float(np.round(rng.normal(5, 2), 2))})
        for _ in range(int(rng.integers(0, 3))):
            events.append({"metric": "views", "value": 1})
            if rng.random() < 0.4:
                events.append({"metric": "clicks", "value": 1})
        for ev in events[k:]:
            ev.update({"experiment": "model_v2_test", "user_id": user, "event_id": f"ev{k}"})
            k += 1
    return events


def oracle_stats(definition: dict, events: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """The sufficient statistics of `events`, computed directly with numpy."""
    per_user: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    covariate: dict[str, float] = {}
    for ev in events:
        if "value" in ev:
            per_user[(ev["user_id"], ev["metric"])]["v"].append(ev["value"])
        if "covariate" in ev:
            covariate[ev["user_id"]] = ev["covariate"]
    variant = {u: evaluate(definition, u).variant for u in {e["user_id"] for e in events}}
    out: dict[tuple[str, str], dict[str, float]] = {}
    for v in ("control", "treatment"):
        users = [u for u in variant if variant[u] == v]
        # binary, zero-filled over every user who sent an event (they are exposed)
        y = np.array([1.0 if sum(per_user[(u, "conversion")]["v"]) > 0 else 0.0 for u in users])
        out[(v, "conversion")] = {"sum": y.sum(), "sum_sq": (y**2).sum()}
        # continuous: users with revenue values; covariate cross-products over those with both
        rev_users = [u for u in users if per_user[(u, "revenue")]["v"]]
        r = np.array([sum(per_user[(u, "revenue")]["v"]) for u in rev_users])
        x_users = [u for u in rev_users if u in covariate]
        x = np.array([covariate[u] for u in x_users])
        xy = np.array([covariate[u] * sum(per_user[(u, "revenue")]["v"]) for u in x_users])
        out[(v, "revenue")] = {
            "n": len(rev_users),
            "sum": r.sum(),
            "sum_sq": (r**2).sum(),
            "n_cov": len(x_users),
            "sum_x": x.sum(),
            "sum_x_sq": (x**2).sum(),
            "sum_xy": xy.sum(),
        }
        ratio_users = [u for u in users if per_user[(u, "views")]["v"] or per_user[(u, "clicks")]["v"]]
        a = np.array([sum(per_user[(u, "clicks")]["v"]) for u in ratio_users])
        b = np.array([sum(per_user[(u, "views")]["v"]) for u in ratio_users])
        out[(v, "ctr")] = {
            "n": len(ratio_users),
            "sum": a.sum(),
            "sum_sq": (a**2).sum(),
            "sum_den": b.sum(),
            "sum_den_sq": (b**2).sum(),
            "sum_num_den": (a * b).sum(),
        }
    return out
