from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from mlops_client import (
    ConflictError,
    InvalidPipelineError,
    MlopsClient,
    NotFoundError,
    PipelineDefinition,
    PipelineParameterError,
    PipelineRun,
    PipelineRunFailedError,
    PipelinesClient,
    ServerError,
    TaskDefinition,
    ValidationError,
)
from mlops_kit.testing import wait_until


def shell(name: str, command: str, **fields: Any) -> dict[str, Any]:
    # tests share one service: no task may reuse another test's cached outputs
    return {"name": name, "kind": "shell", "command": command, "cache": False, **fields}


def define(pipelines: PipelinesClient, name: str, *tasks: dict[str, Any], **fields: Any) -> str:
    pipelines.create_pipeline({"name": name, "tasks": list(tasks), **fields})
    return name


def running(pipelines: PipelinesClient, run_id: str, task: str) -> PipelineRun:
    """Poll (with a deadline) until `task` of the run is running."""

    def started() -> PipelineRun | None:
        run = pipelines.get_run(run_id)
        return run if run.task(task).state == "running" else None

    return wait_until(started, timeout=20, what=f"task {task} of run {run_id} to start", tolerate=())


def test_same_definition_keeps_the_version_and_a_change_adds_one(
    pipelines: PipelinesClient, unique: str
) -> None:
    definition = {"name": unique, "description": "d", "tasks": [shell("a", "echo a")]}
    first = pipelines.create_pipeline(definition)
    assert (first.version, first.created, first.name) == (1, True, unique)
    again = pipelines.create_pipeline(definition)
    assert (again.version, again.created, again.id) == (1, False, first.id)
    typed = PipelineDefinition(
        name=unique, description="d", tasks=[TaskDefinition(name="a", kind="shell", command="echo b")]
    )
    second = pipelines.create_pipeline(typed)
    assert (second.version, second.created, second.versions) == (2, True, 2)
    assert [v.version for v in pipelines.versions(unique)] == [2, 1]
    assert pipelines.get_version(unique, 1).definition["tasks"][0]["command"] == "echo a"
    fetched = pipelines.get_pipeline(first.id)
    assert fetched.name == unique and fetched.definition is not None
    assert fetched.definition["tasks"][0]["command"] == "echo b"
    assert [p.name for p in pipelines.iter_pipelines(name_prefix=unique)] == [unique]
    pipelines.delete_pipeline(unique)
    with pytest.raises(NotFoundError):
        pipelines.get_pipeline(unique)


def test_an_invalid_definition_names_the_problem(pipelines: PipelinesClient, unique: str) -> None:
    cycle = [shell("a", "true", depends_on=["b"]), shell("b", "true", depends_on=["a"])]
    with pytest.raises(InvalidPipelineError) as refused:
        pipelines.create_pipeline({"name": unique, "tasks": cycle})
    assert refused.value.code == "CYCLE" and refused.value.status == 422
    not_upstream = [shell("a", "echo {{ tasks.b.outputs.x }}"), shell("b", "true")]
    with pytest.raises(ValidationError) as refused_too:
        pipelines.create_pipeline({"name": unique, "tasks": not_upstream})
    assert refused_too.value.code == "REFERENCE_NOT_UPSTREAM"
    assert refused_too.value.details.get("task") == "a"


def test_a_run_with_parameters_succeeds_with_progress(
    pipelines: PipelinesClient, orchestrator_url: str, unique: str
) -> None:
    define(
        pipelines,
        unique,
        shell("hello", "echo hello {{ params.who }}"),
        {"name": "ping", "kind": "http", "url": f"{orchestrator_url}/health", "depends_on": ["hello"]},
        parameters={"who": {"type": "string", "default": "world"}, "n": {"type": "int", "default": 1}},
    )
    started = pipelines.trigger(unique, {"who": "ana", "n": 3})
    assert started.trigger == "manual" and started.pipeline_version == 1
    seen: list[tuple[str, int, int]] = []
    run = pipelines.wait_for_run(
        started.id, timeout=30, progress=lambda r: seen.append((r.state, r.progress.done, r.progress.total))
    )
    assert run.state == "succeeded" and run.parameters == {"who": "ana", "n": 3}
    assert (run.progress.done, run.progress.total, run.progress.percent) == (2, 2, 100.0)
    assert seen[-1] == ("succeeded", 2, 2) and all(total == 2 for _, _, total in seen)
    hello = run.task("hello")
    assert hello.state == "succeeded" and [a.state for a in hello.attempts] == ["succeeded"]
    assert hello.attempts[0].exit_status == 0 and run.task("ping").depends_on == ["hello"]
    listed = pipelines.list_runs(pipeline=unique, state="succeeded")
    assert [r.id for r in listed.items] == [run.id] and listed.total == 1
    assert run.id in {r.id for r in pipelines.iter_runs(pipeline=unique, trigger="manual")}


