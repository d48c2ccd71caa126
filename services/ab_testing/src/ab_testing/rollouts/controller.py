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
from dataclasses import dataclass, field
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
        fold_for_read(self.db, self.read_fold_seconds)  # the guardrails see the accepted events
        with self.db.session(write=False) as session:
            experiment = get_experiment(session, ref)
            experiment_id, mode = experiment.id, experiment.mode
            target = canary.alias_probe_target(experiment) if mode == "canary" else None
        probe = self._probe(target) if target is not None else None
        step = self._step(experiment_id, mode, now, probe)
        if step.routing_changed:
            self._invalidate(experiment_id, step.key)
        decisions = step.decisions
        if mode == "canary":
            settled = canary.settle(self.db, experiment_id, self.registry)
            if settled is not None:
                decisions = [d for d in decisions if d.id != settled.id] + [settled]
        with self.db.session(write=False) as session:
            experiment = get_experiment(session, experiment_id)
            state, status = experiment.config.get(mode), experiment.status
        return {
            "experiment": step.key,
            "mode": mode,
            "status": status,
            "state": state,
            "evaluation": step.evaluation,
            "decisions": [decision_json(d) for d in decisions],
        }

    def _probe(self, target: tuple[str, str]) -> dict[str, Any] | None:
        """Where the canary's alias points now (None when the registry cannot say)."""
        try:
            return {"version": self.registry.get_alias(*target)}
        except RegistryError as exc:  # recorded later, or the baseline version is restored
            log.warning("reading %s@%s from the registry failed: %s", *target, exc.message)
            return None

    def _step(self, experiment_id: str, mode: str, now: datetime, probe: dict[str, Any] | None) -> _Step:
        """One bandit or canary step in its own transaction, the experiment's row locked."""
        step = _Step()
        with self.db.session(write=True) as session:
            experiment = get_experiment(session, experiment_id, lock=True)
            if mode == "canary":
                outcome = canary.step(session, experiment, now, probe)
                step.evaluation = outcome.evaluation or None
                step.routing_changed = outcome.routing_changed
                step.decisions = [outcome.decision] if outcome.decision is not None else []
            elif mode == "bandit":
                decision = bandit.step(session, experiment, now)
                if decision is not None:
                    step.decisions, step.evaluation, step.routing_changed = (
                        [decision],
                        {"action": "reweight"},
                        True,
                    )
            step.key = experiment.key
            session.commit()
        return step


@dataclass
class _Step:
    """What one step did: its decisions, the evaluation's figures, whether routing changed."""

    key: str = ""
    decisions: list[Decision] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    routing_changed: bool = False
