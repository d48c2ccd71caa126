"""The worker's runner: every task kind run for real (callables, commands, a local HTTP server)."""

from __future__ import annotations

import io
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orchestrator_task_fixtures
import pytest
from mlops_kit.testing import free_port, wait_until
from pipeline_orchestrator.protocol import TaskPayload, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.worker import artifacts
from pipeline_orchestrator.worker.runner import (
    EXIT_CANCELLED,
    EXIT_TIMED_OUT,
    execute,
    is_cancelled,
    is_timed_out,
    kill_active_children,
)

FIXTURES = "orchestrator_task_fixtures"
TESTS_DIR = str(Path(orchestrator_task_fixtures.__file__).parent)


@pytest.fixture
def settings(tmp_path: Path) -> OrchestratorSettings:
    return OrchestratorSettings(data_dir=tmp_path / "data")


def payload(kind: str, spec: dict[str, Any], **fields: Any) -> TaskPayload:
    base: dict[str, Any] = {
        "attempt_id": "att-1",
        "run_id": "run-1",
        "pipeline": "pipe",
        "task": "train",
        "attempt": 1,
        "kind": kind,
        "spec": spec,
    }
    return TaskPayload(**{**base, **fields})


def python(function: str, **inputs: Any) -> dict[str, Any]:
    return {"callable": f"{FIXTURES}:{function}", "inputs": inputs}


class Run:
    """execute() with a fresh log buffer."""

    def __init__(self, settings: OrchestratorSettings):
        self.settings = settings
        self.log = io.StringIO()

    def __call__(self, p: TaskPayload, **kwargs: Any) -> TaskResult:
        self.log = io.StringIO()
        return execute(p, log=self.log, settings=self.settings, **kwargs)

    @property
    def text(self) -> str:
        return self.log.getvalue()


@pytest.fixture
def run(settings: OrchestratorSettings) -> Run:
    return Run(settings)


def stored(settings: OrchestratorSettings, uri: str) -> bytes:
    store = artifacts.get_store(settings)
    return b"".join(store.open(artifacts.resolve(uri)))


# python ---------------------------------------------------------------------------------------
def test_python_task_returns_its_dict_as_outputs(run: Run) -> None:
    result = run(payload("python", python("add", a=1, b=2.5)))
    assert result == TaskResult(ok=True, outputs={"sum": 3.5}, error=None, exit_status=0)


def test_none_is_no_outputs_and_a_scalar_is_result(run: Run) -> None:
    assert run(payload("python", python("noop"))).outputs == {}
    assert run(payload("python", python("returns_scalar"))).outputs == {"result": 42}


def test_a_dotted_attribute_path_is_resolved(run: Run) -> None:
    spec = {"callable": f"{FIXTURES}:Namespace.Inner.method", "inputs": {"value": 7}}
    assert run(payload("python", spec)).outputs == {"value": 7}


def test_an_exception_fails_with_its_traceback_in_error_and_log(run: Run) -> None:
    result = run(payload("python", python("boom", message="bad input")))
    assert not result.ok and result.exit_status == 1
    assert result.error is not None
    assert result.error.startswith("Traceback") and result.error.endswith("ValueError: bad input")
    assert "orchestrator_task_fixtures.py" in result.error and "runner.py" not in result.error
    assert "ValueError: bad input" in run.text


def test_an_unimportable_module_is_a_clear_error(run: Run) -> None:
    result = run(payload("python", {"callable": "no_such_package.mod:fn", "inputs": {}}))
    assert not result.ok and result.exit_status == 1
    assert "cannot import 'no_such_package.mod'" in (result.error or "")


def test_a_missing_attribute_is_a_clear_error(run: Run) -> None:
    result = run(payload("python", {"callable": f"{FIXTURES}:Namespace.Nope", "inputs": {}}))
    assert (
        result.error
        == f"callable '{FIXTURES}:Namespace.Nope': '{FIXTURES}.Namespace' has no attribute 'Nope'"
    )


def test_sys_exit_becomes_the_exit_status(run: Run) -> None:
    result = run(payload("python", python("exits", code=3)))
    assert (result.ok, result.exit_status) == (False, 3)
    assert "sys.exit(3)" in (result.error or "")


