"""The retraining monitor: every `poll_seconds` it evaluates the policies that are due, one model
at a time, each under a lease so that replicas side by side never evaluate the same model at once.

An evaluation is three short steps, and no transaction is open while the registry is asked:

1. **claim** (one conditional UPDATE): the model's lease is taken only if it is free;
2. **measure** (no session): drift, performance and new labelled data from the registry's
   monitoring, with timeouts;
3. **decide** (a write transaction): each fired signal (and a due schedule) goes through the gate
   (`service.gate`, under the model's lock), the next evaluation is set and the lease released.

Started runs are handed to the engine after the commit. A failing evaluation is logged and the
loop goes on; a lease left by a dead replica expires after `lease_seconds`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlops_kit.background import BackgroundLoop
from mlops_kit.db import Database

from pipeline_orchestrator.engine.state import utcnow
from pipeline_orchestrator.errors import EvaluationInProgress
from pipeline_orchestrator.retraining import repository as repo
from pipeline_orchestrator.retraining import service
from pipeline_orchestrator.retraining.peers import MonitoringError, RegistryMonitoring
from pipeline_orchestrator.retraining.service import Decision, Signal
from pipeline_orchestrator.retraining.tables import RetrainingPolicy

log = logging.getLogger("mlops.orchestrator.retraining")


@dataclass
class Evaluation:
    model: str
    evaluated_at: datetime
    signals: list[Signal] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


@dataclass(frozen=True)
class _Snapshot:
    model: str
    triggers: dict[str, Any]
    since: datetime
    measured: bool  # performance, drift or new data is watched


class RetrainingMonitor(BackgroundLoop):
    name = "retraining-monitor"
    log = log

    def __init__(
        self,
        db: Database,
        registry: RegistryMonitoring,
        wake: Callable[[Iterable[str]], None],
        *,
        poll_seconds: float = 5.0,
        lease_seconds: float = 120.0,
        batch: int = 100,
    ):
        super().__init__(poll_seconds)
        self.db, self.registry, self.wake = db, registry, wake
        self.lease_seconds, self.batch = lease_seconds, batch

    async def stop(self) -> None:
        await super().stop()
        self.registry.close()

    # ---- work ----------------------------------------------------------------------------------
    def run_due(self) -> int:
        """Record finished runs' outcomes, then evaluate every due policy; the number evaluated."""
        with self.db.session(write=False) as session:
            due = repo.due_models(session, utcnow(), self.batch)
            unsettled = bool(repo.unsettled_triggers(session, 1))
        if unsettled:  # a write transaction only when there is something to write
            with self.db.session(write=True) as session:
                service.settle_outcomes(session)
                session.commit()
        done = 0
        for model in due:
            if self.stopping:
                break
            try:
                done += self.evaluate(model, on_demand=False) is not None
            except Exception:
                log.exception("evaluating the retraining policy of %s failed", model)
        return done

    def evaluate(self, model: str, *, on_demand: bool = True) -> Evaluation | None:
        """Evaluate one policy now. None when its lease is held elsewhere (the loop's case);
        on demand that is a 409 EVALUATION_IN_PROGRESS."""
        snapshot = self._claim(model, on_demand)
        if snapshot is None:
            return None
        evaluation = Evaluation(model, utcnow())
        try:
            evaluation.signals = self._measure(snapshot)
            evaluation.decisions = self._decide(snapshot, evaluation.signals)
        except BaseException:
            self._release(model, None)
            raise
        runs = [d.run.id for d in evaluation.decisions if d.run is not None]
        if runs:
            self.wake(runs)
        return evaluation

    def _claim(self, model: str, on_demand: bool) -> _Snapshot | None:
        now = utcnow()
        with self.db.session(write=True) as session:
            policy = service.load_policy(session, model)
            if not repo.claim(session, model, self.owner, now, now + timedelta(seconds=self.lease_seconds)):
                session.rollback()
                if on_demand:
                    raise EvaluationInProgress(
                        f"the policy of {model!r} is being evaluated", {"model": model}
                    )
                return None
            snapshot = _snapshot(policy)
            session.commit()
        return snapshot

    def _measure(self, snapshot: _Snapshot) -> list[Signal]:
        signals: list[Signal] = []
        triggers = snapshot.triggers
        if triggers.get("performance"):
            config = triggers["performance"]
            signals.append(
                self._read(
                    "performance",
                    config,
                    lambda: service.performance_signal(
                        config,
                        self.registry.performance(snapshot.model, window_minutes=config["window_minutes"]),
                    ),
                )
            )
        if triggers.get("drift"):
            config = triggers["drift"]
            signals.append(
                self._read(
                    "drift",
                    config,
                    lambda: service.drift_signal(
                        config, self.registry.drift(snapshot.model, config["window_minutes"])
                    ),
                )
            )
        if triggers.get("new_data"):
            config = triggers["new_data"]
            signals.append(
                self._read(
                    "new_data",
                    config,
                    lambda: service.new_data_signal(
                        config,
                        self.registry.performance(snapshot.model, since=snapshot.since),
                        snapshot.since,
                    ),
                )
            )
        return signals

    @staticmethod
    def _read(kind: str, config: dict[str, Any], measure: Callable[[], Signal]) -> Signal:
        try:
            return measure()
        except MonitoringError as exc:
            return service.unavailable(kind, config, str(exc))

    def _decide(self, snapshot: _Snapshot, signals: list[Signal]) -> list[Decision]:
        decisions: list[Decision] = []
        with self.db.session(write=True) as session:
            repo.lock_model(session, snapshot.model)
            policy = repo.get_policy(session, snapshot.model)
            if policy is None:  # deleted while it was measured
                session.rollback()
                return []
            scheduled = service.schedule_signal(policy, utcnow())
            session.flush()  # the schedule's next fire, before the gate reads the policy again
            fired = [s for s in signals if s.fired] + ([scheduled] if scheduled else [])
            for signal in fired:
                decision = service.gate(session, snapshot.model, signal, "monitor")
                if decision is not None:
                    decisions.append(decision)
            interval = timedelta(seconds=policy.evaluation_interval_seconds)
            repo.release(
                session, snapshot.model, self.owner, utcnow() + interval if snapshot.measured else None
            )
            session.commit()
        return decisions

    def _release(self, model: str, next_evaluation_at: datetime | None) -> None:
        with self.db.session(write=True) as session:
            repo.release(session, model, self.owner, next_evaluation_at)
            session.commit()


def _snapshot(policy: RetrainingPolicy) -> _Snapshot:
    triggers = dict(policy.triggers or {})
    measured = any(triggers.get(k) for k in ("performance", "drift", "new_data"))
    return _Snapshot(policy.model, triggers, service.since_last_retraining(policy), measured)
