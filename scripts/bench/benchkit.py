"""What the benchmarks share: machine calibration, free ports, percentiles, and server processes
started in their own process group, waited for on /health and stopped with their workers.

Imported by the scripts beside it (`python scripts/bench/<name>.py` puts this folder on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def cpu_calibration() -> float:
    """Seconds for a fixed pure-Python loop: tells a slow (shared, throttled) machine from slow code."""
    start = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    return round(time.perf_counter() - start, 3)


def machine_state() -> dict[str, Any]:
    """The calibration loop's time and the load average, taken before and after each figure."""
    return {"cpu_calibration_s": cpu_calibration(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def fmt(value: Any, digits: int = 2) -> str:
    """A figure for a markdown table: thousands separated, floats to `digits`, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else "met" if ok else "**missed**"


def cal(fig: dict[str, Any]) -> str:
    """A figure's machine state: calibration before / after, and the load average before."""
    b, a = fig.get("machine_before", {}), fig.get("machine_after", {})
    return (
        f"{b.get('cpu_calibration_s')} / {a.get('cpu_calibration_s')} s (load {b.get('loadavg', ['?'])[0]})"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile of samples in seconds, in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def clean_env(drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """This process's environment without our settings, virtualenv markers and `drop` prefixes."""
    prefixes = ("MLOPS_", "VIRTUAL_ENV", "UV_", "PYTHONPATH", "PYTHONHOME", *drop)
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **extra}


def uv_command(what: str) -> list[str]:
    """How to run uv here (to build a reference system's own venv)."""
    python3 = shutil.which("python3") or sys.executable
    if subprocess.run([python3, "-m", "uv", "--version"], capture_output=True).returncode == 0:
        return [python3, "-m", "uv"]
    if uv := shutil.which("uv"):
        return [uv]
    raise RuntimeError(f"neither `python3 -m uv` nor `uv` is available to build {what}")


class Server:
    """A server process in its own process group (so its workers go with it), logging to a file."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, log: Path, cwd: Path | None = None
    ):
        self.name, self.cmd, self.env, self.port, self.log = name, cmd, env, port, log
        self.cwd = cwd or log.parent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float) -> float:
        """Seconds until /health answered 200."""
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.uri}/health", timeout=1).status_code == 200:
                    return round(time.monotonic() - started, 2)
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                # workers of the group may outlive the leader for a moment
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                return
            except subprocess.TimeoutExpired:
                continue


def source_state(root: Path, *paths: str) -> dict[str, Any]:
    """The commit measured, and which of the measured service's files differed from it."""

    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", *paths)
    return {"commit": git("rev-parse", "HEAD").strip() or None, "service_files_changed": dirty.splitlines()}


class PySpy:
    """`py-spy record` attached to a process (raw collapsed stacks), until `finish`."""

    def __init__(self, py_spy: str, pid: int, out: Path, rate: int):
        self.out = out
        self.proc = subprocess.Popen(
            [py_spy, "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", str(rate), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # attached before the scenario starts

    def finish(self, summarize: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            return {"error": err.decode(errors="replace")[-500:]}
        return summarize(self.out.read_text())