def test_an_unserialisable_output_names_its_key(run: Run) -> None:
    result = run(payload("python", python("returns_unserialisable")))
    assert not result.ok and result.exit_status == 1
    assert (result.error or "").startswith("output 'nested.bad' is not JSON-serialisable")


def test_outputs_become_plain_json_values(run: Run) -> None:
    result = run(payload("python", python("returns_plain_values")))
    assert result.outputs == {"when": "2024-01-02T03:04:05+00:00", "items": [1, 2]}


def test_context_is_passed_only_to_functions_that_name_it(run: Run) -> None:
    result = run(payload("python", python("with_context", tag="x"), attempt=3, task="fit"))
    assert result.outputs == {"run_id": "run-1", "pipeline": "pipe", "task": "fit", "attempt": 3}
    assert "INFO task.fit: running fit attempt 3 x" in run.text
    assert run(payload("python", python("echo", a=1))).outputs == {"a": 1}


def test_an_input_named_context_clashes_with_the_task_context(run: Run) -> None:
    result = run(payload("python", python("with_context", context="mine")))
    assert not result.ok and "clashes" in (result.error or "")


def test_prints_and_root_logging_go_to_the_log_and_are_restored(run: Run) -> None:
    stdout, stderr = sys.stdout, sys.stderr
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    assert run(payload("python", python("chatty"))).ok
    assert "to stdout\n" in run.text and "to stderr\n" in run.text
    assert "INFO user.code: an info record" in run.text
    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    assert (root.handlers, root.level) == (handlers, level)


def test_output_of_threads_the_task_starts_goes_to_the_log(run: Run) -> None:
    assert run(payload("python", python("prints_from_thread"))).ok
    assert "from a thread the task started" in run.text


def test_the_log_has_a_header_and_a_footer(run: Run) -> None:
    run(payload("python", python("noop"), task="prep", attempt=2))
    first, *_, last = run.text.splitlines()
    assert first.startswith("--- prep attempt 2 (python) started ")
    assert last.startswith("--- prep attempt 2 succeeded in ")
    run(payload("python", python("boom")))
    assert run.text.splitlines()[-1].startswith("--- train attempt 1 failed in ")


def test_payload_env_is_visible_to_the_task_and_removed_after(run: Run) -> None:
    name = "MLOPS_TEST_WORKER_ENV"
    result = run(payload("python", python("getenv", name=name), env={name: "from-payload"}))
    assert result.outputs == {"value": "from-payload"}
    assert name not in os.environ


def test_concurrent_attempts_in_threads_keep_their_logs_apart(settings: OrchestratorSettings) -> None:
    logs = [io.StringIO() for _ in range(4)]

    def attempt(i: int) -> None:
        for _ in range(20):
            execute(payload("python", python("chatty"), task=f"t{i}"), log=logs[i], settings=settings)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, log in enumerate(logs):
        text = log.getvalue()
        assert text.count("to stdout\n") == 20, text
        assert all(f"t{j} " not in text for j in range(4) if j != i)


def test_a_noop_task_costs_well_under_a_millisecond(settings: OrchestratorSettings) -> None:
    p = payload("python", python("noop"))
    log = io.StringIO()
    execute(p, log=log, settings=settings)
    timings = []
    for _ in range(300):
        started = time.perf_counter()
        execute(p, log=log, settings=settings)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.0005


def test_an_unknown_kind_fails_clearly(run: Run) -> None:
    result = run(payload("spark", {}))
    assert not result.ok and (result.error or "").startswith("unknown task kind 'spark'")


# artifacts ------------------------------------------------------------------------------------
def test_files_left_in_artifacts_dir_are_uploaded_and_listed(
    run: Run, settings: OrchestratorSettings
) -> None:
    result = run(
        payload("python", python("writes_artifact", text="weights"), artifact_prefix="runs/r/train/1/")
    )
    assert result.ok, result.error
    listed = result.outputs["artifacts"]
    assert listed == {
        "model.txt": "mine",  # the task's own value wins
        "sub/metrics.json": "mlops-artifacts://runs/r/train/1/sub/metrics.json",
        "notes/readme.md": "mlops-artifacts://runs/r/train/1/notes/readme.md",
    }
    assert result.outputs["saved"] == listed["notes/readme.md"]
    assert stored(settings, "mlops-artifacts://runs/r/train/1/model.txt") == b"weights"
    assert stored(settings, listed["sub/metrics.json"]) == b'{"a": 1}'
    assert stored(settings, listed["notes/readme.md"]) == b"# notes"


