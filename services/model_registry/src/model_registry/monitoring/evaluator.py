"""The background evaluator: every `poll_seconds` it evaluates the models whose run is due, one at a
time, each under a lease so that replicas side by side never evaluate the same model at once.

A run is three short steps, and no transaction is open while the window is read and computed:

1. **claim** (a write transaction of one conditional UPDATE): the lease is taken only if it is free
   and the run still due — of two replicas racing, exactly one changes the row;
2. **measure** (a read-only session): the watched version's window, drift and performance;
3. **record** (a write transaction, the configuration row locked): only if the lease is still
   ours — the rules' new states, a history row per state change with its evidence, the latest
   evaluation (what /metrics exports), the next due time, the lease released.

A lease not released within `lease_seconds` (its replica died) is free again. A failing run is
logged, its next run scheduled as usual; the loop never stops on an error. `stop()` lets the run in
progress finish (it checks between models) and waits for it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.background import BackgroundLoop
from mlops_kit.db import Database
from sqlalchemy.orm import Session

from model_registry.errors import EvaluationInProgress, MonitoringNotConfigured
from model_registry.models import service as models
from model_registry.monitoring import alert_repository as arepo
from model_registry.monitoring import alerts
from model_registry.monitoring.alert_schemas import EvaluationRead, MonitoringConfigIn
from model_registry.monitoring.alert_service import NEVER, event_read, state_reads
from model_registry.monitoring.evaluation import Measurement, measure
from model_registry.monitoring.tables import AlertEventRow, AlertStateRow, EvaluationRow
from model_registry.monitoring.times import utc

log = logging.getLogger("mlops.registry.monitoring")


@dataclass(frozen=True)
class Run:
    """One evaluation this evaluator made (kept in memory, the last 1,000, for diagnostics)."""

    model_id: int
    started: float  # time.monotonic()
    finished: float
    recorded: bool


ON_DEMAND_WAIT_SECONDS = 20.0  # an on-demand evaluation waits this long for a run elsewhere


class Evaluator(BackgroundLoop):
    name = "monitoring-evaluator"
    log = log

    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float = 1.0,
        lease_seconds: float = 300.0,
        batch: int = 100,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        super().__init__(poll_seconds, owner)
        self.db = db
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.clock = clock
        self.runs: deque[Run] = deque(maxlen=1000)

    # ---- work ----------------------------------------------------------------------------------
    def run_due(self) -> int:
        """Evaluate every model whose run is due (and not leased); the number evaluated here."""
        with self.db.session(write=False) as session:
            due = arepo.due_models(session, utcnow(), self.batch)
        done = 0
        for model_id in due:
            if self.stopping:
                break
            try:
                done += self.evaluate(model_id, due_only=True) is not None
            except Exception:
                log.exception("evaluating the monitoring of model id %s failed", model_id)
        return done

    def evaluate(
        self, model_id: int, *, due_only: bool = False, now: datetime | None = None
    ) -> EvaluationRead | None:
        """Evaluate one model now (`now`: the evaluation's time, default the clock). None when the
        lease is held elsewhere or the run is not due (`due_only`) or the lease was lost."""
        if not self._claim(model_id, due_only):
            return None
        started = time.monotonic()
        recorded: EvaluationRead | None = None
        finished, released = started, False
        try:
            recorded, finished, released = self._evaluate_claimed(model_id, now or self.clock(), started)
        finally:
            if not released:
                finished = self._give_up(model_id)
            self.runs.append(Run(model_id, started, finished, recorded is not None))
        return recorded

    def evaluate_now(self, name: str, now: datetime | None = None) -> EvaluationRead:
        """The evaluation route's: 404 without a configuration; waits up to ON_DEMAND_WAIT_SECONDS
        for a run in progress elsewhere to finish, then 409."""
        with self.db.session(write=False) as session:
            model_id = self._configured(session, name)
        # a run in progress elsewhere (the background one, usually) ends in seconds: wait for it
        deadline = time.monotonic() + ON_DEMAND_WAIT_SECONDS
        result = self.evaluate(model_id, now=now)
        while result is None and time.monotonic() < deadline:
            time.sleep(0.05)
            result = self.evaluate(model_id, now=now)
        if result is None:
            raise EvaluationInProgress(
                f"the monitoring of model {name!r} is being evaluated elsewhere; try again shortly",
                {"name": name},
            )
        return result

    def _configured(self, session: Session, name: str) -> int:
        model = models.load_model(session, name)
        if arepo.get_config(session, model.id) is None:
            raise MonitoringNotConfigured(f"model {name!r} has no monitoring configuration", {"name": name})
        return model.id

    def _claim(self, model_id: int, due_only: bool) -> bool:
        now = utcnow()
        until = now + timedelta(seconds=self.lease_seconds)
        with self.db.session(write=True) as session:
            claimed = arepo.claim(session, model_id, self.owner, now, until, due_only)
            session.commit()
        return claimed

    def _give_up(self, model_id: int) -> float:
        """After a failed run: the lease back, the next run at the usual interval. Returns the
        time (monotonic) just before the lease is released."""
        with self.db.session(write=True) as session:
            row = arepo.get_config(session, model_id)
            interval = row.interval_seconds if row else 60
            arepo.release(session, model_id, self.owner, utcnow() + timedelta(seconds=interval))
            finished = time.monotonic()
            session.commit()
        return finished

    def _evaluate_claimed(
        self, model_id: int, now: datetime, started: float
    ) -> tuple[EvaluationRead | None, float, bool]:
        """(the recorded evaluation or None, the time just before the lease was released, whether
        it was)."""
        with self.db.session(write=False) as session:
            model = arepo.get_model(session, model_id)
            row = arepo.get_config(session, model_id)
            if model is None or row is None:
                return None, time.monotonic(), False
            name, raw = model.name, row.config
            config = MonitoringConfigIn.model_validate(raw)
            measured = measure(session, model, config, now)
        with self.db.session(write=True) as session:
            locked = arepo.locked_config(session, model_id)
            if locked is None or locked.lease_owner != self.owner:
                log.warning("model %s: evaluation lease lost; result discarded", name)
                return None, time.monotonic(), False
            if locked.config != raw:  # replaced meanwhile: its rules' states are not ours to write
                arepo.release(session, model_id, self.owner, None)
                finished = time.monotonic()
                session.commit()
                return None, finished, True
            result = self._record(session, model_id, name, config, measured, now, time.monotonic() - started)
            due = utcnow() + timedelta(seconds=config.monitoring_interval_seconds)
            arepo.release(session, model_id, self.owner, due if config.enabled else NEVER)
            finished = time.monotonic()
            session.commit()
        return result, finished, True

    def _record(
        self,
        session: Session,
        model_id: int,
        name: str,
        config: MonitoringConfigIn,
        m: Measurement,
        now: datetime,
        duration: float,
    ) -> EvaluationRead:
        current = arepo.states(session, model_id)
        changes: list[AlertEventRow] = []
        rules = [r.model_dump() for r in config.alert_rules if r.enabled]
        for raw in rules:
            rule = alerts.Rule.of(raw)
            event = self._step(session, model_id, rule, current.get(rule.name), m, now)
            if event is not None:
                changes.append(event)
        arepo.add_events(session, changes)
        result = {**m.to_json(), "interval_seconds": config.monitoring_interval_seconds}
        arepo.put_evaluation(
            session,
            EvaluationRow(
                model_id=model_id,
                version=m.version,
                evaluated_at=now,
                duration_seconds=duration,
                evaluator=self.owner,
                result=result,
            ),
        )
        session.flush()
        return EvaluationRead(
            name=name,
            version=m.version,
            evaluated_at=utc(now),
            duration_seconds=duration,
            evaluator=self.owner,
            error=m.error,
            window=m.window,
            metrics=m.values,
            reasons=m.reasons,
            changes=[event_read(e) for e in changes],
            rules=state_reads(rules, arepo.states(session, model_id)),
        )

    def _step(
        self,
        session: Session,
        model_id: int,
        rule: alerts.Rule,
        row: AlertStateRow | None,
        m: Measurement,
        now: datetime,
    ) -> AlertEventRow | None:
        value, reason = m.value(rule.metric_name)
        condition = alerts.holds(rule, value)
        before = (
            alerts.State(row.state, utc(row.since), utc(row.active_since) if row.active_since else None)
            if row
            else alerts.State()
        )
        after = alerts.step(rule, before, condition, now)
        evidence = _evidence(rule, value, condition, reason, m, now)
        arepo.put_state(
            session,
            AlertStateRow(
                model_id=model_id,
                rule=rule.name,
                state=after.state,
                since=after.since or now,
                active_since=after.active_since,
                evaluated_at=now,
                evidence=evidence,
            ),
        )
        if after == before:
            return None
        return AlertEventRow(
            model_id=model_id,
            rule=rule.name,
            severity=rule.severity,
            from_state=before.state,
            to_state=after.state,
            at=now,
            evidence=evidence,
        )


def _evidence(
    rule: alerts.Rule, value: float | None, condition: bool, reason: str | None, m: Measurement, now: datetime
) -> dict[str, Any]:
    return {
        "metric": rule.metric_name,
        "value": value,
        "threshold": rule.threshold,
        "operator": rule.operator,
        "condition": condition,
        "reason": reason,
        "window": m.window,
        "version": m.version,
        "evaluated_at": utc(now).isoformat(),
    }
