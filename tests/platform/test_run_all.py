"""`make run` (scripts/dev/run_all.py): stops every service and its children on SIGINT also when
started in the background (SIGINT ignored), names a service that fails to start, leaks nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlops_kit.testing.backends import free_port

ROOT = Path(__file__).resolve().parents[2]
RUN_ALL = ROOT / "scripts" / "dev" / "run_all.py"
STOP_SECONDS = 10.0


def launch(tmp_path: Path, services: list[str], ports: dict[str, int], **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "MLOPS_DATA_DIR": str(tmp_path / "data"), "MLOPS_LOG_JSON": "false", **extra}
    env.update({f"MLOPS_{module.upper()}_PORT": str(port) for module, port in ports.items()})

    def as_background_job() -> None:  # what `make run &` in a script gets: SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        [sys.executable, str(RUN_ALL), *services],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=as_background_job,
    )


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 120) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"no {marker!r} from run_all.py:\n{seen}")


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("target", ["group", "pid"])
def test_run_all_started_in_the_background_stops_everything_on_sigint(tmp_path: Path, target: str) -> None:
    services = ["model_registry", "ab_testing"]  # a plain service and one with child processes
    proc = launch(tmp_path, services, {m: free_port() for m in services})
    try:
        read_until(proc, "service(s) up")
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) >= 5, "the runner, two services and the A/B folders"
        if target == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=STOP_SECONDS)
        deadline = time.monotonic() + 2
        while running(tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(tree)
        assert proc.returncode == 0, out
        assert "stopping services" in out
        assert "leaked" not in out and "Traceback" not in out, out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_run_all_brings_model_serving_up_beside_the_registry_and_stops_both(tmp_path: Path) -> None:
    services = ["model_registry", "model_serving"]
    ports = {m: free_port() for m in services}
    proc = launch(tmp_path, services, ports)
    try:
        seen = read_until(proc, "service(s) up")
        assert f"{'model_serving':<24} http://127.0.0.1:{ports['model_serving']}/docs" in seen
        assert "2 service(s) up" in seen
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=STOP_SECONDS)
        assert proc.returncode == 0, out
        assert "Traceback" not in out, out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_run_all_names_the_service_that_failed_to_start(tmp_path: Path) -> None:
    services = ["model_registry", "experiment_tracking"]
    ports = {m: free_port() for m in services}
    proc = launch(tmp_path, services, ports, MLOPS_EXPERIMENT_TRACKING_DB_POOL_SIZE="not-a-number")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "error: experiment_tracking failed to start (exit code" in out


def test_run_all_names_the_service_whose_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = launch(tmp_path, ["model_registry"], {"model_registry": port})
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"error: port in use, cannot start model_registry (port {port})" in out


def test_run_all_starts_all_six_services_with_model_serving_last(tmp_path: Path) -> None:
    modules = [
        "model_registry",
        "feature_store",
        "experiment_tracking",
        "pipeline_orchestrator",
        "ab_testing",
        "model_serving",
    ]
    with contextlib.ExitStack() as stack:
        ports = {}
        for module in modules:  # every port taken: the runner names them all and starts nothing
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            ports[module] = sock.getsockname()[1]
        proc = launch(tmp_path, [], ports)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    expected = ", ".join(f"{module} (port {port})" for module, port in ports.items())
    assert f"error: port in use, cannot start {expected}" in out


def test_run_all_refuses_an_unknown_service(tmp_path: Path) -> None:
    proc = launch(tmp_path, ["model_registy"], {})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "unknown service(s): model_registy" in out
