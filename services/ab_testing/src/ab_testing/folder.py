"""The folders: background workers that fold the log of pending events, one process per shard
(the service's process keeps its core for requests) or a thread of the service."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from typing import Any

import anyio
from mlops_kit.db import Database

from ab_testing.folding_chunk import catch_up

log = logging.getLogger("mlops.ab.folding")

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def tune_gc() -> None:
    """Ingestion and folding allocate a few objects per event by the hundred thousand: with the
    default thresholds the collector ran every 700 of them and rescanned every long-lived object
    (a third of the time). Those are frozen out of it, and young objects wait longer."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _folder_main(url: str, shard: int, chunk: int, interval: float, wakeups: Any, drained: Any) -> None:
    """A folder process: every `interval` (or when woken), folds its shard until it is empty; it
    ends when the service closes its pipe or dies (end of file). SIGTERM or SIGINT end it at once:
    a chunk is one transaction, so nothing is half-folded and the service folds the rest."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    tune_gc()
    db = Database.connect(url, pool_size=2)
    generation = 0
    try:
        while True:
            start = generation
            try:
                if not catch_up(db, chunk, shard):
                    drained[shard] = start
            except Exception:
                log.exception("folding pending events failed; they stay pending and are retried")
            if wakeups.poll(interval):
                generation = max(generation, _read_wakeups(wakeups))
    except EOFError:
        return
    finally:
        db.dispose()


def _read_wakeups(wakeups: Any) -> int:
    """The newest wake-up generation waiting in the pipe (EOFError once the service closed it)."""
    newest = 0
    while wakeups.poll():
        newest = max(newest, int(wakeups.recv()))
    return newest


@contextlib.contextmanager
def _stop_signals_ignored() -> Iterator[None]:
    """Start a child with SIGINT and SIGTERM ignored (a disposition that survives exec), so a stop
    signal to the group while it still imports does not print a traceback; the folder takes them
    back once it runs. The service's own signals are blocked meanwhile: deferred, never lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class Folder:
    """Folds the log in the background: one process per shard (default; the service's process
    keeps its core for requests), or a thread of the service folding every shard.

    The service talks to its folders through pipes and shared counters, not multiprocessing
    locks: a folder killed by a signal can neither leave a lock held nor a semaphore leaked.
    """

    STOP_SECONDS = 3.0  # folders get this long to end, and the last fold as long: a stop takes < 10 s

    def __init__(self, db: Database, chunk: int, interval: float, *, shards: int, in_process: bool = False):
        self.db = db
        self.chunk = chunk
        self.interval = interval
        self.shards = shards
        self.in_process = in_process
        self._ctx = multiprocessing.get_context("spawn")
        self._generation = 0  # wake-ups sent; a shard is drained once found empty after the newest
        self._drained = self._ctx.RawArray("q", 1 if in_process else shards)
        self._thread_wake = threading.Event()
        self._pipes: list[Any] = [None] * shards
        self._processes: list[BaseProcess | None] = [None] * shards
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Fold now rather than at the next interval."""
        self._generation += 1
        self._thread_wake.set()
        for pipe in self._pipes:
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.send(self._generation)

    def wait_drained(self, timeout: float) -> bool:
        """Wake the folders and wait until each has found its shard empty (tests, shutdown)."""
        self.wake()
        deadline = time.monotonic() + timeout
        while any(done < self._generation for done in self._drained):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    async def start(self) -> None:
        # whatever an earlier run left (perhaps sharded otherwise) is folded before folders split it
        await anyio.to_thread.run_sync(catch_up, self.db, self.chunk)
        if self.in_process:
            self._task = asyncio.create_task(self._loop(), name="event-folder")
            return
        for shard in range(self.shards):
            self._spawn(shard)
        self._task = asyncio.create_task(self._watch(), name="event-folder-watch")

    def _spawn(self, shard: int) -> None:
        if self._pipes[shard] is not None:
            self._pipes[shard].close()
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_folder_main,
            args=(self.db.url, shard, self.chunk, self.interval, reader, self._drained),
            name=f"ab-testing-folder-{shard}",
            daemon=True,
        )
        with _stop_signals_ignored():
            process.start()
        reader.close()  # the folder holds the only reader: it sees end of file when the service goes
        self._pipes[shard] = writer
        self._processes[shard] = process

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pipe in self._pipes:
            if pipe is not None:
                pipe.close()
        await anyio.to_thread.run_sync(self._join_or_kill)
        # what was accepted is folded before the service goes, as far as a prompt stop allows;
        # the rest stays pending and is folded at the next start
        await anyio.to_thread.run_sync(lambda: catch_up(self.db, self.chunk, seconds=self.STOP_SECONDS))

    def _join_or_kill(self) -> None:
        """Folders end at their next look at the pipe; one that has not within STOP_SECONDS
        (still starting, or deep in a chunk) is killed: its chunk is rolled back, not lost."""
        deadline = time.monotonic() + self.STOP_SECONDS
        processes = [p for p in self._processes if p is not None]
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(1)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for shard, process in enumerate(self._processes):
                if process is not None and not process.is_alive():
                    log.error("folder process %d exited (code %s); starting another", shard, process.exitcode)
                    self._spawn(shard)

    async def _loop(self) -> None:
        while True:
            await anyio.to_thread.run_sync(self._thread_wake.wait, self.interval)
            self._thread_wake.clear()
            start = self._generation
            try:
                if not await anyio.to_thread.run_sync(catch_up, self.db, self.chunk):
                    self._drained[0] = start
            except Exception:
                log.exception("folding pending events failed; they stay pending and are retried")
