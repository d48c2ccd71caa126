"""Many clients at once against a real orchestrator process on embedded SQLite: more concurrent
write requests than the server has threads must all succeed (they once deadlocked on the write
lock until the busy timeout)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
from mlops_kit.testing import ServiceProcess
from orchestrator_helpers import wait_until


def test_eighty_concurrent_triggers_all_succeed(tmp_path: Path) -> None:
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {
        "MLOPS_DATA_DIR": str(tmp_path / "data"),
        "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "2",
        "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
    }
    tasks = [{"name": "a", "kind": "python", "callable": "orchestrator_engine_fixtures:noop", "cache": False}]
    tasks += [
        {
            "name": f"b{i}",
            "kind": "python",
            "callable": "orchestrator_engine_fixtures:noop",
            "depends_on": ["a"],
            "cache": False,
        }
        for i in range(3)
    ]
    with ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp_path) as service:
        definition = {"name": "load", "tasks": tasks, "max_active_runs": 100}
        assert httpx.post(f"{service.url}/api/pipelines", json=definition).status_code == 201

        async def trigger_all() -> list[int]:
            async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
                answers = await asyncio.gather(
                    *[client.post("/api/pipelines/load/runs", json={}) for _ in range(80)]
                )
            return [a.status_code for a in answers]

        assert asyncio.run(trigger_all()) == [201] * 80

        def all_succeeded() -> bool:
            runs = httpx.get(f"{service.url}/api/runs", params={"limit": 200}).json()["items"]
            assert not [r for r in runs if r["state"] == "failed"]
            return len(runs) == 80 and all(r["state"] == "succeeded" for r in runs)

        wait_until(all_succeeded, 120, "80 runs to succeed")
