"""`make run`: start every service that exists on its port with embedded storage; Ctrl-C stops all.

`run_all.py [service ...]` starts only the named services (e.g. `model_registry ab_testing`).
SIGINT (Ctrl-C), SIGTERM and SIGHUP stop every service and its children, also when the runner was
started in the background by a non-interactive shell (which starts it with SIGINT ignored).
A service that does not come up is named, the others are stopped, and the exit code is 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVICES = [  # (module, default port, env prefix)
    ("model_registry", 8000, "MODEL_REGISTRY"),
    ("feature_store", 8002, "FEATURE_STORE"),
    ("experiment_tracking", 8003, "EXPERIMENT_TRACKING"),
    ("pipeline_orchestrator", 8004, "PIPELINE_ORCHESTRATOR"),
    ("ab_testing", 8090, "AB_TESTING"),
    # last: it loads its models from the registry (all start at once; it retries until that answers)
    ("model_serving", 8080, "MODEL_SERVING"),
]
STARTUP_SECONDS = 120.0
STOP_SECONDS = 10.0


class Stop(Exception):
    """A stop signal arrived."""


@dataclass
class Service:
    module: str
    port: int
    process: subprocess.Popen[bytes]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def on_signal(signum: int, _frame: FrameType | None) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # one stop, however many signals follow
    raise Stop(signal.Signals(signum).name)


def selected_services(selected: list[str]) -> list[tuple[str, int]]:
    """(module, port) of each service to start: those named, or all that exist."""
    return [
        (module, int(os.environ.get(f"MLOPS_{prefix}_PORT", default_port)))
        for module, default_port, prefix in SERVICES
        if (not selected or module in selected) and (ROOT / "services" / module / "src" / module).is_dir()
    ]


def port_taken(port: int) -> bool:
    """Something listens on the port already (its /health would pass for the service's)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start(selected: list[str], env: dict[str, str], services: list[Service]) -> None:
    """Start the selected services, each added to `services` at once (a stop signal may come)."""
    for module, port in selected_services(selected):
        prefix = module.upper()
        proc_env = {**env, f"MLOPS_{prefix}_PORT": str(port)}
        # own process group: a Ctrl-C reaches only this runner, which stops each service once
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=proc_env,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        services.append(Service(module, port, process))


def _default_signals() -> None:
    # a runner started with SIGINT ignored would pass that on to the services
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_healthy(services: list[Service]) -> str | None:
    """None once every service answers /health, else why one did not come up."""
    pending = list(services)
    deadline = time.monotonic() + STARTUP_SECONDS
    while pending:
        for svc in list(pending):
            if svc.process.poll() is not None:
                return (
                    f"{svc.module} failed to start (exit code {svc.process.returncode}); its output is above"
                )
            if svc.healthy():
                print(f"  {svc.module:<24} http://127.0.0.1:{svc.port}/docs", flush=True)
                pending.remove(svc)
        if time.monotonic() > deadline:
            names = ", ".join(svc.module for svc in pending)
            return f"{names} did not answer /health within {STARTUP_SECONDS:.0f} s"
        time.sleep(0.2)
    return None


def stop(services: list[Service]) -> None:
    """SIGTERM to each service (it stops its own children), SIGKILL to any group left after 10 s."""
    for svc in services:
        if svc.process.poll() is None:
            svc.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for svc in services:
        try:
            svc.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{svc.module} did not stop within {STOP_SECONDS:.0f} s; killing it", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(svc.process.pid, signal.SIGKILL)  # whatever of its group is left
        svc.process.wait()


def main(argv: list[str]) -> int:
    unknown = sorted(set(argv) - {module for module, _, _ in SERVICES})
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    env = {**os.environ, "MLOPS_DATA_DIR": os.environ.get("MLOPS_DATA_DIR", str(ROOT / ".mlops"))}
    env.setdefault("MLOPS_LOG_JSON", "false")
    services: list[Service] = []
    try:
        taken = [f"{module} (port {port})" for module, port in selected_services(argv) if port_taken(port)]
        if taken:
            print(f"error: port in use, cannot start {', '.join(taken)}", file=sys.stderr, flush=True)
            return 1
        start(argv, env, services)
        failure = wait_healthy(services)
        if failure:
            print(f"error: {failure}; stopping the others", file=sys.stderr, flush=True)
            return 1
        print(f"{len(services)} service(s) up, data in {env['MLOPS_DATA_DIR']}; Ctrl-C stops all", flush=True)
        while not (exited := [svc for svc in services if svc.process.poll() is not None]):
            time.sleep(0.5)
        svc = exited[0]
        print(
            f"error: {svc.module} exited (code {svc.process.returncode}); stopping the others",
            file=sys.stderr,
        )
        return 1
    except Stop as signame:
        print(f"\n{signame}: stopping services", flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        stop(services)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
