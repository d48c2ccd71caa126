"""Routing on the request path: a cached experiment definition, the one assignment function shared
with the Python client (`mlops_client.ab_routing`), and exposures buffered off the request path.

A route request reads no database row when the definition is cached and writes none: the
exposure goes into an in-memory buffer that a background task writes in batches (first exposure
of a user in a phase wins; duplicates are ignored by a unique key)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
from mlops_client.ab_routing import CompiledExperiment, compile_definition, evaluate
from mlops_kit.audit import write_audit
from mlops_kit.db import Database
from sqlalchemy import Table
from sqlalchemy.orm import Session

from ab_testing.experiments import definition, get_experiment
from ab_testing.routing_repository import exposure_counts, record_exposures, upsert_insert

__all__ = [
    "Caller",
    "DefinitionCache",
    "ExposureBuffer",
    "assignment_json",
    "exposure_counts",
    "record_exposures",
    "upsert_insert",
]

log = logging.getLogger("mlops.ab.routing")


@dataclass
class _Cached:
    definition: dict[str, Any]
    compiled: CompiledExperiment
    at: float


class DefinitionCache:
    """Experiment definitions by id and key, for ``ttl`` seconds (0: always read)."""

    def __init__(self, db: Database, ttl: float):
        self.db = db
        self.ttl = ttl
        self._items: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get_cached(self, ref: str) -> _Cached | None:
        hit = self._items.get(ref)
        if hit is not None and time.monotonic() - hit.at < self.ttl:
            return hit
        return None

    def load(self, ref: str) -> _Cached:
        with self.db.session(write=False) as session:
            found = definition(session, get_experiment(session, ref))
        entry = _Cached(found, compile_definition(found), time.monotonic())
        with self._lock:
            self._items[ref] = entry
            self._items[found["key"]] = entry
            self._items[found["id"]] = entry
        return entry

    async def entry(self, ref: str) -> _Cached:
        hit = self.get_cached(ref)
        if hit is not None:
            return hit
        return await anyio.to_thread.run_sync(self.load, ref)

    async def get(self, ref: str) -> dict[str, Any]:
        return (await self.entry(ref)).definition

    def invalidate(self, *refs: str) -> None:
        with self._lock:
            for ref in refs:
                self._items.pop(ref, None)


def assignment_json(
    definition_: dict[str, Any], user_id: str, compiled: CompiledExperiment | None = None
) -> dict[str, Any]:
    a = evaluate(compiled if compiled is not None else definition_, user_id)
    return {
        "experiment": definition_["key"],
        "user_id": user_id,
        "variant": a.variant,
        "model_version": a.model_version,
        "in_experiment": a.in_experiment,
        "phase": definition_["phase"],
        "hash": a.hash,
        "reason": a.reason,
    }


Caller = tuple[str, str]  # (actor, role) of a route request, for the audit log


@dataclass
class ExposureBuffer:
    """Exposures waiting to be written: (experiment id, phase, user) -> variant. Single route
    requests are audited here too: one entry per caller and write, with the count, in the same
    transaction as the exposures (one per request would put a write on the routing hot path)."""

    db: Database
    interval: float
    limit: int
    audit: Table | None = None
    _pending: dict[tuple[str, int, str], str] = field(default_factory=dict)
    _callers: Counter[Caller] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # one flush at a time: a flush that returns has written everything buffered before it was
    # called, also what a flush already in progress (the background loop's) had taken
    _flushing: threading.Lock = field(default_factory=threading.Lock)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    written: int = 0

    def expose(
        self, definition: dict[str, Any], answer: dict[str, Any], caller: Caller | None = None
    ) -> bool:
        """Buffer the assignment if it is an exposure: a user in a running experiment (not one a
        promoted canary now serves to everyone). True when it counted."""
        if answer["in_experiment"] and definition["status"] == "running" and not definition.get("rollout"):
            self.add(definition["id"], definition["phase"], answer["user_id"], answer["variant"], caller)
            return True
        return False

    def add(
        self, experiment_id: str, phase: int, user_id: str, variant: str, caller: Caller | None = None
    ) -> None:
        key = (experiment_id, phase, user_id)
        with self._lock:
            self._pending.setdefault(key, variant)
            if caller is not None:
                self._callers[caller] += 1
            full = len(self._pending) >= self.limit
        if full:
            self.flush()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="exposure-flush")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        await anyio.to_thread.run_sync(self.flush)

    async def _loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            try:
                await anyio.to_thread.run_sync(self.flush)
            except Exception:
                log.exception("writing exposures failed; they stay buffered")

    def flush(self) -> int:
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, {}
            callers, self._callers = self._callers, Counter()
        if not batch and not callers:
            return 0
        try:
            with self.db.session(write=True) as session:
                written = record_exposures(session, batch)
                self._audit(session, callers)
                session.commit()
        except Exception:
            with self._lock:
                for key, variant in batch.items():
                    self._pending.setdefault(key, variant)
                self._callers.update(callers)
            raise
        self.written += written
        return written

    def _audit(self, session: Session, callers: Counter[Caller]) -> None:
        if self.audit is None:
            return
        for (actor, role), routed in callers.items():
            write_audit(
                session,
                self.audit,
                actor=actor,
                role=role,
                method="GET",
                path="/api/route",
                route="/api/route",
                status=200,
                request_id=None,
                details={"exposures": routed},
            )
