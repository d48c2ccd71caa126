"""Monitoring configuration use cases (put, get, delete, validated against the watched version's
reference), the stored drift configuration, and alert state and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.bounds import MAX_TIME
from mlops_kit.errors import AppError
from mlops_kit.pagination import page_fields
from sqlalchemy.orm import Session

from model_registry.errors import InvalidMonitoringConfig, MonitoringNotConfigured
from model_registry.monitoring import alert_repository as arepo
from model_registry.monitoring import alerts, service
from model_registry.monitoring import repository as repo
from model_registry.monitoring.alert_schemas import (
    AlertEventRead,
    AlertsRead,
    AlertStateRead,
    MonitoringConfigIn,
    MonitoringConfigRead,
)
from model_registry.monitoring.evaluation import drift_config, watched_version
from model_registry.monitoring.profile import Profile
from model_registry.monitoring.report import DriftConfig, DriftConfigError, validate_config
from model_registry.monitoring.tables import AlertEventRow, AlertStateRow, MonitoringConfigRow
from model_registry.monitoring.times import utc
from model_registry.tables import RegisteredModel

NEVER = MAX_TIME  # next_due_at of a disabled configuration


# ---- validation -------------------------------------------------------------------------------


def _reference_problems(
    session: Session, model: RegisteredModel, body: MonitoringConfigIn
) -> tuple[list[str], list[str] | None]:
    """(problems, the watched version's reference columns or None when there is no reference)."""
    try:
        version = watched_version(session, model, body.version)
    except AppError as exc:
        return ([f"version: {exc.message}"] if body.version is not None else []), None
    row = repo.get_reference(session, version.id)
    if row is None:
        return [], None
    profile = Profile.from_json(row.profile)
    try:
        validate_config(profile, drift_config(body.drift))
    except DriftConfigError as exc:
        return [f"drift: {p} (version {version.version!r})" for p in exc.problems], list(profile.columns)
    return [], list(profile.columns)


def problems_of(session: Session, model: RegisteredModel, body: MonitoringConfigIn) -> list[str]:
    problems: list[str] = []
    if body.model_name is not None and body.model_name != model.name:
        problems.append(f"model_name {body.model_name!r} does not match the model {model.name!r}")
    if body.window is not None:
        try:
            service.parse_last(body.window)
        except AppError as exc:
            problems.append(f"window: {exc.message}")
    found, features = _reference_problems(session, model, body)
    rules = [alerts.Rule.of(r.model_dump()) for r in body.alert_rules]
    return problems + found + alerts.rule_problems(rules, body.drift_detection_enabled, features)


# ---- configuration ----------------------------------------------------------------------------


def _read(model: RegisteredModel, row: MonitoringConfigRow) -> MonitoringConfigRead:
    due = utc(row.next_due_at)
    return MonitoringConfigRead(
        **{**row.config, "model_name": model.name},
        next_evaluation_at=None if due >= NEVER else due,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        updated_by=row.updated_by,
    )


def _stored(body: MonitoringConfigIn) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude={"model_name"})


