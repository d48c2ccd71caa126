"""What one request may store is bounded (and OpenAPI says so), and every write, exposures
included, leaves an audit entry."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from ab_helpers import create, experiment
from ab_testing.app import create_app
from ab_testing.settings import AbTestingSettings
from ab_testing.tables import Exposure, Override
from fastapi.testclient import TestClient
from sqlalchemy import func, select

HUGE = "u" * (4 * 1024 * 1024)
KEY = "model_v2_test"


def _count(client: TestClient, table: Any) -> int:
    client.app.state.exposures.flush()  # type: ignore[attr-defined]
    with client.app.state.db.session(write=False) as session:  # type: ignore[attr-defined]
        return session.scalar(select(func.count()).select_from(table)) or 0


def _audit(client: TestClient, route: str) -> list[dict[str, Any]]:
    client.app.state.exposures.flush()  # type: ignore[attr-defined]
    items = client.get("/api/audit-log", params={"limit": 1000}).json()["items"]
    return [i for i in items if i["route"] == route]


def _refused(response: Any) -> None:
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    assert error["code"] in ("VALIDATION_ERROR", "BATCH_TOO_LARGE") and error["message"]


def test_route_batch_refuses_a_huge_user_id_and_stores_nothing(ab: TestClient) -> None:
    create(ab)
    response = ab.post("/api/route/batch", json={"experiment": KEY, "user_ids": ["ok", HUGE]})
    _refused(response)
    assert response.json()["error"]["details"]["errors"][0]["loc"][:3] == ["body", "user_ids", 1]
    _refused(ab.post("/api/route/batch", json={"experiment": KEY, "user_ids": ["u"] * 10_001}))
    _refused(ab.post("/api/route/batch", json={"experiment": "e" * 101, "user_ids": ["u"]}))
    assert _count(ab, Exposure) == 0
    assert _audit(ab, "/api/route/batch") == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/exposures", {"exposures": [{"experiment": KEY, "user_id": HUGE}]}),
        ("/api/exposures", {"exposures": [{"experiment": KEY, "user_id": "u"}] * 100_001}),
        ("/api/events", {"events": [{"experiment": KEY, "user_id": HUGE, "metric": "conversion"}]}),
        ("/api/events", {"events": [{"experiment": KEY, "user_id": "u", "metric": "m" * 101}]}),
    ],
)
def test_exposure_and_event_writes_are_bounded(ab: TestClient, path: str, body: dict) -> None:
    create(ab)
    _refused(ab.post(path, json=body))
    assert _count(ab, Exposure) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"description": "d" * 10_001},
        {"hypothesis": "h" * 10_001},
        {"name": "n" * 201},
        {"model_name": "m" * 201},
        {"primary_metric": "x" * 101},
        {"guardrail_metrics": ["conversion"] * 101},
        {"seed": "s" * 201},
        {"variants": [{"name": f"v{i}", "weight": 0.01} for i in range(101)]},
        {"variants": [{"name": "a", "weight": 0.5, "description": "d" * 1001}, {"name": "b", "weight": 0.5}]},
        {"metrics": [{"name": f"m{i}"} for i in range(101)], "primary_metric": None},
        {"mode": "canary", "canary": {"model_name": "m" * 201}},
        {"mode": "canary", "canary": {"stages": [1.0] * 101}},
    ],
)
def test_experiment_strings_and_lists_are_bounded(ab: TestClient, change: dict) -> None:
    _refused(ab.post("/api/experiments", json=experiment(KEY, **change)))
    assert ab.get("/api/experiments").json()["total"] == 0


def test_experiment_updates_and_overrides_are_bounded(ab: TestClient) -> None:
    create(ab)
    _refused(ab.patch(f"/api/experiments/{KEY}", json={"description": "d" * 10_001}))
    _refused(ab.put(f"/api/experiments/{KEY}/overrides/{'u' * 201}", json={"variant": "control"}))
    _refused(ab.get(f"/api/experiments/{'e' * 101}"))
    assert ab.get(f"/api/experiments/{KEY}").json()["description"] == ""
    assert _count(ab, Override) == 0


def test_openapi_documents_the_bounds(ab: TestClient) -> None:
    spec = ab.app.openapi()  # type: ignore[attr-defined]
    schemas = spec["components"]["schemas"]
    batch = schemas["RouteBatch"]["properties"]
    assert batch["user_ids"]["maxItems"] == 10_000 and batch["user_ids"]["items"]["maxLength"] == 200
    assert batch["experiment"]["maxLength"] == 100
    assert schemas["ExposureBatch"]["properties"]["exposures"]["maxItems"] == 100_000
    assert schemas["ExposureIn"]["properties"]["user_id"]["maxLength"] == 200
    assert schemas["ExperimentCreate"]["properties"]["description"]["maxLength"] == 10_000
    override = spec["paths"]["/api/experiments/{experiment}/overrides/{user_id}"]["put"]["parameters"]
    assert {p["name"]: p["schema"]["maxLength"] for p in override} == {"experiment": 100, "user_id": 200}


def test_every_exposure_write_is_audited(ab: TestClient) -> None:
    create(ab)
    batch = ab.post("/api/route/batch", json={"experiment": KEY, "user_ids": ["a", "b", "c"]})
    assert batch.status_code == 200
    posted = ab.post("/api/exposures", json={"exposures": [{"experiment": KEY, "user_id": "d"}]})
    assert posted.status_code == 202
    for i in range(5):  # the first through the regular route, the rest through the fast path
        assert ab.get("/api/route", params={"user_id": f"r{i}", "experiment": KEY}).status_code == 200
    [batch_entry] = _audit(ab, "/api/route/batch")
    assert batch_entry["method"] == "POST" and batch_entry["actor"] == "anonymous"
    assert batch_entry["details"] == {"experiment": KEY, "users": 3, "exposures": 3}
    [exposure_entry] = _audit(ab, "/api/exposures")
    assert exposure_entry["details"] == {"exposures": 1, "accepted": 1}
    routed = _audit(ab, "/api/route")
    assert sum(e["details"]["exposures"] for e in routed) == 5
    events = {"events": [{"experiment": KEY, "user_id": "a", "metric": "conversion", "value": 1}]}
    assert ab.post("/api/events", json=events).status_code == 200
    assert len(_audit(ab, "/api/events")) == 1


def test_a_viewer_key_routing_a_batch_is_named_in_the_audit(tmp_path: Path) -> None:
    admin_key, viewer_key = secrets.token_hex(16), secrets.token_hex(16)
    keys = f"admin:root:{admin_key},viewer:app:{viewer_key}"
    settings = AbTestingSettings(data_dir=tmp_path, log_level="WARNING", api_keys=keys)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        admin = {"Authorization": f"Bearer {admin_key}"}
        viewer = {"Authorization": f"Bearer {viewer_key}"}
        assert client.post("/api/experiments", json=experiment(KEY), headers=admin).status_code == 201
        assert client.post(f"/api/experiments/{KEY}/start", headers=admin).status_code == 200
        body = {"experiment": KEY, "user_ids": ["a", "b"]}
        assert client.post("/api/route/batch", json=body, headers=viewer).status_code == 200
        too_long = {"experiment": KEY, "user_ids": [HUGE]}
        assert client.post("/api/route/batch", json=too_long, headers=viewer).status_code == 422
        client.app.state.exposures.flush()  # type: ignore[attr-defined]
        items = client.get("/api/audit-log", headers=admin).json()["items"]
        entries = [(i["actor"], i["role"]) for i in items if i["route"] == "/api/route/batch"]
        assert entries == [("app", "viewer")]
