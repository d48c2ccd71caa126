"""Retraining policies and the gate: framework-free rules, all queries in the repository.

The gate decides, under the model's lock (an advisory lock on PostgreSQL, the write lock on
SQLite), whether a signal starts a run: not while a run a decision of this model started is still
active, not within the cooldown after the last run started, not when the policy is disabled.
Every decision is recorded with its evidence, whatever it is."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlops_kit.errors import Unprocessable
from mlops_kit.pagination import page_fields
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.cron import check_cron, next_fire, zone
from pipeline_orchestrator.engine.state import create_run, utcnow
from pipeline_orchestrator.errors import InvalidRetrainingPolicy, RetrainingPolicyNotFound
from pipeline_orchestrator.retraining import repository as repo
from pipeline_orchestrator.retraining.schemas import (
    DriftTrigger,
    NewDataTrigger,
    PerformanceTrigger,
    RetrainingPolicyIn,
    RetrainingPolicyPage,
    RetrainingPolicyRead,
    RetrainingTriggerConfig,
    RetrainingTriggerPage,
    RetrainingTriggerRead,
    ScheduleTrigger,
)
from pipeline_orchestrator.retraining.tables import RetrainingPolicy, RetrainingTrigger
from pipeline_orchestrator.spec import PipelineSpec, check_known_parameters
from pipeline_orchestrator.tables import Run, RunState

REGISTER_TASK = "register"


@dataclass(frozen=True)
class Signal:
    """One watched signal's reading: whether it fired, and the evidence either way."""

    kind: str
    fired: bool
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    trigger: RetrainingTrigger
    run: Run | None


# policies ------------------------------------------------------------------------------------
def load_policy(session: Session, model: str) -> RetrainingPolicy:
    policy = repo.get_policy(session, model)
    if policy is None:
        raise RetrainingPolicyNotFound(f"model {model!r} has no retraining policy", {"model": model})
    return policy


def find_policy(session: Session, model: str) -> RetrainingPolicy | None:
    return repo.get_policy(session, model)


def from_trigger_config(config: RetrainingTriggerConfig) -> RetrainingPolicyIn:
    """The orchestration document's RetrainingTriggerConfig as a policy (default pipeline, cooldown)."""
    window = config.evaluation_window
    return RetrainingPolicyIn(
        performance=None
        if config.performance_threshold is None
        else PerformanceTrigger(
            metric=config.performance_metric, threshold=config.performance_threshold, window_minutes=window
        ),
        drift=None
        if config.data_drift_threshold is None
        else DriftTrigger(
            threshold=config.data_drift_threshold,
            features=config.drift_monitoring_features,
            window_minutes=window,
        ),
        schedule=None
        if config.retraining_schedule is None
        else ScheduleTrigger(cron=config.retraining_schedule),
        new_data=None
        if config.new_data_threshold is None
        else NewDataTrigger(labelled_rows=config.new_data_threshold),
    )


def put_policy(session: Session, model: str, body: RetrainingPolicyIn) -> RetrainingPolicy:
    """Create or replace the model's policy (its trigger history and last run are kept)."""
    repo.lock_model(session, model)
    _check_pipeline(session, body)
    schedule = _checked_schedule(body.schedule)
    now = utcnow()
    existing = repo.get_policy(session, model)
    policy = existing or RetrainingPolicy(model=model, created_at=now)
    policy.pipeline = body.pipeline
    policy.parameters = body.parameters
    policy.cooldown_seconds = body.cooldown_seconds
    policy.evaluation_interval_seconds = body.evaluation_interval_seconds
    policy.enabled = body.enabled
    policy.triggers = body.model_dump(
        mode="json", include={"performance", "drift", "schedule", "new_data", "alerts"}
    )
    policy.next_evaluation_at = now if (body.performance or body.drift or body.new_data) else None
    policy.next_scheduled_at = next_fire(schedule.cron, schedule.timezone, now) if schedule else None
    policy.updated_at = now
    if existing is None:
        repo.add_policy(session, policy)
    session.flush()
    return policy


def delete_policy(session: Session, model: str) -> None:
    repo.lock_model(session, model)
    repo.delete_policy(session, load_policy(session, model))


def _checked_schedule(schedule: ScheduleTrigger | None) -> ScheduleTrigger | None:
    if schedule is None:
        return None
    zone(schedule.timezone)
    return ScheduleTrigger(cron=check_cron(schedule.cron), timezone=schedule.timezone)


def _check_pipeline(session: Session, body: RetrainingPolicyIn) -> None:
    """The parameters must be the pipeline's, when it exists (it may be defined later)."""
    found = repo.pipeline_by_name(session, body.pipeline)
    if found is None:
        return
    try:
        check_known_parameters(PipelineSpec.model_validate(found[1].definition), body.parameters)
    except Unprocessable as exc:
        raise InvalidRetrainingPolicy(exc.message, exc.details) from None


