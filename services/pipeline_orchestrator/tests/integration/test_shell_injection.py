"""Data never becomes shell code: values from run parameters, webhook payloads, alert labels and
annotations, and upstream outputs reach a shell task verbatim and run nothing."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from orchestrator_helpers import define, py, sh_task, start, task_of, wait_run


def _payloads(mark: Path) -> list[str]:
    """Each would create ``mark`` if it were parsed as shell code."""
    return [
        f"$(touch {mark})",
        f"`touch {mark}`",
        f"; touch {mark}",
        f"| touch {mark}",
        f"\ntouch {mark}\n",
        f"' ; touch {mark} ; '",
        f'" ; touch {mark} ; "',
        f'$(id) `id` ;|& ${{HOME}} \\ \'" {{{{ params.x0 }}}}\n" $(touch {mark})',
    ]


def _pipeline(api: TestClient, out: Path, n: int) -> None:
    """Task ``up`` passes every parameter on as an output; task ``s<i>`` writes parameter ``x<i>``
    unquoted, in double quotes, in single quotes and as the upstream output, in a string command
    and in a list command running ``sh -c``."""
    tasks = [py("up", "echo", inputs={f"x{i}": f"{{{{ params.x{i} }}}}" for i in range(n)}, cache=False)]
    for i in range(n):
        ref, upstream = f"{{{{ params.x{i} }}}}", f"{{{{ tasks.up.outputs.x{i} }}}}"
        fmt = "'%s|%s|%s|%s'"
        target = f"{out}/{{{{ run.id }}}}-{i}"
        tasks.append(
            sh_task(f"s{i}", ["up"], command=f"printf {fmt} {ref} \"{ref}\" '{ref}' {upstream} > {target}")
        )
        tasks.append(sh_task(f"l{i}", ["up"], command=["sh", "-c", f"printf %s {ref} > {target}-list"]))
    define(api, "inject", tasks, parameters={f"x{i}": {"type": "string"} for i in range(n)})


def _assert_verbatim(api: TestClient, run_id: str, out: Path, values: list[str], mark: Path) -> None:
    run = wait_run(api, run_id)
    assert not mark.exists(), "a value was run as shell code"
    assert run["state"] == "succeeded", [(t["name"], t["error"]) for t in run["tasks"] if t["error"]]
    for i, value in enumerate(values):
        assert (out / f"{run_id}-{i}").read_text() == "|".join([value] * 4), f"payload {i}"
        assert (out / f"{run_id}-{i}-list").read_text() == value, f"payload {i} (sh -c)"


def test_run_parameters_and_upstream_outputs_stay_data(api: TestClient, tmp_path: Path) -> None:
    mark, values = tmp_path / "pwned", _payloads(tmp_path / "pwned")
    _pipeline(api, tmp_path, len(values))
    run_id = start(api, "inject", {f"x{i}": v for i, v in enumerate(values)})
    _assert_verbatim(api, run_id, tmp_path, values, mark)


def test_webhook_payloads_stay_data(api: TestClient, tmp_path: Path) -> None:
    mark, values = tmp_path / "pwned", _payloads(tmp_path / "pwned")
    _pipeline(api, tmp_path, len(values))
    token = api.post("/api/pipelines/inject/webhooks", json={}).json()["token"]
    fired = api.post(
        f"/api/triggers/webhooks/{token}", json={"parameters": {f"x{i}": v for i, v in enumerate(values)}}
    )
    assert fired.status_code == 201, fired.text
    _assert_verbatim(api, fired.json()["id"], tmp_path, values, mark)


def test_alert_labels_and_annotations_stay_data(api: TestClient, tmp_path: Path) -> None:
    mark, values = tmp_path / "pwned", _payloads(tmp_path / "pwned")
    _pipeline(api, tmp_path, len(values))
    labels = {f"l{i}": v for i, v in enumerate(values[:-1])}
    parameters = {f"x{i}": f"{{{{ alert.labels.l{i} }}}}" for i in range(len(values) - 1)}
    parameters[f"x{len(values) - 1}"] = "{{ alert.annotations.description }}"
    route = api.post(
        "/api/triggers/alert-routes",
        json={"alertname": "Drift", "pipeline": "inject", "parameters": parameters, "cooldown_seconds": 0},
    )
    assert route.status_code == 201, route.text
    alert = {"labels": {"alertname": "Drift", **labels}, "annotations": {"description": values[-1]}}
    answer = api.post("/api/triggers/alertmanager", json={"alerts": [alert]})
    assert answer.status_code == 200 and len(answer.json()["started"]) == 1, answer.text
    _assert_verbatim(api, answer.json()["started"][0]["run_id"], tmp_path, values, mark)


def test_http_task_urls_percent_encode_values_in_the_path(api: TestClient) -> None:
    define(
        api,
        "fetch",
        [
            {
                "name": "get",
                "kind": "http",
                "url": "http://127.0.0.1:1/api/runs/{{ params.id }}?q={{ params.id }}",
                "expect_status": [200],
            }
        ],
        parameters={"id": {"type": "string"}},
    )
    run = wait_run(api, start(api, "fetch", {"id": "../../pipelines?x=1#"}))
    error = task_of(run, "get")["error"]
    assert "/api/runs/..%2F..%2Fpipelines%3Fx%3D1%23?q=..%2F" in error, error
