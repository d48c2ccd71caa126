"""Pure scheduling decisions: trigger rules, retry delays, cache keys. No I/O."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from pipeline_orchestrator.spec import TaskSpec
from pipeline_orchestrator.tables import TaskState

Decision = Literal["wait", "run", "skip", "upstream_failed"]
_FAILED = (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED)


def decide(rule: str, upstream: Iterable[str]) -> Decision:
    """What a pending task does given its upstream tasks' states.

    - all_success: run when every upstream succeeded (or was served from cache); upstream_failed
      as soon as one failed; skipped when an upstream was skipped.
    - all_done: run once every upstream finished, whatever the outcome.
    - one_failed: run as soon as one upstream failed; skipped if all finished and none failed.
    - none_failed: run once every upstream finished and none failed (skipped ones are fine).
    """
    states = list(upstream)
    if not states:
        return "run"
    done = all(s in TaskState.DONE for s in states)
    failed = any(s in _FAILED for s in states)
    if rule == "all_success":
        if failed:
            return "upstream_failed"
        if not done:
            return "wait"
        return "skip" if any(s == TaskState.SKIPPED for s in states) else "run"
    if rule == "all_done":
        return "run" if done else "wait"
    if rule == "one_failed":
        if failed:
            return "run"
        return "skip" if done else "wait"
    if rule == "none_failed":
        if failed:
            return "upstream_failed"
        return "run" if done else "wait"
    raise ValueError(f"unknown trigger rule {rule!r}")


def retry_delay(task: TaskSpec, failures: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: half the delay fixed, half random.

    ``failures`` counts the failed attempts so far (1 after the first failure).
    """
    base = task.retry_delay_seconds * task.retry_backoff ** max(0, failures - 1)
    delay = min(task.max_retry_delay_seconds, base)
    uniform = rng.uniform if rng is not None else random.uniform
    return delay / 2 + uniform(0, delay / 2)


_CACHE_FIELDS = (
    "kind",
    "callable",
    "command",
    "env",
    "method",
    "url",
    "headers",
    "body",
    "step",
    "search_space",
    "n_trials",
    "direction",
    "metric",
    "seed",
    "experiment",
    "resources",
)


def cache_key(task: TaskSpec, resolved: dict[str, Any]) -> str:
    """The task's definition (not its name or policies) with its inputs resolved."""
    definition = task.model_dump(mode="json", include=set(_CACHE_FIELDS))
    definition.update(resolved)
    blob = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(blob).hexdigest()
