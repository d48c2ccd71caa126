from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import httpx

from mlops_kit.testing.backends import free_port, wait_until


class ServiceProcess:
    """A service run as a real process (`python -m <module>`) on a free loopback port.

    >>> with ServiceProcess("model_registry", env={...}, tmp=tmp_path) as svc:
    ...     httpx.get(f"{svc.url}/health")
    """

    def __init__(
        self,
        module: str,
        *,
        env: dict[str, str],
        tmp: Path,
        port: int | None = None,
        startup_timeout: float = 180,
    ):
        self.module = module
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{module}-{self.port}.log"
        self.env = {
            **os.environ,
            "MLOPS_LOG_LEVEL": "WARNING",
            **env,
            f"MLOPS_{module.upper()}_PORT": str(self.port),
        }
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._healthy, timeout=self.startup_timeout, what=f"{self.module} on {self.url}")
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{self.module} did not start: {exc}\n{self.log_tail()}") from None
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"exited with code {self.process.returncode}")
        return httpx.get(f"{self.url}/health", timeout=1).status_code == 200

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_bytes()[-chars:].decode(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
