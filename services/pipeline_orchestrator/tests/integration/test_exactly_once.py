"""``kill -9`` of the orchestrator while shell tasks run: the restarted one must never run a task a
second time while the first copy still runs, nor let the first copy finish too (it once did: the
command lived on in its own session and the retry ran beside it).

What the tests cannot ask for: a kill in the instant between a command's last effect and its
exit being committed re-runs it (at least once there, as in any scheduler), so the random kills
fall before a task starts or while it runs."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mlops_kit.testing import ServiceProcess
from mlops_kit.testing.backends import free_port
from orchestrator_helpers import wait_until

FIXTURES = "orchestrator_engine_fixtures"
FINISHED = ("succeeded", "failed", "cancelled")
# the side effect: a start and an end line around a sleep, each naming the attempt and the pid
MARKED = (
    'echo "start $MLOPS_TASK_ATTEMPT $$" >> "$SIDE"; sleep {sleep}; '
    'echo "end $MLOPS_TASK_ATTEMPT $$" >> "$SIDE"'
)


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[dict[str, str]]:
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {
        "MLOPS_DATA_DIR": str(tmp / "data"),
        "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "2",
        "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.2",
        "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
    }
    if backend == "sqlite":
        yield env
        return
    from mlops_kit.testing import fresh_postgres_database

    with fresh_postgres_database("orchonce") as url:
        yield env | {"MLOPS_DATABASE_URL": url}


def _start(env: dict[str, str], tmp: Path, port: int) -> ServiceProcess:
    return ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp, port=port).start()


def _kill(service: ServiceProcess) -> None:
    """SIGKILL to the orchestrator's whole process group: no shutdown hook runs."""
    assert service.process is not None
    os.killpg(service.process.pid, signal.SIGKILL)
    service.process.wait()


def _run(url: str, run_id: str) -> dict:
    return httpx.get(f"{url}/api/runs/{run_id}", timeout=10).json()


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _assert_once(side: Path) -> None:
    """Exactly one attempt got to its end, it was the last one to start, and no copy of any
    attempt is left that could still write."""
    lines = _lines(side)
    pids = [int(pid) for _, _, pid in lines]
    wait_until(lambda: not any(_alive(pid) for pid in pids), 10, "every copy of the task to be gone")
    lines = _lines(side)
    ends = [line for line in lines if line[0] == "end"]
    starts = [line for line in lines if line[0] == "start"]
    assert len(ends) == 1, lines
    assert lines[-1] == ends[0] and starts[-1][1:] == ends[0][1:], lines


def _definition(name: str, side: Path, done: Path) -> dict:
    """A shell task with the marked side effect, then a python task that records it ran."""
    shell = {
        "name": "shell",
        "kind": "shell",
        "command": MARKED.format(sleep=1.5),
        "env": {"SIDE": str(side)},
        "cache": False,
    }
    python = {
        "name": "python",
        "kind": "python",
        "callable": f"{FIXTURES}:record",
        "inputs": {"marker": str(done)},
        "depends_on": ["shell"],
        "cache": False,
    }
    return {"name": name, "tasks": [shell, python]}


def _trigger(url: str, definition: dict) -> str:
    assert httpx.post(f"{url}/api/pipelines", json=definition, timeout=10).status_code == 201
    answer = httpx.post(f"{url}/api/pipelines/{definition['name']}/runs", json={}, timeout=10)
    return str(answer.json()["id"])


def _finished(url: str, run_id: str) -> dict:
    return wait_until(lambda: (r := _run(url, run_id))["state"] in FINISHED and r, 180, "the run")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_at_random_moments_runs_each_shell_task_exactly_once(backend: str, tmp_path: Path) -> None:
    rng = random.Random(12)
    port = free_port()
    with _database(backend, tmp_path) as env:
        service = _start(env, tmp_path, port)
        try:
            for trial in range(10):
                side, done = tmp_path / f"side-{trial}.txt", tmp_path / f"python-{trial}.txt"
                run_id = _trigger(service.url, _definition(f"once-{trial}", side, done))
                if rng.random() < 0.3:  # before (or as) the task starts
                    wait_until(lambda: rng.random() < 0.2, 5, "a random moment")
                else:  # while the command runs
                    wait_until(side.exists, 120, "the shell task to start")
                    wait_until(lambda: rng.random() < 0.1, 5, "a random moment")
                _kill(service)
                service = _start(env, tmp_path, port)
                run = _finished(service.url, run_id)
                assert run["state"] == "succeeded", run
                _assert_once(side)
                assert len(done.read_text().splitlines()) == 1
        finally:
            service.stop()


def test_what_a_killed_worker_left_behind_is_stopped_before_the_retry(tmp_path: Path) -> None:
    """The worker itself is SIGKILLed with the orchestrator (an OOM kill of the whole tree): the
    command's direct child dies with it (parent-death signal), and a grandchild still running is
    stopped by the restarted orchestrator before it retries the task."""
    side, grandchild = tmp_path / "side.txt", tmp_path / "grandchild.pid"
    command = '(trap "" TERM HUP; sleep 60; echo late >> "$SIDE") & echo $! > "$CHILD"; ' + MARKED.format(
        sleep=30
    )
    definition = {
        "name": "leftovers",
        "tasks": [
            {
                "name": "shell",
                "kind": "shell",
                "command": command,
                "env": {"SIDE": str(side), "CHILD": str(grandchild)},
                "cache": False,
            }
        ],
    }
    port = free_port()
    with _database("sqlite", tmp_path) as env:
        service = _start(env, tmp_path, port)
        try:
            run_id = _trigger(service.url, definition)
            wait_until(side.exists, 120, "the shell task to start")
            wait_until(grandchild.exists, 30, "the grandchild's pid")
            leftover = int(grandchild.read_text())
            shell_pid = int(_lines(side)[0][2])
            assert service.process is not None
            _kill_tree(service.process.pid)
            service.process.wait()
            wait_until(lambda: not _alive(shell_pid), 10, "the command to die with its worker")
            assert _alive(leftover)  # nothing is left to stop it but the next orchestrator
            grandchild.unlink()
            service = _start(env, tmp_path, port)
            assert not _alive(leftover)
            wait_until(grandchild.exists, 120, "the retry to start")
            starts = [line for line in _lines(side) if line[0] == "start"]
            assert [line[1] for line in starts] == ["1", "2"], starts
            httpx.post(f"{service.url}/api/runs/{run_id}/cancel", timeout=10)
            wait_until(lambda: _run(service.url, run_id)["state"] in FINISHED, 30, "the cancel")
        finally:
            service.stop()


def _kill_tree(root: int) -> None:
    """SIGKILL `root` and its child processes (the workers), but not the task's own session."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == str(root):
                children.append(int(entry.name))
    for pid in [*children, root]:  # the workers first: they must not get to clean up
        os.kill(pid, signal.SIGKILL)