def test_a_failing_task_raises_with_its_error(pipelines: PipelinesClient, unique: str) -> None:
    define(
        pipelines,
        unique,
        shell("boom", "echo about to fail; echo disk on fire >&2; exit 3"),
        shell("after", "echo never", depends_on=["boom"]),
    )
    run = pipelines.trigger(unique)
    with pytest.raises(PipelineRunFailedError) as failed:
        pipelines.wait_for_run(run.id, timeout=30)
    error = failed.value
    assert error.code == "RUN_FAILED" and error.run.state == "failed"
    boom = error.run.task("boom")
    assert boom.state == "failed" and boom.attempts[-1].exit_status == 3
    assert "boom" in error.message and boom.error and boom.error.strip() in error.message
    assert error.run.task("after").state == "upstream_failed"
    assert list(pipelines.follow_logs(run.id, "after")) == [], "a task that never ran has no log"
    assert "disk on fire" in pipelines.logs(run.id, "boom").text
    quiet = pipelines.wait_for_run(run.id, raise_on_failure=False)
    assert quiet.state == "failed" and quiet.finished


def test_wrong_parameters_are_refused_before_a_run_starts(pipelines: PipelinesClient, unique: str) -> None:
    define(
        pipelines,
        unique,
        shell("a", "echo {{ params.n }} {{ params.label }}"),
        parameters=[{"name": "n", "type": "int"}, {"name": "label", "type": "string", "default": "x"}],
    )
    cases = [
        ({"n": 1, "typo": 2}, "UNKNOWN_PARAMETER"),
        ({"n": "many"}, "PARAMETER_TYPE_ERROR"),
        ({}, "MISSING_PARAMETER"),
    ]
    for parameters, code in cases:
        with pytest.raises(PipelineParameterError) as refused:
            pipelines.trigger(unique, parameters)
        assert refused.value.code == code and refused.value.status == 422
        assert isinstance(refused.value, ValidationError)
    assert pipelines.list_runs(pipeline=unique).total == 0


def test_logs_are_read_by_offset_and_followed_while_written(pipelines: PipelinesClient, unique: str) -> None:
    define(
        pipelines,
        unique,
        shell("talk", "for i in 1 2 3; do echo line-$i; sleep 0.2; done; echo héllo"),
        shell("later", "echo done", depends_on=["talk"]),
    )
    run = pipelines.trigger(unique)
    with pytest.raises(NotFoundError) as unknown:
        pipelines.logs(run.id, "nope")
    assert unknown.value.code == "TASK_NOT_FOUND"
    later = "".join(pipelines.follow_logs(run.id, "later"))
    assert "\ndone\n" in later, "following a pending task waits for its attempt"
    followed = "".join(pipelines.follow_logs(run.id, "talk"))
    assert "\nline-1\nline-2\nline-3\nhéllo\n" in followed, "every line, as it was written"
    assert followed.splitlines()[-1].startswith("--- talk attempt 1 succeeded"), "followed to the end"
    text, end, state = pipelines.logs(run.id, "talk")
    assert (text, end, state) == (followed, len(followed.encode()), "succeeded")
    rest = pipelines.logs(run.id, "talk", attempt=1, offset=followed.encode().index(b"line-2"))
    assert rest.text.startswith("line-2\nline-3\nhéllo\n") and rest.finished and rest.next_offset == end
    assert pipelines.logs(run.id, "talk", offset=end).text == ""
    assert "".join(pipelines.follow_logs(run.id, "talk", offset=end)) == ""
    pipelines.wait_for_run(run.id, timeout=30)


