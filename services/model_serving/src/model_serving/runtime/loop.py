"""The runtime's background loop: a pass every `interval` seconds in a worker thread, or sooner
when nudged (a deployment created or changed through this replica)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio

from model_serving.runtime.manager import Runtime

log = logging.getLogger("mlops.model_serving.runtime")


class RuntimeLoop:
    def __init__(self, runtime: Runtime, interval: float) -> None:
        self.runtime, self.interval = runtime, interval
        self._task: asyncio.Task[None] | None = None
        self._nudge = asyncio.Event()
        self._done: asyncio.Event = asyncio.Event()  # set (and replaced) after every pass
        self.passes = 0
        self._idle = True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="serving-runtime")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def nudge(self) -> None:
        self._nudge.set()

    async def settled(self, timeout: float) -> None:
        """Nudge, and wait (at most `timeout`) for a pass that started after now to finish: a new
        or changed deployment is then loaded, or failed with its reason, when it is small."""
        after = self.passes + (0 if self._idle else 1)
        self.nudge()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.passes <= after:
                    await self._done.wait()

    async def _loop(self) -> None:
        while True:
            self._nudge.clear()
            self._idle = False
            try:
                await anyio.to_thread.run_sync(self.runtime.run_once)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("serving runtime pass failed")
            self._idle = True
            self.passes += 1
            done, self._done = self._done, asyncio.Event()
            done.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self.interval)