def _reset(session: Session, model_id: int, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    """Drop the state of every rule that is removed, changed or disabled; a pending or firing one
    gets a recorded change to inactive saying why."""
    before = {r["name"]: r for r in (old or {}).get("alert_rules", [])}
    after = {r["name"]: r for r in (new or {}).get("alert_rules", []) if r.get("enabled", True)}
    gone = [name for name, rule in before.items() if after.get(name) != rule]
    current = arepo.states(session, model_id)
    now = utcnow()
    why = "monitoring configuration deleted" if new is None else "rule removed, changed or disabled"
    events = [
        AlertEventRow(
            model_id=model_id,
            rule=name,
            severity=before[name].get("severity", "medium"),
            from_state=current[name].state,
            to_state=alerts.INACTIVE,
            at=now,
            evidence={"reason": why, "evaluated_at": now.isoformat()},
        )
        for name in gone
        if name in current and current[name].state in (alerts.PENDING, alerts.FIRING)
    ]
    arepo.add_events(session, events)
    arepo.drop_states(session, model_id, [name for name in gone if name in current])


def put_config(
    session: Session, model: RegisteredModel, body: MonitoringConfigIn, actor: str
) -> MonitoringConfigRead:
    """Validate and store (replacing any); the first evaluation is due at once. The caller holds
    the model's lock. A running evaluation keeps its lease; its result is written under the new
    rules' names only if they are unchanged."""
    problems = problems_of(session, model, body)
    if problems:
        raise InvalidMonitoringConfig(
            f"the monitoring configuration has {len(problems)} problem(s): " + "; ".join(problems[:5]),
            {"problems": problems},
        )
    now = utcnow()
    row = arepo.get_config(session, model.id)
    stored = _stored(body)
    _reset(session, model.id, row.config if row else None, stored)
    if row is None:
        row = arepo.add_config(session, MonitoringConfigRow(model_id=model.id, created_at=now))
    row.config = stored
    row.interval_seconds = body.monitoring_interval_seconds
    row.next_due_at = now if body.enabled else NEVER
    row.updated_at = now
    row.updated_by = actor
    session.flush()
    return _read(model, row)


def load_config(session: Session, model: RegisteredModel) -> MonitoringConfigRow:
    row = arepo.get_config(session, model.id)
    if row is None:
        raise MonitoringNotConfigured(
            f"model {model.name!r} has no monitoring configuration; PUT one at "
            f"/api/models/{model.name}/monitoring",
            {"name": model.name},
        )
    return row


def get_config(session: Session, model: RegisteredModel) -> MonitoringConfigRead:
    return _read(model, load_config(session, model))


def delete_config(session: Session, model: RegisteredModel) -> None:
    row = load_config(session, model)
    _reset(session, model.id, row.config, None)
    arepo.delete_config(session, model.id)


def stored_drift_config(session: Session, model: RegisteredModel) -> DriftConfig | None:
    """The drift configuration of the model's monitoring configuration, if any (the drift route
    applies it; it is validated against the reference when applied)."""
    row = arepo.get_config(session, model.id)
    if row is None:
        return None
    return drift_config(MonitoringConfigIn.model_validate(row.config).drift)


# ---- alert state and history ------------------------------------------------------------------


def _when(moment: datetime | None) -> datetime | None:
    return utc(moment) if moment else None


def state_reads(rules: list[dict[str, Any]], states: dict[str, AlertStateRow]) -> list[AlertStateRead]:
    out = []
    for rule in rules:
        row = states.get(rule["name"])
        out.append(
            AlertStateRead(
                rule=rule["name"],
                alert_type=rule["alert_type"],
                severity=rule["severity"],
                metric_name=rule["metric_name"],
                state=row.state if row else alerts.INACTIVE,
                since=_when(row.since) if row else None,
                active_since=_when(row.active_since) if row else None,
                evaluated_at=_when(row.evaluated_at) if row else None,
                evidence=row.evidence if row else None,
            )
        )
    return out


def event_read(row: AlertEventRow) -> AlertEventRead:
    return AlertEventRead(
        id=row.id,
        rule=row.rule,
        severity=row.severity,
        from_state=row.from_state,
        to_state=row.to_state,
        at=utc(row.at),
        evidence=row.evidence,
    )


def alerts_read(
    session: Session, model: RegisteredModel, rule: str | None, limit: int, offset: int
) -> AlertsRead:
    """Each configured rule's current state, and the model's state changes, newest first."""
    row = arepo.get_config(session, model.id)
    rules = [r for r in (row.config["alert_rules"] if row else []) if r.get("enabled", True)]
    events, total = arepo.events(session, model.id, rule, limit, offset)
    evaluation = arepo.get_evaluation(session, model.id)
    last = None
    if evaluation is not None:
        last = {
            "version": evaluation.version,
            "evaluated_at": utc(evaluation.evaluated_at).isoformat(),
            "duration_seconds": evaluation.duration_seconds,
            "evaluator": evaluation.evaluator,
            "error": evaluation.result.get("error"),
        }
    return AlertsRead(
        name=model.name,
        last_evaluation=last,
        rules=state_reads(rules, arepo.states(session, model.id)),
        history=[event_read(e) for e in events],
        **page_fields(total, limit, offset),
    )