def test_a_log_larger_than_a_piece_is_read_whole_without_breaking_characters(
    pipelines: PipelinesClient, unique: str
) -> None:
    define(pipelines, unique, shell("loud", "yes 😀 | head -n 300000"))  # 1.5 MB of 4-byte characters
    run = pipelines.wait_for_run(pipelines.trigger(unique).id, timeout=60)
    pieces, offset = [], 0
    while True:
        text, offset_after, _ = pipelines.logs(run.id, "loud", offset=offset)
        if offset_after == offset:
            break
        pieces.append(text)
        offset = offset_after
    assert len(pieces) > 1, "the service answers in pieces"
    whole = "".join(pieces)
    assert whole.count("😀\n") == 300000 and "\ufffd" not in whole
    assert offset == len(whole.encode())


def test_retry_reruns_failed_tasks_and_keeps_succeeded_ones(
    pipelines: PipelinesClient, unique: str, tmp_path: Path
) -> None:
    marker = tmp_path / "second-time"
    define(
        pipelines,
        unique,
        shell("first", "echo once"),
        shell("flaky", f"test -f {marker} || {{ touch {marker}; exit 1; }}", depends_on=["first"]),
    )
    run = pipelines.wait_for_run(pipelines.trigger(unique).id, timeout=30, raise_on_failure=False)
    assert run.state == "failed" and run.task("flaky").state == "failed"
    assert pipelines.retry_run(run.id).state in ("queued", "running")
    retried = pipelines.wait_for_run(run.id, timeout=30)
    assert retried.state == "succeeded"
    assert len(retried.task("first").attempts) == 1, "a succeeded task is not run again"
    assert [a.state for a in retried.task("flaky").attempts] == ["failed", "succeeded"]
    with pytest.raises(ConflictError) as refused:
        pipelines.retry_run(run.id)
    assert refused.value.code == "RUN_NOT_RETRYABLE"


def test_schedules_are_created_paused_and_deleted(pipelines: PipelinesClient, unique: str) -> None:
    define(pipelines, unique, shell("a", "true"), parameters={"day": {"type": "string", "default": "x"}})
    created = pipelines.create_schedule(unique, "0 3 * * *", timezone="Europe/Paris", parameters={"day": "y"})
    assert (created.cron, created.timezone, created.enabled, created.parameters) == (
        "0 3 * * *", "Europe/Paris", True, {"day": "y"},
    )  # fmt: skip
    assert created.next_run_at is not None and created.next_run_at > datetime.now(UTC)
    local = created.next_run_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (3, 0)
    assert [s.id for s in pipelines.iter_schedules(pipeline=unique)] == [created.id]
    paused = pipelines.update_schedule(created.id, enabled=False)
    assert paused.enabled is False and pipelines.get_schedule(created.id).enabled is False
    for cron, timezone in (("not a cron", "UTC"), ("0 3 * * *", "Mars/Olympus")):
        with pytest.raises(ValidationError) as refused:
            pipelines.create_schedule(unique, cron, timezone=timezone)
        assert refused.value.status == 422
    pipelines.delete_schedule(created.id)
    with pytest.raises(NotFoundError):
        pipelines.get_schedule(created.id)


def test_a_backfill_starts_one_run_per_logical_date(pipelines: PipelinesClient, unique: str) -> None:
    define(pipelines, unique, shell("day", "echo {{ run.logical_date }}"))
    result = pipelines.backfill(unique, "2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z", cron="0 0 * * *")
    assert result.count == len(result.runs) == 3
    dates = sorted(r.logical_date for r in result.runs if r.logical_date)
    assert [d.astimezone(UTC).date().isoformat() for d in dates] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert {r.trigger for r in result.runs} == {"backfill"}
    for r in result.runs:
        assert pipelines.wait_for_run(r.id, timeout=30).succeeded
    assert len(list(pipelines.iter_runs(pipeline=unique, trigger="backfill"))) == 3


