"""The rollout controller: every ``controller_interval_seconds`` it evaluates the running bandit and
canary experiments (in a worker thread, one database transaction per experiment), and retries the
alias moves that an unreachable registry left pending.

Each experiment's step locks its row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serializes
writers) and re-reads its state, so replicas running the controller side by side take each decision
once. After a commit that changed the weights or the status, the routing definition cache is
invalidated (this replica's; others pick the change up within ``definition_cache_seconds``).
A failing experiment is logged and skipped; the loop never stops on an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
from mlops_kit.audit import utcnow
from mlops_kit.db import Database

from ab_testing.experiments import get_experiment
from ab_testing.experiments.service import decision_json
from ab_testing.folding import fold_for_read
from ab_testing.rollouts import bandit, canary, repository
from ab_testing.rollouts.registry import Registry, RegistryError
from ab_testing.tables import Decision

log = logging.getLogger("mlops.ab.rollouts")


class RolloutController:
    def __init__(
        self,
        db: Database,
        interval: float,
        *,
        registry: Registry | None = None,
        invalidate: Callable[..., None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        read_fold_seconds: float = 5.0,
    ):
        self.db = db
        self.read_fold_seconds = read_fold_seconds
        self.interval = interval
        self.registry = registry or Registry()
        self._invalidate = invalidate or (lambda *refs: None)
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.ticks = 0

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="rollout-controller")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            try:
                await anyio.to_thread.run_sync(self.tick, abandon_on_cancel=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rollout controller tick failed")

    # ---- work ----------------------------------------------------------------------------------
    def due(self) -> list[str]:
        """Ids of the experiments to look at: running bandits and canaries, and stopped canaries
        with an alias move still pending."""
        with self.db.session(write=False) as session:
            running = repository.running_rollouts(session)
            stopped = repository.stopped_canaries(session)
        return [*running, *(i for i, cfg in stopped if (cfg or {}).get("canary", {}).get("pending_registry"))]

    def tick(self) -> int:
        """One pass over every due experiment; the number of decisions recorded."""
        self.ticks += 1
        recorded = 0
        for experiment_id in self.due():
            if self._stopping:
                break
            try:
                recorded += len(self.evaluate(experiment_id)["decisions"])
            except Exception:
                log.exception("evaluating experiment %s failed", experiment_id)
        return recorded

    def evaluate(self, ref: str) -> dict[str, Any]:
        """Evaluate one experiment now: ``{"experiment", "mode", "status", "evaluation",
        "decisions"}`` — the figures of this evaluation and the decisions it recorded."""
        now = self.clock()
        probe: dict[str, Any] | None = None
        fold_for_read(self.db, self.read_fold_seconds)  # the guardrails see the accepted events
        with self.db.session(write=False) as session:
            experiment = get_experiment(session, ref)
            experiment_id, mode = experiment.id, experiment.mode
            target = canary.alias_probe_target(experiment) if mode == "canary" else None
        if target is not None:
            try:
                probe = {"version": self.registry.get_alias(*target)}
            except RegistryError as exc:  # recorded later, or the baseline version is restored
                log.warning("reading %s@%s from the registry failed: %s", *target, exc.message)

        decisions: list[Decision] = []
        evaluation: dict[str, Any] | None = None
        routing_changed = False
        with self.db.session(write=True) as session:
            experiment = get_experiment(session, experiment_id, lock=True)
            if mode == "canary":
                outcome = canary.step(session, experiment, now, probe)
                evaluation = outcome.evaluation or None
                routing_changed = outcome.routing_changed
                if outcome.decision is not None:
                    decisions.append(outcome.decision)
            elif mode == "bandit":
                decision = bandit.step(session, experiment, now)
                if decision is not None:
                    decisions.append(decision)
                    evaluation = {"action": "reweight"}
                    routing_changed = True
            key = experiment.key
            session.commit()
        if routing_changed:
            self._invalidate(experiment_id, key)
        if mode == "canary":
            settled = canary.settle(self.db, experiment_id, self.registry)
            if settled is not None:
                decisions = [d for d in decisions if d.id != settled.id] + [settled]
        with self.db.session(write=False) as session:
            experiment = get_experiment(session, experiment_id)
            state = experiment.config.get(mode)
            status = experiment.status
        return {
            "experiment": key,
            "mode": mode,
            "status": status,
            "state": state,
            "evaluation": evaluation,
            "decisions": [decision_json(d) for d in decisions],
        }
