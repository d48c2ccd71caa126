"""A local worker killed outright (SIGKILL, as by the OOM killer) cannot stop what its task
started; the executor must, before the attempt is retried."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from orchestrator_helpers import define, py, start, task_of, wait_run


def test_a_killed_workers_leftovers_are_gone_before_the_retry(api: TestClient, tmp_path: Path) -> None:
    inputs = {"flag": str(tmp_path / "flag"), "pidfile": str(tmp_path / "child.pid")}
    define(api, "oom", [py("t", "die_leaving_a_child", inputs=inputs, retries=1, cache=False)])
    run = wait_run(api, start(api, "oom"), timeout=60)
    assert run["state"] == "succeeded", run
    task = task_of(run, "t")
    assert [a["state"] for a in task["attempts"]] == ["failed", "succeeded"]
    assert task["outputs"]["child_alive"] is False