def read_triggers(policy: RetrainingPolicy) -> dict[str, Any]:
    return {
        "alerts": bool(policy.triggers.get("alerts", True)),
        "performance": policy.triggers.get("performance"),
        "drift": policy.triggers.get("drift"),
        "schedule": policy.triggers.get("schedule"),
        "new_data": policy.triggers.get("new_data"),
    }


# the gate ------------------------------------------------------------------------------------
def gate(session: Session, model: str, signal: Signal, source: str) -> Decision | None:
    """Start the policy's pipeline for a fired signal if the gate allows it; record the decision.
    None when the model has no policy (nothing is recorded)."""
    repo.lock_model(session, model)
    policy = repo.get_policy(session, model)
    if policy is None:
        return None
    now = utcnow()
    decision, reason = _verdict(session, policy, now)
    run: Run | None = None
    trigger = RetrainingTrigger(
        id=str(uuid.uuid4()), model=model, kind=signal.kind, source=source, evidence=signal.evidence, at=now
    )
    if decision == "started":
        run, decision, reason = _start(session, policy, trigger, now)
    trigger.decision, trigger.reason = decision, reason
    trigger.run_id = run.id if run else None
    trigger.run_state = run.state if run else None
    repo.add_trigger(session, trigger)
    return Decision(trigger, run)


def _verdict(session: Session, policy: RetrainingPolicy, now: datetime) -> tuple[str, str]:
    if not policy.enabled:
        return "disabled", "the policy is disabled"
    active = repo.active_run(session, policy.model)
    if active is not None:
        return "already_running", f"retraining run {active} is still active"
    if policy.last_triggered_at is not None:
        until = policy.last_triggered_at + timedelta(seconds=policy.cooldown_seconds)
        if now < until:
            return "cooldown", f"cooling down until {until.isoformat()} (last run {policy.last_run_id})"
    return "started", ""


def _start(
    session: Session, policy: RetrainingPolicy, trigger: RetrainingTrigger, now: datetime
) -> tuple[Run | None, str, str]:
    found = repo.pipeline_by_name(session, policy.pipeline)
    if found is None:
        return None, "pipeline_missing", f"pipeline {policy.pipeline!r} is not defined"
    pipeline, version = found
    parameters = dict(policy.parameters)
    spec = PipelineSpec.model_validate(version.definition)
    if "model_name" in {p.name for p in spec.parameters}:
        parameters.setdefault("model_name", policy.model)
    try:
        run = create_run(
            session,
            pipeline,
            version.definition,
            version.version,
            parameters,
            trigger="retraining",
            trigger_info={"model": policy.model, "kind": trigger.kind, "trigger_id": trigger.id},
        )
    except Unprocessable as exc:
        return None, "failed", exc.message
    policy.last_triggered_at, policy.last_run_id = now, run.id
    return run, "started", f"run {run.id} of {pipeline.name!r} version {version.version}"


# what the runs produced ----------------------------------------------------------------------
def settle_outcomes(session: Session, limit: int = 500) -> int:
    """Record the state of each started run, and once it ended what its register task produced."""
    rows = repo.unsettled_triggers(session, limit)
    states = repo.run_states(session, [r.run_id for r in rows if r.run_id])
    settled = 0
    for row in rows:
        assert row.run_id is not None
        state = states.get(row.run_id)
        row.run_state = state or "deleted"
        if state is None or state in RunState.FINISHED:
            row.produced = dict(repo.task_outputs(session, row.run_id, REGISTER_TASK) or {})
            settled += 1
    session.flush()
    return settled


def produced_version(produced: dict[str, Any] | None) -> str | None:
    if not produced or produced.get("registered") is False:
        return None
    version = produced.get("version")
    return str(version) if version is not None else None


# signals -------------------------------------------------------------------------------------
def performance_signal(config: dict[str, Any], report: dict[str, Any]) -> Signal:
    cfg = PerformanceTrigger.model_validate(config)
    metrics = (report.get("performance") or {}).get("metrics") or {}
    value = (metrics.get(cfg.metric) or {}).get("value")
    n = int((report.get("performance") or {}).get("n_labelled") or 0)
    evidence = {
        "metric": cfg.metric,
        "value": value,
        "threshold": cfg.threshold,
        "window": f"{cfg.window_minutes}m",
        "labelled": n,
        "min_samples": cfg.min_samples,
        "version": report.get("version"),
    }
    if value is None or n < cfg.min_samples:
        return Signal("performance", False, {**evidence, "status": "insufficient_data"})
    worse = value < cfg.threshold if cfg.higher_is_better else value > cfg.threshold
    return Signal("performance", bool(worse), evidence)


