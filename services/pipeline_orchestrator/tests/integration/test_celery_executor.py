"""The Celery executor for real: Redis, the orchestrator as a process, two Celery worker processes.

The workers run tasks from ``orchestrator_celery_fixtures`` and report over the worker API; the
orchestrator runs with a 3 s lease so a killed worker is noticed quickly.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlops_kit.testing import ServiceProcess, wait_until

TESTS_DIR = Path(__file__).resolve().parents[1]
FIX = "orchestrator_celery_fixtures"
LEASE_SECONDS = 3
FINISHED = {"succeeded", "failed", "cancelled"}


class CeleryWorker:
    """``celery -A pipeline_orchestrator.executors.celery_app worker`` in its own process group."""

    def __init__(self, name: str, queue: str, env: dict[str, str], tmp: Path):
        self.name = name
        self.queue = queue
        self.env = env
        self.log_path = tmp / f"celery-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> CeleryWorker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pipeline_orchestrator.executors.celery_app",
                "worker",
                "-Q",
                self.queue,
                "-c",
                "2",
                "-n",
                f"{self.name}@%h",
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker {self.name} exited:\n{self.log_tail()}")
            return b" ready." in self.log_path.read_bytes()

        wait_until(ready, timeout=30, what=f"celery worker {self.name}", interval=0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): a machine that died."""
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def begin_stop(self) -> None:
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGQUIT)  # cold shutdown: do not wait for tasks

    def stop(self) -> None:
        self.begin_stop()
        if not self.alive():
            return
        assert self.process is not None
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_bytes()[-chars:].decode(errors="replace") if self.log_path.exists() else ""


class Env:
    def __init__(self, service: ServiceProcess, workers: dict[str, CeleryWorker], tmp: Path, queue: str):
        self.queue = queue
        self.service = service
        self.workers = workers
        self.tmp = tmp
        self.http = httpx.Client(base_url=service.url, timeout=10)

    def diagnostics(self) -> str:
        parts = [f"--- orchestrator\n{self.service.log_tail()}"]
        parts += [f"--- {w.name}\n{w.log_tail()}" for w in self.workers.values()]
        return "\n".join(parts)

    def pipeline(self, definition: dict[str, Any]) -> str:
        response = self.http.post("/api/pipelines", json=definition)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["name"])

    def start_run(self, pipeline: str, parameters: dict[str, Any] | None = None) -> str:
        response = self.http.post(f"/api/pipelines/{pipeline}/runs", json={"parameters": parameters or {}})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_run(self, run_id: str, states: set[str] = FINISHED, timeout: float = 30) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["state"] in states else None

        try:
            return wait_until(done, timeout=timeout, what=f"run {run_id} in {states}", interval=0.1)
        except TimeoutError:
            raise AssertionError(f"{self.run(run_id)}\n{self.diagnostics()}") from None

    def wait_attempt_running(self, run_id: str, task: str, number: int = 1) -> dict[str, Any]:
        """Until the worker has reported ``started`` (the attempt has a worker)."""

        def running() -> dict[str, Any] | None:
            for t in self.run(run_id)["tasks"]:
                if t["name"] == task:
                    for a in t["attempts"]:
                        if a["number"] == number and a["state"] == "running" and a["worker"]:
                            return dict(a)
            return None

        try:
            return wait_until(running, timeout=20, what=f"{task} attempt {number} running", interval=0.05)
        except TimeoutError:
            raise AssertionError(f"{self.run(run_id)}\n{self.diagnostics()}") from None

    def logs(self, run_id: str, task: str, attempt: int | None = None) -> str:
        params = {"attempt": attempt} if attempt else {}
        response = self.http.get(f"/api/runs/{run_id}/tasks/{task}/logs", params=params)
        assert response.status_code == 200, response.text
        return response.text


def worker_of(attempt: dict[str, Any]) -> str:
    """The Celery node of an attempt's ``worker`` ("w1-abc@host:pid" -> "w1-abc")."""
    return str(attempt["worker"]).split("@", 1)[0]


