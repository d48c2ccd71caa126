"""The orchestrator's /metrics on both backends: tasks and runs by active state (read from the
database at scrape time, so every replica reports the same), and each finished attempt's
duration by task kind and state."""

from __future__ import annotations

from fastapi.testclient import TestClient
from orchestrator_helpers import define, sh_task, start, wait_run, wait_until
from prometheus_client.parser import text_string_to_metric_families


def sample(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_a_running_task_is_in_the_queue_gauges_and_its_duration_is_observed(api: TestClient) -> None:
    durations = sample(api, "mlops_pipeline_task_duration_seconds_count", kind="shell", state="succeeded")
    define(api, "queue-quick", [sh_task("quick")])
    wait_run(api, start(api, "queue-quick"), timeout=90)
    define(api, "queue-slow", [sh_task("slow", command="sleep 30")])
    slow = start(api, "queue-slow")

    def running() -> bool:
        tasks = sample(api, "mlops_pipeline_tasks", state="running")
        runs = sample(api, "mlops_pipeline_runs", state="running")
        return tasks == 1 and runs == 1

    wait_until(running, 20, "the slow task counted as running")
    assert sample(api, "mlops_pipeline_tasks", state="queued") == 0
    after = sample(api, "mlops_pipeline_task_duration_seconds_count", kind="shell", state="succeeded")
    assert after == durations + 1
    assert api.post(f"/api/runs/{slow}/cancel").status_code in (200, 202)
    wait_run(api, slow, timeout=90)
    wait_until(
        lambda: sample(api, "mlops_pipeline_runs", state="running") == 0, 20, "no run counted as running"
    )