def test_a_task_reads_an_upstream_artifact(run: Run) -> None:
    first = run(payload("python", python("writes_artifact", text="upstream"), task="a"))
    uri = "mlops-artifacts://runs/run-1/a/1/model.txt"
    assert first.ok and artifacts.resolve(uri) == "runs/run-1/a/1/model.txt"
    second = run(payload("python", python("reads_artifact", uri=uri), task="b"))
    assert second.outputs == {"text": "upstream", "path_exists": True}


def test_a_missing_artifact_fails_the_reading_task(run: Run) -> None:
    result = run(payload("python", python("reads_artifact", uri="mlops-artifacts://runs/x/none.bin")))
    assert not result.ok and "does not exist" in (result.error or "")


def test_artifact_uris_are_checked() -> None:
    with pytest.raises(artifacts.ArtifactError):
        artifacts.resolve("s3://bucket/key")
    with pytest.raises(artifacts.ArtifactError):
        artifacts.resolve("mlops-artifacts://runs/../../etc/passwd")
    assert artifacts.attempt_prefix("r", "t[3]", 2) == "runs/r/t[3]/2/"


# heartbeat ------------------------------------------------------------------------------------
def test_a_false_heartbeat_cancels_a_python_task(run: Run) -> None:
    beats: list[float] = []

    def heartbeat() -> bool:
        beats.append(time.monotonic())
        return len(beats) < 3

    started = time.monotonic()
    result = run(
        payload("python", python("sleeps", seconds=10)), heartbeat=heartbeat, heartbeat_interval=0.05
    )
    assert is_cancelled(result) and result.exit_status == EXIT_CANCELLED
    assert len(beats) == 3 and time.monotonic() - started < 5
    assert run.text.splitlines()[-1].startswith("--- train attempt 1 cancelled in ")


def test_the_heartbeat_is_called_while_the_task_runs(run: Run) -> None:
    beats: list[float] = []

    def heartbeat() -> bool:
        beats.append(time.monotonic())
        return True

    result = run(
        payload("python", python("sleeps", seconds=0.3)), heartbeat=heartbeat, heartbeat_interval=0.05
    )
    assert result.ok and result.outputs == {"stopped_early": False}
    assert len(beats) >= 3


# shell ----------------------------------------------------------------------------------------
def test_shell_outputs_are_the_exit_code_and_the_json_it_wrote(run: Run) -> None:
    command = 'echo working; echo \'{"rows": 10, "exit_code": 99}\' > "$MLOPS_TASK_OUTPUTS"'
    result = run(payload("shell", {"command": command}))
    assert result == TaskResult(ok=True, outputs={"rows": 10, "exit_code": 0}, exit_status=0)
    assert "working\n" in run.text