def drift_signal(config: dict[str, Any], report: dict[str, Any]) -> Signal:
    cfg = DriftTrigger.model_validate(config)
    watched = set(cfg.features)
    rows = [
        f
        for f in report.get("features") or []
        if f.get("status") == "ok" and (not watched or f.get("feature") in watched)
    ]
    drifted = sorted(str(f["feature"]) for f in rows if f.get("drifted"))
    statistics = {str(f["feature"]): f.get("statistic") for f in rows}
    if cfg.measure == "share":
        value: float | None = len(drifted) / len(rows) if rows else None
    else:
        value = max((float(s) for s in statistics.values() if s is not None), default=None)
    evidence = {
        "metric": f"drift_{cfg.measure}",
        "value": value,
        "threshold": cfg.threshold,
        "window": f"{cfg.window_minutes}m",
        "features": sorted(watched) or None,
        "drifted_features": drifted,
        "statistics": statistics,
        "version": report.get("version"),
        "rows": (report.get("window") or {}).get("count"),
    }
    if value is None:
        return Signal("drift", False, {**evidence, "status": "insufficient_data"})
    return Signal("drift", value > cfg.threshold, evidence)


def new_data_signal(config: dict[str, Any], report: dict[str, Any], since: datetime) -> Signal:
    cfg = NewDataTrigger.model_validate(config)
    labelled = int((report.get("performance") or {}).get("n_labelled") or 0)
    evidence = {
        "metric": "labelled_rows",
        "value": labelled,
        "threshold": cfg.labelled_rows,
        "window": f"since {since.isoformat()}",
        "version": report.get("version"),
    }
    return Signal("new_data", labelled >= cfg.labelled_rows, evidence)


def unavailable(kind: str, config: dict[str, Any], error: str) -> Signal:
    return Signal(kind, False, {"status": "unavailable", "error": error[:1000], "config": config})


def since_last_retraining(policy: RetrainingPolicy) -> datetime:
    return policy.last_triggered_at or policy.created_at


def schedule_signal(policy: RetrainingPolicy, now: datetime) -> Signal | None:
    """The schedule's fire, when it is due; its next fire time is moved on either way."""
    schedule = policy.triggers.get("schedule")
    if not schedule or policy.next_scheduled_at is None or policy.next_scheduled_at > now:
        return None
    fire = policy.next_scheduled_at
    policy.next_scheduled_at = next_fire(schedule["cron"], schedule.get("timezone", "UTC"), now)
    evidence = {"metric": "schedule", "cron": schedule["cron"], "timezone": schedule.get("timezone", "UTC")}
    return Signal("schedule", True, {**evidence, "fire_time": fire.isoformat()})


# answers -------------------------------------------------------------------------------------
def policy_read(policy: RetrainingPolicy) -> RetrainingPolicyRead:
    return RetrainingPolicyRead(
        model=policy.model,
        pipeline=policy.pipeline,
        parameters=policy.parameters,
        cooldown_seconds=policy.cooldown_seconds,
        evaluation_interval_seconds=policy.evaluation_interval_seconds,
        enabled=policy.enabled,
        **read_triggers(policy),
        next_evaluation_at=policy.next_evaluation_at,
        next_scheduled_at=policy.next_scheduled_at,
        last_triggered_at=policy.last_triggered_at,
        last_run_id=policy.last_run_id,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


def policy_page(session: Session, limit: int, offset: int) -> RetrainingPolicyPage:
    total, rows = repo.list_policies(session, limit, offset)
    return RetrainingPolicyPage(items=[policy_read(p) for p in rows], **page_fields(total, limit, offset))


def trigger_reads(session: Session, rows: Sequence[RetrainingTrigger]) -> list[RetrainingTriggerRead]:
    """The records as they are now: a run not settled yet shows its current state, and once it
    ended what it produced (the monitor stores both on its next pass)."""
    states = repo.run_states(session, [r.run_id for r in rows if r.run_id and r.produced is None])
    return [_trigger_read(session, r, states) for r in rows]


def _trigger_read(session: Session, r: RetrainingTrigger, states: dict[str, str]) -> RetrainingTriggerRead:
    state, produced = r.run_state, r.produced
    if r.run_id and produced is None:
        state = states.get(r.run_id, state)
        if state in RunState.FINISHED:
            produced = dict(repo.task_outputs(session, r.run_id, REGISTER_TASK) or {})
    return RetrainingTriggerRead(
        id=r.id,
        model=r.model,
        kind=r.kind,
        source=r.source,
        evidence=r.evidence,
        decision=r.decision,
        reason=r.reason,
        run_id=r.run_id,
        run_state=state,
        produced_version=produced_version(produced),
        produced=produced,
        at=r.at,
    )


def trigger_page(session: Session, model: str | None, limit: int, offset: int) -> RetrainingTriggerPage:
    total, rows = repo.list_triggers(session, model, limit, offset)
    return RetrainingTriggerPage(items=trigger_reads(session, rows), **page_fields(total, limit, offset))
