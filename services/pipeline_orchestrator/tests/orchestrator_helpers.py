"""Helpers of the orchestrator's tests (a uniquely named module: every tests dir is on sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from mlops_kit.testing import empty_tables
from mlops_kit.testing import wait_until as kit_wait_until
from pipeline_orchestrator.tables import Base

FINISHED = ("succeeded", "failed", "cancelled")


def reset(client: TestClient) -> None:
    """Cancel what still runs, then empty every table."""
    for run in client.get("/api/runs", params={"limit": 1000}).json()["items"]:
        if run["state"] not in FINISHED:
            client.post(f"/api/runs/{run['id']}/cancel")
    wait_until(
        lambda: all(
            r["state"] in FINISHED for r in client.get("/api/runs", params={"limit": 1000}).json()["items"]
        )
    )
    empty_tables(client.app.state.db, Base.metadata, truncate=False)  # type: ignore[attr-defined]


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """The kit's poll with this suite's positional (timeout, what) and exceptions raised as they come."""
    return kit_wait_until(check, timeout=timeout, what=what, interval=0.02, tolerate=())


def wait_run(
    client: TestClient, run_id: str, timeout: float = 30.0, states: tuple[str, ...] = FINISHED
) -> dict:
    def done() -> dict | None:
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["state"] in states else None

    return wait_until(done, timeout, f"run {run_id} to reach {states}")


def task_of(run: dict, name: str) -> dict:
    return next(t for t in run["tasks"] if t["name"] == name)


def py(name: str, fn: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "python", "callable": f"orchestrator_engine_fixtures:{fn}", **extra}


def sh_task(name: str, deps: list[str] | None = None, command: str = "true", **extra: Any) -> dict[str, Any]:
    """A shell task; not cached unless asked (identical commands would share one cache entry)."""
    return {
        "name": name,
        "kind": "shell",
        "command": command,
        "depends_on": deps or [],
        "cache": False,
        **extra,
    }


def define(client: TestClient, name: str, tasks: list[dict], **extra: Any) -> dict:
    response = client.post("/api/pipelines", json={"name": name, "tasks": tasks, **extra})
    assert response.status_code in (200, 201), response.text
    return response.json()


def start(client: TestClient, pipeline: str, parameters: dict | None = None) -> str:
    response = client.post(f"/api/pipelines/{pipeline}/runs", json={"parameters": parameters or {}})
    assert response.status_code == 201, response.text
    return response.json()["id"]