def test_a_webhook_starts_a_run_with_its_parameters(pipelines: PipelinesClient, unique: str) -> None:
    define(
        pipelines,
        unique,
        shell("a", "echo {{ params.who }} {{ params.n }}"),
        parameters={"who": {"type": "string", "default": "x"}, "n": {"type": "int", "default": 0}},
    )
    hook = pipelines.create_webhook(unique, parameters={"who": "hook"})
    assert hook.token and hook.url and hook.url.endswith(hook.token)
    assert [(h.id, h.token) for h in pipelines.list_webhooks(unique)] == [(hook.id, None)], "shown once"
    run = pipelines.fire_webhook(hook.token, {"n": 2})
    assert run.trigger == "webhook" and run.parameters == {"who": "hook", "n": 2}
    assert pipelines.wait_for_run(run.id, timeout=30).succeeded
    text, _, _ = pipelines.logs(run.id, "a")
    assert "\nhook 2\n" in text
    pipelines.delete_webhook(hook.id)
    with pytest.raises(NotFoundError):
        pipelines.fire_webhook(hook.token)


def test_an_alert_route_starts_its_pipeline_once(pipelines: PipelinesClient, unique: str) -> None:
    define(
        pipelines, unique, shell("a", "echo {{ params.reason }}"), parameters={"reason": {"type": "string"}}
    )
    route = pipelines.create_alert_route(
        f"{unique}-drift",
        unique,
        match={"model": "churn"},
        parameters={"reason": "{{ alert.labels.model }}"},
        cooldown_seconds=3600,
    )
    assert route.id in {r.id for r in pipelines.list_alert_routes()}
    alert = {
        "status": "firing",
        "labels": {"alertname": f"{unique}-drift", "model": "churn"},
        "fingerprint": "f1",
    }
    payload = {"version": "4", "status": "firing", "alerts": [alert]}
    answer = pipelines.notify_alerts(payload)
    [started] = answer["started"]
    run = pipelines.wait_for_run(started["run_id"], timeout=30)
    assert run.trigger == "alertmanager" and run.parameters == {"reason": "churn"}
    assert pipelines.notify_alerts(payload)["started"] == [], "inside the cooldown"
    pipelines.delete_alert_route(route.id)
    assert route.id not in {r.id for r in pipelines.list_alert_routes()}


