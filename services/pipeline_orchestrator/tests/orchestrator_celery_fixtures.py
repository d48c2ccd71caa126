"""Task callables for the Celery executor tests; they run inside real Celery worker processes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def _celery_worker() -> str:
    from celery import current_task

    request = getattr(current_task, "request", None)
    return str(getattr(request, "hostname", None) or "not-in-celery")


def where(i: int = 0, delay: float = 0.0) -> dict[str, Any]:
    """Which Celery worker (and pool process) ran this task."""
    if delay:
        time.sleep(delay)
    return {"i": i, "worker": _celery_worker(), "pid": os.getpid()}


def gather(**workers: str) -> dict[str, Any]:
    """Fan-in: the Celery workers the upstream tasks ran on."""
    return {"count": len(workers), "workers": sorted(set(workers.values()))}


def wait_for(release: str, started: str, limit: float = 60.0) -> dict[str, Any]:
    """Say who runs it (in the ``started`` file), then wait until the ``release`` file exists."""
    Path(started).write_text(f"{_celery_worker()} {os.getpid()}\n")
    print(f"waiting for {release}", flush=True)
    deadline = time.monotonic() + limit
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} never appeared")
        time.sleep(0.05)
    return {"worker": _celery_worker(), "pid": os.getpid()}


def sleep_for(seconds: float, started: str) -> dict[str, Any]:
    Path(started).write_text(f"{_celery_worker()} {os.getpid()}\n")
    time.sleep(seconds)
    return {"slept": seconds}


def boom(message: str = "boom") -> dict[str, Any]:
    print("about to fail", flush=True)
    raise RuntimeError(message)
