"""The kit's background loop: passes in a worker thread until stopped, a failing pass does not end
the loop, and stop() waits for the pass in progress instead of abandoning it."""

from __future__ import annotations

import asyncio
import threading

from mlops_kit.background import BackgroundLoop, owner_id


class Passes(BackgroundLoop):
    name = "test-loop"

    def __init__(self) -> None:
        super().__init__(poll_seconds=0.01)
        self.passes = 0
        self.third = threading.Event()
        self.finished_while_stopping = False
        self.release = threading.Event()

    def run_due(self) -> int:
        self.passes += 1
        if self.passes == 1:
            raise RuntimeError("a failing pass")
        if self.passes == 3:
            self.third.set()
            self.release.wait(timeout=10)  # held until stop() was asked
            self.finished_while_stopping = self.stopping
        return 1


def test_passes_go_on_after_a_failure_and_stop_waits_for_the_pass_in_progress() -> None:
    loop = Passes()

    async def scenario() -> None:
        await loop.start()
        assert await asyncio.to_thread(loop.third.wait, 10)
        stopping = asyncio.create_task(loop.stop())
        await asyncio.to_thread(lambda: None)  # let stop() run up to its wait
        assert loop.stopping and not stopping.done()
        loop.release.set()
        await asyncio.wait_for(stopping, 10)

    asyncio.run(scenario())
    assert loop.passes == 3 and loop.finished_while_stopping


def test_owner_ids_differ_per_loop() -> None:
    assert owner_id() != owner_id()
    assert Passes().owner != Passes().owner
