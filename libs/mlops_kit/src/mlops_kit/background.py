"""A service's background pass: `run_due()` in a worker thread every `poll_seconds`, from the app's
start to its stop, for work that several replicas share through leases in the database (each
replica's `owner` id names its leases).

`stop()` lets the pass in progress finish (it is not abandoned mid-write) and ends the loop; a
pass that raises is logged and the loop goes on. Subclasses check `stopping` between items of a
long pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import uuid
from abc import ABC, abstractmethod

import anyio


def owner_id() -> str:
    """This process' name in the leases it takes: host, pid and a random part (a restarted
    process with a reused pid is another owner)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class BackgroundLoop(ABC):
    name = "background-loop"
    log = logging.getLogger("mlops.background")

    def __init__(self, poll_seconds: float, owner: str | None = None) -> None:
        self.poll_seconds = poll_seconds
        self.owner = owner or owner_id()
        self._stopping = threading.Event()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    def run_due(self) -> int:
        """One pass (in a worker thread): the number of items it handled."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def start(self) -> None:
        self._stopping.clear()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task  # the pass in progress ends (it is not abandoned mid-write)
            self._task = None

    async def _loop(self) -> None:
        assert self._wake is not None
        while not self._stopping.is_set():
            try:
                await anyio.to_thread.run_sync(self.run_due)
            except Exception:
                self.log.exception("%s pass failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