def test_a_shell_list_command_runs_without_a_shell(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    script = "import sys; open(sys.argv[1], 'w').write(sys.argv[2])"
    result = run(payload("shell", {"command": [sys.executable, "-c", script, str(target), "$HOME"]}))
    assert result.ok and target.read_text() == "$HOME"


def test_shell_env_has_task_and_payload_env_and_the_attempt(run: Run) -> None:
    command = (
        'printf \'{"a": "%s", "b": "%s", "run": "%s", "task": "%s", "arts": "%s"}\' '
        '"$A" "$B" "$MLOPS_RUN_ID" "$MLOPS_TASK_NAME" "$MLOPS_ARTIFACTS_DIR" > "$MLOPS_TASK_OUTPUTS"'
    )
    spec = {"command": command, "env": {"A": "task", "B": "task"}}
    result = run(payload("shell", spec, env={"B": "payload"}))
    assert result.ok, result.error
    out = result.outputs
    assert (out["a"], out["b"], out["run"], out["task"]) == ("task", "payload", "run-1", "train")
    assert out["arts"].endswith("artifacts") and not Path(out["arts"]).exists()  # cleaned up


def test_a_failing_command_reports_its_exit_code_and_last_lines(run: Run) -> None:
    command = "for i in $(seq 1 30); do echo line $i; done; echo oops >&2; exit 7"
    result = run(payload("shell", {"command": command}))
    assert (result.ok, result.exit_status, result.outputs) == (False, 7, {"exit_code": 7})
    error = result.error or ""
    assert error.startswith("command exited with 7\n") and error.endswith("line 30\noops")
    assert "line 5\n" not in error and "line 5\n" in run.text


def test_invalid_json_in_the_outputs_file_fails_clearly(run: Run) -> None:
    result = run(payload("shell", {"command": 'echo "{nope" > "$MLOPS_TASK_OUTPUTS"'}))
    assert not result.ok and "$MLOPS_TASK_OUTPUTS does not hold valid JSON" in (result.error or "")
    result = run(payload("shell", {"command": 'echo "[1, 2]" > "$MLOPS_TASK_OUTPUTS"'}))
    assert "must hold a JSON object, not a list" in (result.error or "")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie not yet reaped by init is dead too
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_a_timeout_kills_the_whole_process_group(run: Run, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    command = f"sleep 30 & echo $! > {pidfile}; echo started; wait"
    started = time.monotonic()
    result = run(payload("shell", {"command": command}, timeout_seconds=0.5))
    assert is_timed_out(result) and result.exit_status == EXIT_TIMED_OUT
    assert (result.error or "").startswith("timed out after 0.5s") and "started" in (result.error or "")
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    wait_until(lambda: not _alive(child), timeout=5, what="the background child to die")


def test_a_false_heartbeat_kills_a_shell_command(run: Run) -> None:
    calls: list[int] = []

    def heartbeat() -> bool:
        calls.append(1)
        return len(calls) < 2

    started = time.monotonic()
    result = run(payload("shell", {"command": "sleep 30"}), heartbeat=heartbeat, heartbeat_interval=0.05)
    assert is_cancelled(result) and result.exit_status == EXIT_CANCELLED
    assert time.monotonic() - started < 5


def test_kill_active_children_kills_running_commands(settings: OrchestratorSettings) -> None:
    results: list[TaskResult] = []
    log = io.StringIO()
    p = payload("shell", {"command": "echo up; sleep 30"})
    thread = threading.Thread(target=lambda: results.append(execute(p, log=log, settings=settings)))
    thread.start()
    wait_until(lambda: "up\n" in log.getvalue(), timeout=10, what="the command to start")
    kill_active_children()
    thread.join(timeout=10)
    assert results[0].exit_status == -9 and (results[0].error or "").startswith("command killed by signal 9")


def test_files_a_command_leaves_in_its_artifacts_dir_are_uploaded(
    run: Run, settings: OrchestratorSettings
) -> None:
    result = run(payload("shell", {"command": 'echo 1,2 > "$MLOPS_ARTIFACTS_DIR/data.csv"'}))
    uri = result.outputs["artifacts"]["data.csv"]
    assert uri == "mlops-artifacts://runs/run-1/train/1/data.csv"
    assert stored(settings, uri) == b"1,2\n"


def test_a_missing_executable_fails_with_127(run: Run) -> None:
    result = run(payload("shell", {"command": ["/no/such/program", "x"]}))
    assert (result.ok, result.exit_status) == (False, 127)
    assert "cannot start '/no/such/program'" in (result.error or "")


# http -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = f"import orchestrator_task_fixtures as f; f.serve_http({port})"
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/json").status_code == 200, timeout=20, what="test HTTP server")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_http_json_answer_becomes_outputs(run: Run, http_url: str) -> None:
    result = run(payload("http", {"url": f"{http_url}/json"}))
    assert result.ok and result.outputs["status_code"] == 200
    assert result.outputs["json"] == {"hello": "world"}
    assert result.outputs["headers"]["content-type"] == "application/json"
    assert result.outputs["headers"]["x-request-id"] == "req-1"


def test_http_post_sends_the_body_as_json_with_headers(run: Run, http_url: str) -> None:
    spec = {"method": "POST", "url": f"{http_url}/echo", "body": {"n": [1, 2]}, "headers": {"X-Token": "t"}}
    result = run(payload("http", spec))
    assert result.outputs["status_code"] == 201
    assert result.outputs["json"] == {"method": "POST", "body": {"n": [1, 2]}, "x_token": "t"}


def test_http_text_is_kept_up_to_64_kib(run: Run, http_url: str) -> None:
    assert run(payload("http", {"url": f"{http_url}/text"})).outputs["text"] == "plain words"
    assert len(run(payload("http", {"url": f"{http_url}/big"})).outputs["text"]) == 64 * 1024


def test_http_follows_redirects(run: Run, http_url: str) -> None:
    assert run(payload("http", {"url": f"{http_url}/redirect"})).outputs["json"] == {"hello": "world"}


def test_an_unexpected_http_status_fails_with_the_status_and_body(run: Run, http_url: str) -> None:
    result = run(payload("http", {"url": f"{http_url}/status/503"}))
    assert (result.ok, result.exit_status, result.outputs) == (False, 1, {"status_code": 503})
    assert f"GET {http_url}/status/503 answered 503, expected 2xx: answered 503 on purpose" == result.error


def test_expect_status_accepts_the_listed_statuses_only(run: Run, http_url: str) -> None:
    accepted = run(payload("http", {"url": f"{http_url}/status/404", "expect_status": [404]}))
    assert accepted.ok and accepted.outputs["text"] == "answered 404 on purpose"
    refused = run(payload("http", {"url": f"{http_url}/json", "expect_status": [202]}))
    assert not refused.ok and "answered 200, expected [202]" in (refused.error or "")


def test_a_slow_http_answer_times_out(run: Run, http_url: str) -> None:
    result = run(payload("http", {"url": f"{http_url}/slow"}, timeout_seconds=0.3))
    assert is_timed_out(result) and (result.error or "").startswith("timed out after 0.3s")


def test_an_unreachable_http_url_fails_clearly(run: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    result = run(payload("http", {"url": url}))
    assert not result.ok and (result.error or "").startswith(f"GET {url} failed: ConnectError")


# hpo trials without tracking ------------------------------------------------------------------
def trial(objective: str, **spec: Any) -> dict[str, Any]:
    return {"callable": f"{FIXTURES}:{objective}", "metric": "score", "trial_number": 4, **spec}


def test_a_trial_returning_a_number_reports_it_as_the_metric(run: Run) -> None:
    result = run(payload("trial", trial("objective", params={"x": 1.5}, inputs={"offset": 1.0})))
    assert result.outputs == {
        "value": 0.75,
        "metrics": {"score": 0.75},
        "params": {"x": 1.5},
        "run_id": None,
        "trial_number": 4,
        "outputs": {},
    }


def test_a_trial_returning_metrics_reports_the_chosen_one(run: Run) -> None:
    result = run(payload("trial", trial("objective_dict", params={"x": 0.25}, metric="accuracy")))
    assert result.outputs["value"] == 0.75
    assert result.outputs["metrics"] == {"accuracy": 0.75, "loss": 0.3}
    assert result.outputs["outputs"] == {"note": "fine"}


def test_a_non_finite_trial_value_fails_the_trial(run: Run) -> None:
    result = run(payload("trial", trial("objective_nan", params={"x": 1})))
    assert not result.ok and result.error == "the objective's 'score' is nan, not a finite number"


def test_a_trial_without_its_metric_fails(run: Run) -> None:
    result = run(payload("trial", trial("objective_missing_metric", params={})))
    assert not result.ok and "has no numeric 'score'" in (result.error or "")


# platform steps that fail before any call -----------------------------------------------------
def test_an_unknown_platform_step_or_input_is_refused(run: Run) -> None:
    result = run(payload("platform", {"step": "deploy", "inputs": {}}))
    assert (result.error or "").startswith("unknown platform step 'deploy'")
    result = run(payload("platform", {"step": "register_model", "inputs": {"name": "m", "colour": 1}}))
    assert (result.error or "").startswith("register_model: unknown input(s) ['colour']")
    result = run(payload("platform", {"step": "register_model", "inputs": {}}))
    assert result.error == "register_model: missing input(s) ['name']"
