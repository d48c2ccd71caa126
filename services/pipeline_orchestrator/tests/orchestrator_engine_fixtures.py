"""Task callables for the engine's tests (imported by the worker processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def noop() -> None:
    return None


def add(a: float, b: float) -> dict[str, Any]:
    return {"sum": a + b}


def echo(**kwargs: Any) -> dict[str, Any]:
    return dict(kwargs)


def record(marker: str, value: Any = None) -> dict[str, Any]:
    """Append a line to ``marker``: how many times a task really completed."""
    with open(marker, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    return {"value": value, "pid": os.getpid()}


def fail_until(counter: str, failures: int) -> dict[str, Any]:
    """Fail the first ``failures`` calls (counted in a file), then succeed."""
    path = Path(counter)
    n = int(path.read_text()) if path.exists() else 0
    path.write_text(str(n + 1))
    if n < failures:
        raise RuntimeError(f"planned failure {n + 1} of {failures}")
    return {"calls": n + 1}


def boom(message: str = "kaboom") -> None:
    def inner() -> None:
        raise ValueError(message)

    print("about to fail")
    inner()


def fail_if_exists(flag: str) -> dict[str, Any]:
    if os.path.exists(flag):
        raise RuntimeError(f"flag {flag} is set")
    return {"ok": True}


def wait_for(path: str, pidfile: str | None = None, limit: float = 120.0) -> dict[str, Any]:
    """Block until ``path`` exists (the test creates it); writes our pid first."""
    if pidfile:
        Path(pidfile).write_text(str(os.getpid()))
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)
    return {"waited": True}


def quadratic(params: dict[str, Any], offset: float = 0.0) -> dict[str, float]:
    x = float(params["x"])
    y = float(params.get("y", 0))
    return {"score": -((x - 3.0) ** 2) - (y - 1.0) ** 2 + offset, "x": x}


def die_leaving_a_child(flag: str, pidfile: str) -> dict[str, Any]:
    """First call: start a long-lived child process, then SIGKILL this worker (as the OOM killer
    would). Later calls: say whether that child still runs."""
    if not os.path.exists(flag):
        Path(flag).write_text("killed")
        child = subprocess.Popen(["sleep", "60"])
        Path(pidfile).write_text(str(child.pid))
        os.kill(os.getpid(), signal.SIGKILL)
    pid = int(Path(pidfile).read_text())
    try:
        with open(f"/proc/{pid}/stat") as fh:
            alive = fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        alive = False
    return {"child_alive": alive}
