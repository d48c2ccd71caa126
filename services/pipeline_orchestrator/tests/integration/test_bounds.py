"""What storage holds, held at the edge (issue 12), on SQLite and PostgreSQL: page and log
offsets, 64-bit versions, backfill times that are dates, no NUL, bounded strings and
parameters, a task error that fits, and an audit entry for every write."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlops_kit.testing.openapi_bounds import offset_failures, request_problems
from orchestrator_helpers import define, sh_task, start, wait_run
from pipeline_orchestrator.app import create_app
from pipeline_orchestrator.protocol import MAX_ERROR, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings


def test_every_request_string_array_map_and_integer_is_bounded(tmp_path: Path) -> None:
    spec = create_app(OrchestratorSettings(data_dir=tmp_path)).openapi()
    assert request_problems(spec) == []


def test_every_list_endpoint_refuses_offsets_and_limits_out_of_range(api: TestClient) -> None:
    define(api, "bounded", [sh_task("a")])
    run_id = start(api, "bounded")
    wait_run(api, run_id)
    values = {"pipeline": "bounded", "run_id": run_id, "task": "a", "model": "churn"}
    assert offset_failures(api, api.app.openapi(), values) == []
    for path in ("/api/pipelines/bounded/versions/9223372036854775808", "/api/pipelines/bounded/versions/0"):
        assert api.get(path).status_code == 422
    too_new = api.post("/api/pipelines/bounded/runs", json={"version": 2**63})
    assert too_new.status_code == 422, too_new.text


@pytest.mark.parametrize(
    "window",
    [
        {"start": "9999-12-31T23:00:00-05:00", "end": "9999-12-31T23:30:00-05:00"},
        {"start": "0001-01-01T00:00:00+05:00", "end": "2026-01-01T00:00:00Z"},
    ],
)
def test_backfill_times_past_what_storage_holds_are_a_422(api: TestClient, window: dict) -> None:
    define(api, "bounded", [sh_task("a")])
    response = api.post("/api/pipelines/bounded/backfill", json={**window, "cron": "0 0 * * *"})
    assert response.status_code == 422, response.text
    assert "out of range" in response.text
    assert api.get("/api/runs", params={"pipeline": "bounded"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/pipelines", {"name": "p", "tasks": [sh_task("a", command="echo \x00")]}),
        ("post", "/api/pipelines/bounded/runs", {"parameters": {"x": "a\x00b"}}),
        ("post", "/api/pipelines/bounded/schedules", {"cron": "0 0 * * *", "timezone": "UTC\x00"}),
        ("get", "/api/pipelines/bou%00nded", None),
        ("get", "/api/runs?pipeline=bou%00nded", None),
    ],
)
def test_nul_is_refused_the_same_on_both_backends(
    api: TestClient, method: str, path: str, body: dict | None
) -> None:
    define(api, "bounded", [sh_task("a")])
    response = api.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["error"]["message"]
    assert api.get("/api/runs", params={"pipeline": "bounded"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/pipelines", {"name": "p", "tasks": [sh_task("a", command="x" * 65_537)]}, "command"),
        ("/api/pipelines/bounded/runs", {"parameters": {"x": "v" * 65_537}}, "parameters"),
        ("/api/pipelines/bounded/schedules", {"cron": "0 0 * * *", "timezone": "Z" * 65}, "timezone"),
        ("/api/pipelines/bounded/webhooks", {"parameters": {f"p{i}": 1 for i in range(1001)}}, "parameters"),
    ],
)
def test_oversize_value_is_a_422_naming_the_field(api: TestClient, path: str, body: dict, field: str) -> None:
    define(api, "bounded", [sh_task("a")])
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]
    assert api.get("/api/pipelines/p").status_code == 404


def test_a_task_error_with_nul_bytes_or_past_the_limit_keeps_its_tail() -> None:
    result = TaskResult(ok=False, error="head\x00" + "x" * MAX_ERROR + "tail")
    assert result.error is not None and len(result.error) == MAX_ERROR
    assert result.error.endswith("tail") and "\x00" not in result.error


def test_a_shell_task_failing_with_binary_output_is_recorded_on_both_backends(api: TestClient) -> None:
    define(api, "binary", [sh_task("a", command="printf 'bad\\000byte\\n' >&2; exit 3")])
    run = wait_run(api, start(api, "binary"))
    assert run["state"] == "failed"


def test_every_write_leaves_an_audit_entry(api: TestClient) -> None:
    define(api, "bounded", [sh_task("a")])
    run_id = start(api, "bounded")
    writes = [
        api.post("/api/pipelines/bounded/schedules", json={"cron": "0 0 * * *", "enabled": False}),
        api.post("/api/pipelines/bounded/webhooks", json={}),
        api.post(f"/api/runs/{run_id}/cancel"),
    ]
    assert all(w.status_code < 300 or w.status_code == 409 for w in writes), [w.text for w in writes]
    audited = {e["route"] for e in api.get("/api/audit-log", params={"limit": 1000}).json()["items"]}
    assert audited >= {
        "/api/pipelines",
        "/api/pipelines/{pipeline}/runs",
        "/api/pipelines/{pipeline}/schedules",
        "/api/pipelines/{pipeline}/webhooks",
    }
