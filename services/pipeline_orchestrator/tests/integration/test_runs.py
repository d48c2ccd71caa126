"""Running pipelines on the local executor: outputs, failures, retries, timeouts, trigger rules,
caching, cancel, retry from the failed tasks, hyper-parameter search."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient
from orchestrator_helpers import define, py, sh_task, start, task_of, wait_run, wait_until


def test_outputs_flow_downstream_through_a_diamond(api: TestClient) -> None:
    define(
        api,
        "diamond",
        [
            py("a", "add", inputs={"a": "{{ params.x }}", "b": 1}),
            py("b", "add", depends_on=["a"], inputs={"a": "{{ tasks.a.outputs.sum }}", "b": 10}),
            py("c", "add", depends_on=["a"], inputs={"a": "{{ tasks.a.outputs.sum }}", "b": 100}),
            py(
                "d",
                "echo",
                depends_on=["b", "c"],
                inputs={
                    "left": "{{ tasks.b.outputs.sum }}",
                    "right": "{{ tasks.c.outputs.sum }}",
                    "run": "{{ run.id }}",
                },
            ),
            sh_task("e", ["d"], command="echo left={{ tasks.d.outputs.left }}"),
        ],
        parameters={"x": {"type": "int", "default": 1}},
    )
    run_id = start(api, "diamond", {"x": 4})
    run = wait_run(api, run_id)
    assert run["state"] == "succeeded", run
    assert task_of(run, "d")["outputs"] == {"left": 15, "right": 105, "run": run_id}
    assert run["progress"] == {"total": 5, "done": 5, "percent": 100.0, "states": {"succeeded": 5}}
    attempt = task_of(run, "b")["attempts"][0]
    assert attempt["state"] == "succeeded" and attempt["exit_status"] == 0 and attempt["worker"]
    assert attempt["started_at"] <= attempt["finished_at"]
    assert task_of(run, "d")["depends_on"] == ["b", "c"]
    logs = api.get(f"/api/runs/{run_id}/tasks/e/logs")
    assert logs.status_code == 200 and "left=15" in logs.text
    assert logs.headers["X-Attempt-State"] == "succeeded" and int(logs.headers["X-Next-Offset"]) == len(
        logs.content
    )
    tail = api.get(f"/api/runs/{run_id}/tasks/e/logs", params={"offset": logs.headers["X-Next-Offset"]})
    assert tail.content == b""
    listed = api.get("/api/runs", params={"pipeline": "diamond", "state": "succeeded"}).json()
    assert [r["id"] for r in listed["items"]] == [run_id] and "tasks" not in listed["items"][0]
    metrics = api.get("/metrics").text
    assert (
        'mlops_pipeline_runs_finished_total{pipeline="diamond",service="pipeline_orchestrator",state="succeeded"}'
        in metrics
    )
    assert (
        'mlops_pipeline_attempts_finished_total{kind="python",service="pipeline_orchestrator",state="succeeded"}'
        in metrics
    )
    assert "mlops_pipeline_scheduling_pass_seconds_count" in metrics


def test_a_raising_task_has_its_traceback_in_the_error_and_the_log(api: TestClient) -> None:
    define(
        api,
        "boom",
        [py("explode", "boom", inputs={"message": "the disk is lava"}), sh_task("after", ["explode"])],
    )
    run = wait_run(api, start(api, "boom"))
    assert run["state"] == "failed" and "explode" in run["error"]
    explode = task_of(run, "explode")
    assert explode["state"] == "failed"
    error = explode["attempts"][0]["error"]
    assert "Traceback" in error and "ValueError: the disk is lava" in error and "in inner" in error
    assert task_of(run, "after")["state"] == "upstream_failed"
    log = api.get(f"/api/runs/{run['id']}/tasks/explode/logs").text
    assert "about to fail" in log and "ValueError: the disk is lava" in log


def test_retries_until_success_with_backoff(api: TestClient, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    define(
        api,
        "flaky",
        [
            py(
                "flaky",
                "fail_until",
                inputs={"counter": str(counter), "failures": 2},
                retries=2,
                retry_delay_seconds=0.2,
                retry_backoff=2,
            )
        ],
    )
    run = wait_run(api, start(api, "flaky"))
    assert run["state"] == "succeeded"
    task = task_of(run, "flaky")
    assert [a["state"] for a in task["attempts"]] == ["failed", "failed", "succeeded"]
    assert task["try_number"] == 3 and task["outputs"] == {"calls": 3}
    # the second wait is about twice the first (0.1-0.2 s, then 0.2-0.4 s: equal jitter)
    a = task["attempts"]
    from datetime import datetime

    gap1 = datetime.fromisoformat(a[1]["started_at"]) - datetime.fromisoformat(a[0]["finished_at"])
    gap2 = datetime.fromisoformat(a[2]["started_at"]) - datetime.fromisoformat(a[1]["finished_at"])
    assert gap1.total_seconds() >= 0.1 and gap2.total_seconds() >= 0.2


def test_retries_exhausted_fail_the_task(api: TestClient, tmp_path: Path) -> None:
    define(
        api,
        "hopeless",
        [
            py(
                "t",
                "fail_until",
                inputs={"counter": str(tmp_path / "c"), "failures": 5},
                retries=1,
                retry_delay_seconds=0,
            )
        ],
    )
    task = task_of(wait_run(api, start(api, "hopeless")), "t")
    assert task["state"] == "failed" and len(task["attempts"]) == 2 and "planned failure 2" in task["error"]


def test_a_timeout_stops_the_task(api: TestClient, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    define(
        api,
        "slow",
        [
            py(
                "slow",
                "wait_for",
                inputs={"path": str(tmp_path / "never"), "pidfile": str(pidfile)},
                # long enough for the task's interpreter to start and write its pid on a saturated
                # 2-core machine (1 s and then 5 s were not, in the full suite with its many
                # service processes)
                timeout_seconds=30,
            )
        ],
    )
    run = wait_run(api, start(api, "slow"), timeout=120)
    task = task_of(run, "slow")
    assert task["state"] == "failed"
    assert (
        task["attempts"][0]["state"] == "timed_out" and "timed out after 30s" in task["attempts"][0]["error"]
    )
    pid = int(pidfile.read_text())
    wait_until(lambda: not _alive(pid), 10, "the timed-out worker to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_trigger_rules_route_failure_handling(api: TestClient) -> None:
    define(
        api,
        "rules",
        [
            py("bad", "boom"),
            sh_task("good"),
            sh_task("alert", ["bad"], trigger_rule="one_failed"),
            sh_task("cleanup", ["bad", "good"], trigger_rule="all_done"),
            sh_task("never", ["bad", "good"]),
            sh_task("after_never", ["never"], trigger_rule="none_failed"),
            sh_task("only_on_failure", ["good"], trigger_rule="one_failed"),
            sh_task("after_skip", ["only_on_failure"]),
        ],
    )
    run = wait_run(api, start(api, "rules"))
    states = {t["name"]: t["state"] for t in run["tasks"]}
    assert states == {
        "bad": "failed",
        "good": "succeeded",
        "alert": "succeeded",
        "cleanup": "succeeded",
        "never": "upstream_failed",
        "after_never": "upstream_failed",
        "only_on_failure": "skipped",
        "after_skip": "skipped",
    }
    assert run["state"] == "failed"


def test_identical_tasks_are_served_from_the_cache_unless_opted_out(api: TestClient, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tasks = [
        py("cached", "record", inputs={"marker": str(marker), "value": "{{ params.v }}"}),
        py("fresh", "record", inputs={"marker": str(marker), "value": "x"}, cache=False),
    ]
    define(api, "cache", tasks, parameters={"v": {"type": "int", "default": 1}})
    first = wait_run(api, start(api, "cache"))
    second = wait_run(api, start(api, "cache"))
    assert task_of(first, "cached")["state"] == "succeeded"
    hit = task_of(second, "cached")
    assert hit["state"] == "cached" and hit["cached_from"] == first["id"] and hit["attempts"] == []
    assert hit["outputs"] == task_of(first, "cached")["outputs"]
    original = api.get(f"/api/runs/{first['id']}/tasks/cached/logs")
    served = api.get(f"/api/runs/{second['id']}/tasks/cached/logs")  # the attempt it was cached from
    assert served.status_code == 200 and served.text == original.text
    assert task_of(second, "fresh")["state"] == "succeeded"
    third = wait_run(api, start(api, "cache", {"v": 2}))  # other inputs: a miss
    assert task_of(third, "cached")["state"] == "succeeded"
    assert len(marker.read_text().splitlines()) == 5  # cached x2 + fresh x3 ... minus the hit


def test_a_deleted_pipelines_runs_serve_no_cache_hits(api: TestClient, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tasks = [py("cached", "record", inputs={"marker": str(marker), "value": "same"})]
    define(api, "cache-gone", tasks)
    first = wait_run(api, start(api, "cache-gone"))
    assert task_of(first, "cached")["state"] == "succeeded"
    assert api.delete("/api/pipelines/cache-gone").status_code == 204
    define(api, "cache-again", tasks)  # the same task and inputs in another pipeline
    again = wait_run(api, start(api, "cache-again"))
    fresh = task_of(again, "cached")
    assert fresh["state"] == "succeeded" and fresh["cached_from"] is None
    assert len(marker.read_text().splitlines()) == 2


def test_a_missing_upstream_output_fails_the_task_naming_it(api: TestClient) -> None:
    define(
        api,
        "missing",
        [
            py("a", "add", inputs={"a": 1, "b": 2}),
            py("b", "echo", depends_on=["a"], inputs={"m": "{{ tasks.a.outputs.model_uri }}"}),
        ],
    )
    run = wait_run(api, start(api, "missing"))
    b = task_of(run, "b")
    assert (
        b["state"] == "failed" and "model_uri" in b["error"] and "'sum'" in b["error"] and b["attempts"] == []
    )


def test_cancel_stops_running_tasks(api: TestClient, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    define(
        api,
        "cancel",
        [
            py("wait", "wait_for", inputs={"path": str(tmp_path / "never"), "pidfile": str(pidfile)}),
            sh_task("next", ["wait"]),
        ],
    )
    run_id = start(api, "cancel")
    wait_until(pidfile.exists, 20, "the task to start")
    response = api.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 202
    run = wait_run(api, run_id)
    assert run["state"] == "cancelled"
    assert (
        task_of(run, "wait")["state"] == "cancelled"
        and task_of(run, "wait")["attempts"][0]["state"] == "cancelled"
    )
    assert task_of(run, "next")["state"] == "cancelled"
    wait_until(lambda: not _alive(int(pidfile.read_text())), 10, "the cancelled worker to be gone")
    again = api.post(f"/api/runs/{run_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "RUN_FINISHED"


def test_retry_goes_on_from_the_failed_tasks(api: TestClient, tmp_path: Path) -> None:
    flag = tmp_path / "broken"
    flag.write_text("1")
    marker = tmp_path / "first"
    define(
        api,
        "resume",
        [
            py("first", "record", inputs={"marker": str(marker)}, cache=False),
            py("second", "fail_if_exists", depends_on=["first"], inputs={"flag": str(flag)}, cache=False),
            sh_task("third", ["second"], cache=False),
        ],
    )
    run_id = start(api, "resume")
    assert wait_run(api, run_id)["state"] == "failed"
    flag.unlink()
    assert api.post(f"/api/runs/{run_id}/retry").status_code == 202
    run = wait_run(api, run_id)
    assert run["state"] == "succeeded"
    again = api.post(f"/api/runs/{run_id}/retry")
    assert again.status_code == 409 and again.json()["error"]["code"] == "RUN_NOT_RETRYABLE"
    assert len(task_of(run, "first")["attempts"]) == 1 and len(marker.read_text().splitlines()) == 1
    assert [a["state"] for a in task_of(run, "second")["attempts"]] == ["failed", "succeeded"]
    assert run["trigger_info"]["retries"] == 1


def test_hyper_parameter_search_runs_trials_as_child_tasks(api: TestClient) -> None:
    define(
        api,
        "search",
        [
            {
                "name": "tune",
                "kind": "hpo",
                "callable": "orchestrator_engine_fixtures:quadratic",
                "search_space": {
                    "x": {"type": "float", "low": 0, "high": 6},
                    "y": {"type": "int", "low": 0, "high": 3},
                },
                "n_trials": 12,
                "parallelism": 3,
                "metric": "score",
                "direction": "maximize",
                "seed": 11,
                "inputs": {"offset": "{{ params.offset }}"},
            },
            py("use", "echo", depends_on=["tune"], inputs={"best": "{{ tasks.tune.outputs.best_params }}"}),
        ],
        parameters={"offset": {"type": "float", "default": 0.0}},
    )
    run = wait_run(api, start(api, "search"), timeout=60)
    assert run["state"] == "succeeded", run
    tune = task_of(run, "tune")
    trials = [t for t in run["tasks"] if t["parent"] == "tune"]
    assert len(trials) == 12 and all(t["state"] == "succeeded" for t in trials)
    assert sorted(t["name"] for t in trials) == sorted(f"tune[{i}]" for i in range(12))
    out = tune["outputs"]
    values = [t["outputs"]["value"] for t in trials]
    assert out["best_value"] == max(values) and out["n_trials"] == 12 and out["n_failed"] == 0
    best_trial = next(t for t in trials if t["outputs"]["value"] == out["best_value"])
    assert out["best_params"] == best_trial["params"]
    assert task_of(run, "use")["outputs"] == {"best": out["best_params"]}
    assert all(0 <= t["params"]["x"] <= 6 and t["params"]["y"] in (0, 1, 2, 3) for t in trials)
    assert run["progress"]["total"] == 2  # trials are not counted as pipeline tasks
