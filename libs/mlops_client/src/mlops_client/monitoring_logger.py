"""Background delivery of logged predictions: a bounded queue and one sender thread.

The caller's prediction path only appends to the queue (under a lock, no I/O). The sender takes
up to 10,000 rows at a time — when `batch_size` rows are waiting, when the oldest has waited
`flush_interval` seconds, or on `flush()`/`close()` — and posts them. Logging is idempotent on
`request_id` (the server keeps the first row of an id), so a batch is simply sent again after a
5xx, a timeout or a refused connection: nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlops_client.errors import MlopsError
from mlops_client.monitoring_models import LoggerStats, PredictionsAccepted

log = logging.getLogger("mlops_client.monitoring")

Row = dict[str, Any]
Send = Callable[[str, list[Row]], PredictionsAccepted]
MAX_BATCH = 10_000  # the server's limit per request
RETRY_STATUS = frozenset({0, 408, 429, 502, 503, 504})  # 0: unreachable or timed out
SPLIT_STATUS = frozenset({400, 413, 422})  # a bad row (or too big a body): split to isolate it
SPLIT_BUDGET = 64  # extra requests spent isolating bad rows of one batch; the rest is rejected


@dataclass(frozen=True)
class Batching:
    """How the background logger batches and what it does when the queue is full."""

    batch_size: int = 1_000
    """Send as soon as this many rows wait (a batch takes up to 10,000)."""
    flush_interval: float = 1.0
    """... or when the oldest waiting row is this old (seconds)."""
    max_queue: int = 100_000
    """Rows held while the server is slow or down."""
    on_full: Literal["drop_oldest", "block"] = "drop_oldest"
    """A full queue drops its oldest row, or blocks the caller up to `block_timeout` and then
    drops the new row. Both are counted in `stats().dropped`."""
    block_timeout: float = 0.05
    close_timeout: float = 10.0
    """How long `close()` (and interpreter exit) keeps trying to deliver what is queued."""
    max_backoff: float = 5.0
    """The longest wait between two attempts at a batch while the server is down."""


_live: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for logger in list(_live):
        logger.close()


def _reset_in_child() -> None:
    # a forked worker (gunicorn --preload, multiprocessing) has the parent's queue but not its
    # thread: start empty, with a thread of its own on its first row
    for logger in list(_live):
        logger._reset()


os.register_at_fork(after_in_child=_reset_in_child)


class PredictionLogger:
    """A bounded queue of (model, row) and the thread that delivers it (started on the first row)."""

    def __init__(self, send: Send, batching: Batching | None = None):
        self._send = send
        self.batching = batching or Batching()
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        """The initial state (also of a forked child: the parent's rows and counts are the parent's)."""
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the sender waits here for rows
        self._done = threading.Condition(self._lock)  # flush() and blocked callers wait here
        self._rows: deque[tuple[int, str, Row, float]] = deque()  # (seq, model, row, queued at)
        self._seq = 0
        self._flush_upto = 0
        self._in_flight: list[int] = []  # seq of the first row and count of the batch being sent
        self._closed = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._counts = dict.fromkeys(
            ("accepted", "duplicates", "dropped", "rejected", "abandoned", "batches", "retries"), 0
        )
        self._last_error: str | None = None

    # the caller's side ------------------------------------------------------------------------
    def put(self, model: str, rows: Sequence[Row]) -> None:
        """Queue rows; never waits for the network (at most `block_timeout` when asked to block)."""
        now = time.monotonic()
        with self._lock:
            if self._closed:
                self._drop(len(rows), "logged after close()")
                return
            deadline = now + self.batching.block_timeout
            for row in rows:
                if len(self._rows) >= self.batching.max_queue and not self._make_room(deadline):
                    self._drop(1, "the queue is full")
                    continue
                self._seq += 1
                self._rows.append((self._seq, model, row, now))
                if len(self._rows) in (1, self.batching.batch_size):
                    self._work.notify()
            if self._thread is None:
                self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlops-prediction-logger", daemon=True)
        self._thread.start()

    def put_one(self, model: str, row: Row) -> None:
        """`put(model, [row])` without the loop: the prediction path's call."""
        now = time.monotonic()
        with self._lock:
            rows = self._rows
            if self._closed or (
                len(rows) >= self.batching.max_queue
                and not self._make_room(now + self.batching.block_timeout)
            ):
                self._drop(1, "the queue is full or closed")
                return
            self._seq += 1
            rows.append((self._seq, model, row, now))
            if len(rows) == 1 or len(rows) == self.batching.batch_size:
                self._work.notify()
            if self._thread is None:
                self._start()

    def _make_room(self, deadline: float) -> bool:
        if self.batching.on_full == "drop_oldest":
            self._rows.popleft()
            self._drop(1, "the queue is full")
            self._done.notify_all()
            return True
        return (
            self._done.wait_for(
                lambda: len(self._rows) < self.batching.max_queue or self._closed,
                max(0.0, deadline - time.monotonic()),
            )
            and not self._closed
        )

    def _drop(self, count: int, why: str) -> None:
        if self._counts["dropped"] == 0:
            log.warning("prediction rows dropped: %s (counted in stats().dropped)", why)
        self._counts["dropped"] += count

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now and wait until it is delivered (or refused); False on timeout."""
        with self._lock:
            target = self._seq
            self._flush_upto = max(self._flush_upto, target)
            self._work.notify()
            return self._done.wait_for(lambda: self._settled(target), timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is queued (for up to `timeout`, default `close_timeout`) and stop the
        thread. True when nothing was left undelivered."""
        wait = self.batching.close_timeout if timeout is None else timeout
        with self._lock:
            if not self._closed:
                self._closed = True
                self._deadline = time.monotonic() + wait
                self._work.notify()
                self._done.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(max(0.0, (self._deadline or 0) - time.monotonic()) + 1.0)
        _live.discard(self)
        with self._lock:
            return self._settled(self._seq) and self._counts["abandoned"] == 0

    def stats(self) -> LoggerStats:
        with self._lock:
            return LoggerStats(
                queued=len(self._rows),
                in_flight=self._in_flight[1] if self._in_flight else 0,
                enqueued=self._seq,
                last_error=self._last_error,
                **self._counts,
            )

    def _settled(self, target: int) -> bool:
        queued = not self._rows or self._rows[0][0] > target
        return queued and (not self._in_flight or self._in_flight[0] > target)

    # the sender's side ------------------------------------------------------------------------
    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            by_model: dict[str, list[Row]] = {}
            for _, model, row, _ in batch:
                by_model.setdefault(model, []).append(row)
            for model, rows in by_model.items():
                self._deliver(model, rows, [SPLIT_BUDGET])
            with self._lock:
                self._in_flight = []
                self._done.notify_all()

    def _next_batch(self) -> list[tuple[int, str, Row, float]] | None:
        with self._lock:
            while True:
                if self._closed and (not self._rows or self._out_of_time()):
                    self._abandon(len(self._rows))
                    self._rows.clear()
                    self._done.notify_all()
                    return None
                if self._rows and self._due():
                    break
                self._work.wait(self._until_due())
            batch = [self._rows.popleft() for _ in range(min(len(self._rows), MAX_BATCH))]
            self._in_flight = [batch[0][0], len(batch)]
            self._done.notify_all()  # room for callers blocked on a full queue
            return batch

    def _until_due(self) -> float | None:
        """Seconds until the oldest queued row is due (None: nothing queued, wait for a row)."""
        if not self._rows:
            return None
        return self._rows[0][3] + self.batching.flush_interval - time.monotonic()

    def _due(self) -> bool:
        oldest = self._rows[0]
        return (
            len(self._rows) >= self.batching.batch_size
            or self._closed
            or oldest[0] <= self._flush_upto
            or time.monotonic() >= oldest[3] + self.batching.flush_interval
        )

    def _out_of_time(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _abandon(self, count: int) -> None:
        if count:
            log.warning("%d prediction rows were not delivered before close() timed out", count)
            self._counts["abandoned"] += count

    def _deliver(self, model: str, rows: list[Row], budget: list[int]) -> None:
        delay = 0.1
        while True:
            try:
                result = self._send(model, rows)
            except MlopsError as exc:
                if exc.status in RETRY_STATUS:
                    if not self._wait_to_retry(exc, delay, len(rows)):
                        return
                    delay = min(delay * 2, self.batching.max_backoff)
                    continue
                self._refused(model, rows, budget, exc, splittable=exc.status in SPLIT_STATUS)
            except Exception as exc:  # a row the encoder cannot write: isolate it like a 422
                self._refused(model, rows, budget, exc, splittable=True)
            else:
                self._count(accepted=result.accepted, duplicates=result.duplicates, batches=1)
            return

    def _wait_to_retry(self, exc: MlopsError, delay: float, rows: int) -> bool:
        with self._lock:
            self._last_error = str(exc)
            if self._out_of_time():
                self._abandon(rows)
                return False
            self._counts["retries"] += 1
            remaining = self._deadline - time.monotonic() if self._deadline is not None else delay
        time.sleep(max(0.0, min(delay, remaining)))
        return True

    def _refused(
        self, model: str, rows: list[Row], budget: list[int], exc: Exception, *, splittable: bool
    ) -> None:
        if splittable and len(rows) > 1 and budget[0] >= 2:
            budget[0] -= 2
            half = len(rows) // 2
            self._deliver(model, rows[:half], budget)
            self._deliver(model, rows[half:], budget)
            return
        log.warning("%d prediction rows of %r refused: %s", len(rows), model, exc)
        with self._lock:
            self._last_error = str(exc)
        self._count(rejected=len(rows))

    def _count(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                self._counts[key] += value
