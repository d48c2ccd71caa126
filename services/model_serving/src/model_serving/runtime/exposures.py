"""Exposures of locally assigned users, sent to the A/B service in batches by one thread.

The request path only appends to a bounded deque (no I/O, no lock beyond the deque's own);
the A/B service recomputes each user's variant from the definition, so counting here cannot
skew an experiment. A full queue drops the oldest exposure and counts it."""

from __future__ import annotations

import logging
import threading
from collections import deque

import httpx

log = logging.getLogger("mlops.model_serving.exposures")
MAX_PER_REQUEST = 10_000


class ExposureSender:
    def __init__(self, client: httpx.Client, *, max_queue: int = 100_000, interval: float = 1.0) -> None:
        self.client, self.interval = client, interval
        self._queue: deque[tuple[str, str]] = deque(maxlen=max_queue)
        self._seen: set[tuple[str, str]] = set()  # sent already by this replica (bounded below)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = self.dropped = self.failed = 0

    def add(self, experiment: str, user_id: str) -> None:
        item = (experiment, user_id)
        if item in self._seen:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(item)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="serving-exposures", daemon=True)
            self._thread.start()

    def depth(self) -> int:
        return len(self._queue)

    def flush(self) -> None:
        batch: dict[tuple[str, str], None] = {}
        while self._queue and len(batch) < MAX_PER_REQUEST:
            batch[self._queue.popleft()] = None
        if not batch:
            return
        body = {"exposures": [{"experiment": e, "user_id": u} for e, u in batch]}
        try:
            response = self.client.post("/api/exposures", json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.failed += len(batch)
            log.warning("could not send %d exposures: %r", len(batch), exc)
            return
        self.sent += len(batch)
        if len(self._seen) > 1_000_000:
            self._seen.clear()
        self._seen.update(batch)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            while self._queue:
                self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        while self._queue:
            before = len(self._queue)
            self.flush()
            if len(self._queue) >= before:
                break