def test_the_platform_client_finds_the_orchestrator_from_the_environment(
    orchestrator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_PIPELINE_ORCHESTRATOR_URL", orchestrator_url)
    with MlopsClient() as platform:
        assert platform.pipelines.base_url == orchestrator_url
        assert platform.pipelines.health()["status"] == "ok"


def test_cancel_stops_a_running_task(pipelines: PipelinesClient, unique: str) -> None:
    define(pipelines, unique, shell("sleepy", "sleep 30"), shell("next", "true", depends_on=["sleepy"]))
    run = pipelines.trigger(unique)
    running(pipelines, run.id, "sleepy")
    cancelling = pipelines.cancel_run(run.id)
    assert cancelling.state in ("cancelling", "cancelled")
    started = time.monotonic()
    with pytest.raises(PipelineRunFailedError) as cancelled:
        pipelines.wait_for_run(run.id, timeout=20)
    assert time.monotonic() - started < 15, "the sleeping task was stopped, not waited for"
    assert cancelled.value.code == "RUN_CANCELLED" and cancelled.value.run.state == "cancelled"
    assert cancelled.value.run.task("sleepy").state == "cancelled"
    with pytest.raises(ConflictError) as finished:
        pipelines.cancel_run(run.id)
    assert finished.value.code == "RUN_FINISHED"


def test_a_pipeline_with_an_active_run_is_not_deleted(pipelines: PipelinesClient, unique: str) -> None:
    define(pipelines, unique, shell("sleepy", "sleep 30"))
    run = pipelines.trigger(unique)
    with pytest.raises(ConflictError) as refused:
        pipelines.delete_pipeline(unique)
    assert refused.value.code == "PIPELINE_HAS_ACTIVE_RUNS"
    pipelines.cancel_run(run.id)
    pipelines.wait_for_run(run.id, timeout=20, raise_on_failure=False)
    pipelines.delete_pipeline(unique)


# retry policy, against a real socket server that answers 503 first ----------------------------
class Busy:
    """Answers 503 to the first `failures` requests, then 200 with `body`; counts requests."""

    def __init__(self, failures: int, body: bytes):
        self.failures, self.body, self.requests = failures, body, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        lengths = [
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ]
        while len(body) < (lengths[0] if lengths else 0):
            body += conn.recv(65536)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._read(conn)
                self.requests += 1
                ok = self.requests > self.failures
                body = self.body if ok else b'{"error": {"code": "BUSY", "message": "busy"}}'
                status = b"200 OK" if ok else b"503 Service Unavailable"
                conn.sendall(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nConnection: close"
                    b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )


@pytest.fixture
def busy() -> Iterator[Busy]:
    server = Busy(2, b'{"items": [], "total": 0, "limit": 100, "offset": 0, "next_offset": null}')
    yield server
    server.sock.close()


def test_a_trigger_is_sent_once_even_when_the_service_is_busy(busy: Busy) -> None:
    with PipelinesClient(busy.url) as client, pytest.raises(ServerError) as failed:
        client.trigger("p", {"n": 1})
    assert failed.value.status == 503 and busy.requests == 1


def test_reads_are_retried_through_503s(busy: Busy) -> None:
    with PipelinesClient(busy.url) as client:
        assert client.list_runs().items == []
    assert busy.requests == 3


def test_retraining_policies_through_the_client(pipelines: PipelinesClient, unique: str) -> None:
    model = unique.replace("_", "-")[:60]
    define(pipelines, f"retrain-{model}", shell("train", "true"))
    policy = pipelines.set_retraining_policy(model, {"pipeline": f"retrain-{model}", "cooldown_seconds": 600})
    assert (policy["model"], policy["cooldown_seconds"], policy["alerts"]) == (model, 600, True)
    setup = pipelines.setup_retraining(model, {"data_drift_threshold": 0.2, "evaluation_window": 30})
    assert setup["drift"]["threshold"] == 0.2 and setup["drift"]["window_minutes"] == 30
    assert pipelines.get_retraining_policy(model)["pipeline"] == "train-classifier"
    assert model in [p["model"] for p in pipelines.list_retraining_policies(limit=1000)["items"]]
    # no registry behind this orchestrator: the drift signal is unavailable, nothing fires
    [signal] = pipelines.evaluate_retraining(model)["signals"]
    assert signal["kind"] == "drift" and signal["status"] == "unavailable" and not signal["fired"]
    pipelines.set_retraining_policy(model, {"pipeline": f"retrain-{model}"})
    alert = {"status": "firing", "labels": {"alertname": "ModelDrift", "model": model}}
    answer = pipelines.notify_alerts({"version": "4", "alerts": [alert]})
    [started] = answer["started"]
    [record] = pipelines.retraining_triggers(model)["items"]
    assert (record["kind"], record["decision"], record["run_id"]) == ("alert", "started", started["run_id"])
    pipelines.delete_retraining_policy(model)
    with pytest.raises(NotFoundError):
        pipelines.get_retraining_policy(model)


def test_an_uploaded_file_comes_back_from_its_uri(pipelines: PipelinesClient, tmp_path: Path) -> None:
    source = tmp_path / "world.csv"
    source.write_bytes(b"a,label\n" + b"1.5,0\n" * 5000)
    uploaded = pipelines.upload(source)
    assert uploaded["name"] == "world.csv" and uploaded["size"] == source.stat().st_size
    assert uploaded["uri"].startswith("mlops-artifacts://uploads/")
    also = pipelines.upload(b"x,y\n", name="tiny.csv")
    assert also["size"] == 4 and also["uri"].endswith("/tiny.csv")
    back = pipelines.download_artifact(uploaded["uri"], tmp_path / "out")
    assert back.read_bytes() == source.read_bytes()
    (tmp_path / "dir").mkdir()
    assert pipelines.download_artifact(also["uri"], tmp_path / "dir").read_bytes() == b"x,y\n"
    with pytest.raises(NotFoundError):
        pipelines.download_artifact("mlops-artifacts://uploads/none/x.csv", tmp_path / "none")
