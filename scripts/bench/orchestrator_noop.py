"""No-op task callables for scripts/bench/orchestrator_bench.py.

The bench puts this folder on the orchestrator's PYTHONPATH, so its local workers import them as
``orchestrator_noop:noop`` and ``orchestrator_noop:stamp``.
"""

from __future__ import annotations

import time


def noop() -> None:
    """Does nothing; no outputs."""


def stamp() -> dict[str, float]:
    """Does nothing but say when it ran (wall clock), to split the latency around a task."""
    return {"ran_at": time.time()}