@pytest.fixture(scope="module")
def celery_env(local_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("celery")
    suffix = uuid.uuid4().hex[:8]
    queue = f"mlops-test-{suffix}"
    common = {
        "MLOPS_PIPELINE_ORCHESTRATOR_EXECUTOR": "celery",
        "MLOPS_PIPELINE_ORCHESTRATOR_CELERY_BROKER_URL": local_redis_url,
        "MLOPS_PIPELINE_ORCHESTRATOR_CELERY_QUEUE": queue,
        "MLOPS_PIPELINE_ORCHESTRATOR_DATA_DIR": str(tmp / "data"),
        "MLOPS_PIPELINE_ORCHESTRATOR_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    service = ServiceProcess(
        "pipeline_orchestrator",
        env=common | {"MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.25"},
        tmp=tmp,
    )
    pythonpath = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH")) if p)
    worker_env = {**os.environ, **common, "PYTHONPATH": pythonpath, "MLOPS_LOG_LEVEL": "WARNING"}
    workers = {name: CeleryWorker(f"{name}-{suffix}", queue, worker_env, tmp) for name in ("w1", "w2")}
    try:
        for w in workers.values():
            w.start()
        service.start()
        for w in workers.values():
            w.wait_ready()
        env = Env(service, workers, tmp, queue)
        yield env
        env.http.close()
    finally:
        for w in workers.values():
            w.begin_stop()
        for w in workers.values():
            w.stop()
        service.stop()
        _clean_redis(local_redis_url, queue)


def _clean_redis(url: str, queue: str) -> None:
    """Drop the test queue and the unacknowledged message the killed worker left behind."""
    import redis

    conn = redis.Redis.from_url(url)
    conn.delete(queue)
    for key, value in conn.hscan_iter("unacked"):
        if queue.encode() in value:
            conn.hdel("unacked", key)
            conn.zrem("unacked_index", key)


def test_fan_out_runs_on_both_workers(celery_env: Env) -> None:
    n = 12
    tasks: list[dict[str, Any]] = [
        {"name": f"part{i}", "kind": "python", "callable": f"{FIX}:where", "inputs": {"i": i, "delay": 0.1}}
        for i in range(n)
    ]
    tasks.append(
        {
            "name": "gather",
            "kind": "python",
            "callable": f"{FIX}:gather",
            "depends_on": [f"part{i}" for i in range(n)],
            "inputs": {f"p{i}": f"{{{{ tasks.part{i}.outputs.worker }}}}" for i in range(n)},
        }
    )
    name = celery_env.pipeline({"name": f"fanout-{uuid.uuid4().hex[:6]}", "tasks": tasks})
    run_id = celery_env.start_run(name)
    run = celery_env.wait_run(run_id)
    assert run["state"] == "succeeded", f"{run}\n{celery_env.diagnostics()}"

    assert all(t["state"] == "succeeded" for t in run["tasks"])
    # one attempt each: waiting in the queue behind the others is not being lost
    assert all([a["state"] for a in t["attempts"]] == ["succeeded"] for t in run["tasks"]), run["tasks"]
    final = {t["name"]: t["attempts"][0] for t in run["tasks"]}
    nodes = {worker_of(a) for a in final.values()}
    assert nodes == {w.name for w in celery_env.workers.values()}, nodes
    # what the tasks saw agrees with what the orchestrator recorded
    for t in run["tasks"]:
        if t["name"].startswith("part"):
            attempt = final[t["name"]]
            assert t["outputs"]["worker"].split("@")[0] == worker_of(attempt)
            assert attempt["worker"].endswith(f":{t['outputs']['pid']}")
    gather = next(t for t in run["tasks"] if t["name"] == "gather")
    assert gather["outputs"]["count"] == n
    assert {w.split("@")[0] for w in gather["outputs"]["workers"]} == nodes
    # the log came over the worker API
    log = celery_env.logs(run_id, "part0")
    assert "part0 attempt 1" in log and "succeeded" in log


def test_cancel_stops_the_running_task(celery_env: Env) -> None:
    release = celery_env.tmp / f"never-{uuid.uuid4().hex[:6]}"
    started = celery_env.tmp / f"started-{uuid.uuid4().hex[:6]}"
    name = celery_env.pipeline(
        {
            "name": f"cancel-{uuid.uuid4().hex[:6]}",
            "tasks": [
                {
                    "name": "block",
                    "kind": "python",
                    "callable": f"{FIX}:wait_for",
                    "inputs": {"release": str(release), "started": str(started)},
                },
                {"name": "after", "kind": "python", "callable": f"{FIX}:where", "depends_on": ["block"]},
            ],
        }
    )
    run_id = celery_env.start_run(name)
    celery_env.wait_attempt_running(run_id, "block")
    wait_until(started.exists, timeout=10, what="the task to start")
    pid = int(started.read_text().split()[1])

    response = celery_env.http.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    run = celery_env.wait_run(run_id, timeout=15)
    assert run["state"] == "cancelled"
    states = {t["name"]: t["state"] for t in run["tasks"]}
    assert states["block"] == "cancelled", states
    assert states["after"] != "succeeded", states

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    # the pool process running the task was killed (revoke terminate=True, SIGKILL)
    wait_until(gone, timeout=10, what=f"task process {pid} to stop")
    assert all(w.alive() for w in celery_env.workers.values())


def test_kubernetes_job_command_runs_an_attempt(celery_env: Env, local_redis_url: str) -> None:
    """What a Kubernetes Job's container does, without a cluster: the attempts the orchestrator
    sent are taken off the broker (the Celery workers are told to stop consuming), and each is run
    with the command and the environment of the Job manifest made for it."""
    from celery import Celery
    from pipeline_orchestrator.executors.kubernetes import job_manifest
    from pipeline_orchestrator.protocol import TaskPayload
    from pipeline_orchestrator.settings import OrchestratorSettings

    control = Celery(broker=local_redis_url, set_as_current=False).control
    nodes = [f"{w.name}@{socket.gethostname()}" for w in celery_env.workers.values()]
    replies = control.cancel_consumer(celery_env.queue, destination=nodes, reply=True, timeout=5)
    assert len(replies) == len(nodes), replies
    try:
        name = celery_env.pipeline(
            {
                "name": f"job-{uuid.uuid4().hex[:6]}",
                "tasks": [
                    {"name": "fine", "kind": "python", "callable": f"{FIX}:where", "inputs": {"i": 7}},
                    {"name": "bad", "kind": "python", "callable": f"{FIX}:boom", "inputs": {"message": "x!"}},
                ],
            }
        )
        run_id = celery_env.start_run(name)
        payloads = [TaskPayload.from_dict(m) for m in _take_messages(local_redis_url, celery_env.queue, 2)]
    finally:
        control.add_consumer(celery_env.queue, destination=nodes, reply=True, timeout=5)

    settings = OrchestratorSettings(executor="kubernetes", lease_seconds=LEASE_SECONDS)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for payload in payloads:
        container = job_manifest(payload, settings, environ={})["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}  # secretKeyRefs: optional
        env |= {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(TESTS_DIR), "MLOPS_ENV_FILE": ""}
        command = [sys.executable, *container["command"][1:]]
        log = open(celery_env.tmp / f"job-{payload.task}.log", "wb")  # noqa: SIM115
        procs[payload.task] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    codes = {task: proc.wait(timeout=30) for task, proc in procs.items()}
    assert codes == {"fine": 0, "bad": 1}, codes

    run = celery_env.wait_run(run_id, timeout=15)
    assert run["state"] == "failed"
    tasks = {t["name"]: t for t in run["tasks"]}
    assert tasks["fine"]["state"] == "succeeded" and tasks["bad"]["state"] == "failed"
    (fine,) = tasks["fine"]["attempts"]
    assert fine["worker"] == f"{socket.gethostname()}:{procs['fine'].pid}"
    assert tasks["fine"]["outputs"] == {"i": 7, "worker": "not-in-celery", "pid": procs["fine"].pid}
    (bad,) = tasks["bad"]["attempts"]
    assert bad["state"] == "failed" and "RuntimeError: x!" in bad["error"]
    assert "about to fail" in celery_env.logs(run_id, "bad")


def _take_messages(url: str, queue: str, count: int) -> list[dict[str, Any]]:
    """The payloads of the next ``count`` run_attempt messages on ``queue`` (Celery protocol 2)."""
    import redis

    conn = redis.Redis.from_url(url)
    found: list[dict[str, Any]] = []

    def take() -> bool:
        raw = conn.lpop(queue)
        if isinstance(raw, bytes | str):
            message = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            found.append(args[0])
        return len(found) == count

    wait_until(take, timeout=15, what=f"{count} messages on {queue}", interval=0.02)
    return found


def test_backlog_is_not_lost(celery_env: Env) -> None:
    """More attempts than worker slots (2 workers x 2): the fifth waits in the queue longer than
    the lease, and simply runs when a slot frees; it is not declared lost (the lease of a remote
    attempt starts when a worker picks it up)."""
    slots = 4
    started = celery_env.tmp / f"backlog-{uuid.uuid4().hex[:6]}"
    seconds = LEASE_SECONDS + 0.3
    tasks = [
        {
            "name": f"busy{i}",
            "kind": "python",
            "callable": f"{FIX}:sleep_for",
            "inputs": {"seconds": seconds, "started": f"{started}-{i}"},
        }
        for i in range(slots + 1)
    ]
    name = celery_env.pipeline({"name": f"backlog-{uuid.uuid4().hex[:6]}", "tasks": tasks})
    run_id = celery_env.start_run(name)
    run = celery_env.wait_run(run_id, timeout=30)
    assert run["state"] == "succeeded", run
    states = [a["state"] for t in run["tasks"] for a in t["attempts"]]
    assert states == ["succeeded"] * (slots + 1), states


def test_timeout_is_reported_as_timed_out(celery_env: Env) -> None:
    started = celery_env.tmp / f"started-{uuid.uuid4().hex[:6]}"
    name = celery_env.pipeline(
        {
            "name": f"slow-{uuid.uuid4().hex[:6]}",
            "tasks": [
                {
                    "name": "nap",
                    "kind": "python",
                    "callable": f"{FIX}:sleep_for",
                    "inputs": {"seconds": 60, "started": str(started)},
                    "timeout_seconds": 1.5,
                }
            ],
        }
    )
    run_id = celery_env.start_run(name)
    run = celery_env.wait_run(run_id, timeout=20)
    assert run["state"] == "failed"
    (attempt,) = run["tasks"][0]["attempts"]
    assert attempt["state"] == "timed_out", attempt
    assert attempt["error"].startswith("timed out after 1.5s")
    assert "timed out after 1.5s" in celery_env.logs(run_id, "nap")


def test_killed_worker_attempt_is_retried_on_the_other(celery_env: Env) -> None:
    release = celery_env.tmp / f"release-{uuid.uuid4().hex[:6]}"
    started = celery_env.tmp / f"started-{uuid.uuid4().hex[:6]}"
    name = celery_env.pipeline(
        {
            "name": f"lost-{uuid.uuid4().hex[:6]}",
            "tasks": [
                {
                    "name": "slow",
                    "kind": "python",
                    "callable": f"{FIX}:wait_for",
                    "inputs": {"release": str(release), "started": str(started)},
                }
            ],
        }
    )
    run_id = celery_env.start_run(name)
    first = celery_env.wait_attempt_running(run_id, "slow")
    victim = next(w for w in celery_env.workers.values() if w.name == worker_of(first))
    survivor = next(w for w in celery_env.workers.values() if w is not victim)

    killed_at = time.monotonic()
    victim.kill()
    release.touch()  # the retry finishes at once

    run = celery_env.wait_run(run_id, timeout=20)
    detected_in = time.monotonic() - killed_at
    assert run["state"] == "succeeded", f"{run}\n{celery_env.diagnostics()}"
    attempts = run["tasks"][0]["attempts"]
    assert [a["state"] for a in attempts] == ["lost", "succeeded"], attempts
    assert "lease expired" in attempts[0]["error"]
    assert worker_of(attempts[1]) == survivor.name
    assert run["tasks"][0]["outputs"]["worker"].split("@")[0] == survivor.name
    assert detected_in < LEASE_SECONDS + 10
