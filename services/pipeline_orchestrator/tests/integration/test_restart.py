"""Kill the orchestrator mid-run and start it again: the run continues where it was; no task is
lost, none runs twice to completion, no run stays RUNNING."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from mlops_kit.testing import ServiceProcess
from mlops_kit.testing.backends import free_port
from orchestrator_helpers import wait_until

FIXTURES = "orchestrator_engine_fixtures"


def _env(tmp: Path) -> dict[str, str]:
    tests_dir = str(Path(__file__).resolve().parents[1])
    return {
        "MLOPS_DATA_DIR": str(tmp / "data"),
        "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "2",
        "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.2",
        "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
    }


def _run(url: str, run_id: str) -> dict:
    return httpx.get(f"{url}/api/runs/{run_id}", timeout=10).json()


def _task(run: dict, name: str) -> dict:
    return next(t for t in run["tasks"] if t["name"] == name)


def test_kill_and_restart_continues_the_run(tmp_path: Path) -> None:
    gate, pidfile = tmp_path / "gate", tmp_path / "worker.pid"
    markers = {name: tmp_path / f"{name}.done" for name in ("first", "second", "third", "side")}

    def rec(name: str, deps: list[str]) -> dict:
        return {
            "name": name,
            "kind": "python",
            "callable": f"{FIXTURES}:record",
            "inputs": {"marker": str(markers[name])},
            "depends_on": deps,
            "cache": False,
        }

    definition = {
        "name": "durable",
        "tasks": [
            rec("first", []),
            {
                "name": "blocked",
                "kind": "python",
                "callable": f"{FIXTURES}:wait_for",
                "inputs": {"path": str(gate), "pidfile": str(pidfile)},
                "depends_on": ["first"],
                "cache": False,
            },
            rec("side", ["first"]),
            rec("second", ["blocked"]),
            rec("third", ["second", "side"]),
        ],
    }
    port = free_port()
    env = _env(tmp_path)
    first = ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp_path, port=port).start()
    try:
        assert httpx.post(f"{first.url}/api/pipelines", json=definition, timeout=10).status_code == 201
        run_id = httpx.post(f"{first.url}/api/pipelines/durable/runs", json={}, timeout=10).json()["id"]
        wait_until(pidfile.exists, 30, "the blocked task to start")
        wait_until(
            lambda: _task(_run(first.url, run_id), "side")["state"] == "succeeded", 30, "side to finish"
        )
        worker_pid = int(pidfile.read_text())
        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGKILL)  # no shutdown hooks, no goodbye
        first.process.wait()
    finally:
        first.stop()
    # the worker that ran 'blocked' dies with its orchestrator: it can never complete it
    wait_until(lambda: not _alive(worker_pid), 10, "the orphaned worker to exit")

    second = ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp_path, port=port).start()
    try:
        run = _run(second.url, run_id)
        assert run["state"] == "running"
        assert _task(run, "blocked")["attempts"][0]["state"] == "lost"
        gate.write_text("open")
        run = wait_until(
            lambda: (r := _run(second.url, run_id))["state"] in ("succeeded", "failed") and r,
            60,
            "the run to finish",
        )
        assert run["state"] == "succeeded", run
        blocked = _task(run, "blocked")
        assert [a["state"] for a in blocked["attempts"]] == ["lost", "succeeded"]
        assert "restarted" in blocked["attempts"][0]["error"]
        # every task completed exactly once, across both lives of the orchestrator
        for name, marker in markers.items():
            assert len(marker.read_text().splitlines()) == 1, name
        for name in ("first", "side"):
            assert len(_task(run, name)["attempts"]) == 1
    finally:
        second.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
