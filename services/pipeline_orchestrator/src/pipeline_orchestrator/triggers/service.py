"""Schedules, webhooks, alert routes and AlertManager's alerts: framework-free rules, all queries in
the repository.

An AlertManager post is handled under one lock (`alert-runs`): for each firing alert, a model with
a retraining policy goes through that policy's gate; otherwise the alert's routes (or its `pipeline`
label) name the pipelines to start, each held back while an alert-started run of it is active or
while its route cools down after the last run it started."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlops_kit.errors import Unprocessable
from mlops_kit.pagination import page_fields
from sqlalchemy.orm import Session

from pipeline_orchestrator.api.serialize import alert_route_json, run_json, schedule_json
from pipeline_orchestrator.engine.cron import check_cron, next_fire, zone
from pipeline_orchestrator.engine.state import create_run, hash_token, utcnow
from pipeline_orchestrator.errors import (
    AlertRouteNotFound,
    ScheduleNotFound,
    WebhookNotFound,
)
from pipeline_orchestrator.pipelines.service import load_pipeline, load_version
from pipeline_orchestrator.retraining import service as retraining
from pipeline_orchestrator.spec import PipelineSpec, check_known_parameters, resolve_parameters
from pipeline_orchestrator.tables import AlertRoute, Pipeline, Run, Schedule
from pipeline_orchestrator.triggers import repository as repo
from pipeline_orchestrator.triggers.schemas import (
    Alert,
    AlertManagerPayload,
    AlertRouteCreate,
    AlertRoutePage,
    AlertRouteRead,
    AlertsHandled,
    RunRead,
    SchedulePage,
    ScheduleRead,
    ScheduleUpdate,
    WebhookCall,
)

_ALERT_REFERENCE = re.compile(r"\{\{\s*alert\.(labels|annotations)\.([A-Za-z0-9_]+)\s*\}\}")


# pipelines a trigger starts ------------------------------------------------------------------


def _pipeline_name(session: Session, pipeline_id: str) -> str:
    return repo.pipeline_name(session, pipeline_id) or "?"


def _run_read(run: Run) -> RunRead:
    # only the fields run_json gives are set: the answer has no `progress` nor `tasks`
    return RunRead.model_validate(run_json(run))


# schedules -----------------------------------------------------------------------------------


def load_schedule(session: Session, schedule_id: str) -> Schedule:
    schedule = repo.get_schedule(session, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(f"schedule {schedule_id!r} not found", {"schedule_id": schedule_id})
    return schedule


def schedule_read(session: Session, schedule: Schedule) -> ScheduleRead:
    return ScheduleRead.model_validate(schedule_json(schedule, _pipeline_name(session, schedule.pipeline_id)))


def schedule_page(session: Session, pipeline: str | None, limit: int, offset: int) -> SchedulePage:
    pipeline_id = load_pipeline(session, pipeline).id if pipeline else None
    total, rows = repo.list_schedules(session, pipeline_id, limit, offset)
    return SchedulePage(
        items=[schedule_read(session, s) for s in rows],
        **page_fields(total, limit, offset),
    )


def update_schedule(session: Session, schedule_id: str, body: ScheduleUpdate) -> ScheduleRead:
    repo.lock_engine(session)  # before the read: never beside a scheduling pass firing this schedule
    s = load_schedule(session, schedule_id)
    pipeline = repo.get_pipeline(session, s.pipeline_id)
    assert pipeline is not None
    if body.cron is not None:
        s.cron = check_cron(body.cron)
    if body.timezone is not None:
        zone(body.timezone)
        s.timezone = body.timezone
    if body.parameters is not None:
        definition = load_version(session, pipeline).definition
        resolve_parameters(PipelineSpec.model_validate(definition), body.parameters)
        s.parameters = body.parameters
    if body.catchup is not None:
        s.catchup = body.catchup
    if body.enabled is not None:
        s.enabled = body.enabled
    if body.cron is not None or body.timezone is not None or body.enabled:
        # from now on; a re-enabled schedule does not replay the time it was off
        s.next_run_at = next_fire(s.cron, s.timezone, utcnow())
    session.flush()
    return ScheduleRead.model_validate(schedule_json(s, pipeline.name))


def delete_schedule(session: Session, schedule: Schedule) -> None:
    repo.delete_schedule(session, schedule)


# webhooks ------------------------------------------------------------------------------------


def fire_webhook(session: Session, token: str, body: WebhookCall | None) -> RunRead:
    """Start a run of the webhook's pipeline: its parameters, overridden by the caller's."""
    hook = repo.webhook_by_token_hash(session, hash_token(token))
    if hook is None:
        raise WebhookNotFound("unknown webhook")
    pipeline = repo.get_pipeline(session, hook.pipeline_id)
    assert pipeline is not None
    version = load_version(session, pipeline)
    parameters = {**(hook.parameters or {}), **(body.parameters if body else {})}
    run = create_run(
        session,
        pipeline,
        version.definition,
        version.version,
        parameters,
        trigger="webhook",
        trigger_info={"webhook_id": hook.id},
    )
    session.flush()
    return _run_read(run)


def delete_webhook(session: Session, webhook_id: str) -> None:
    hook = repo.get_webhook(session, webhook_id)
    if hook is None:
        raise WebhookNotFound(f"webhook {webhook_id!r} not found")
    repo.delete_webhook(session, hook)


# alert routes --------------------------------------------------------------------------------


def _alert_route_read(route: AlertRoute, pipeline_name: str) -> AlertRouteRead:
    return AlertRouteRead.model_validate(alert_route_json(route, pipeline_name))


def create_alert_route(session: Session, body: AlertRouteCreate) -> AlertRouteRead:
    pipeline = load_pipeline(session, body.pipeline)
    check_known_parameters(
        PipelineSpec.model_validate(load_version(session, pipeline).definition), body.parameters
    )
    route = AlertRoute(
        id=str(uuid.uuid4()),
        alertname=body.alertname,
        pipeline_id=pipeline.id,
        match=body.match,
        parameters=body.parameters,
        cooldown_seconds=body.cooldown_seconds,
        created_at=utcnow(),
    )
    repo.add_alert_route(session, route)
    return _alert_route_read(route, pipeline.name)


def alert_route_page(session: Session, limit: int, offset: int) -> AlertRoutePage:
    total, rows = repo.list_alert_routes(session, limit, offset)
    return AlertRoutePage(
        items=[_alert_route_read(r, _pipeline_name(session, r.pipeline_id)) for r in rows],
        **page_fields(total, limit, offset),
    )


def delete_alert_route(session: Session, route_id: str) -> None:
    route = repo.get_alert_route(session, route_id)
    if route is None:
        raise AlertRouteNotFound(f"alert route {route_id!r} not found")
    repo.delete_alert_route(session, route)


# AlertManager --------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """The runs an AlertManager post started and the alerts (or targets) it skipped, with why."""

    started: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def handle_alerts(session: Session, body: AlertManagerPayload) -> AlertsHandled:
    """Start the pipeline mapped to each firing alert: the entry point of automated retraining."""
    repo.lock_alert_runs(session)  # the cool-down checks and the runs they allow, one post at a time
    outcome = _Outcome()
    now = utcnow()
    routes = repo.all_alert_routes(session)
    for alert in body.alerts:
        name = alert.labels.get("alertname", "")
        if alert.status != "firing":
            outcome.skipped.append({"alertname": name, "reason": f"status {alert.status}"})
            continue
        if _retrain(session, alert, outcome):
            continue
        targets = _targets(session, alert, routes)
        if not targets:
            outcome.skipped.append(
                {"alertname": name, "reason": "no alert route and no known 'pipeline' label"}
            )
            continue
        for route, pipeline in targets:
            _start(session, alert, route, pipeline, now, outcome)
    session.flush()
    return AlertsHandled(started=outcome.started, skipped=outcome.skipped)


def _targets(
    session: Session, alert: Alert, routes: Sequence[AlertRoute]
) -> list[tuple[AlertRoute | None, Pipeline]]:
    """The alert's routes' pipelines; without any, the pipeline its `pipeline` label names."""
    name = alert.labels.get("alertname", "")
    targets: list[tuple[AlertRoute | None, Pipeline]] = []
    for route in routes:
        if route.alertname != name or any(alert.labels.get(k) != v for k, v in (route.match or {}).items()):
            continue
        pipeline = repo.get_pipeline(session, route.pipeline_id)
        if pipeline is not None:
            targets.append((route, pipeline))
    if not targets and alert.labels.get("pipeline"):
        pipeline = repo.pipeline_by_name(session, alert.labels["pipeline"])
        if pipeline is not None:
            targets.append((None, pipeline))
    return targets


def _start(
    session: Session,
    alert: Alert,
    route: AlertRoute | None,
    pipeline: Pipeline,
    now: datetime,
    outcome: _Outcome,
) -> None:
    name = alert.labels.get("alertname", "")
    reason = _cooling_down(session, route, pipeline, now)
    if reason:
        outcome.skipped.append({"alertname": name, "pipeline": pipeline.name, "reason": reason})
        return
    version = load_version(session, pipeline)
    scope = {"alert": {"labels": alert.labels, "annotations": alert.annotations}}
    try:
        parameters = render_alert(route.parameters if route else {}, scope)
        run = create_run(
            session,
            pipeline,
            version.definition,
            version.version,
            parameters,
            trigger="alertmanager",
            trigger_info={
                "alertname": name,
                "labels": alert.labels,
                "fingerprint": alert.fingerprint,
                "route_id": route.id if route else None,
            },
        )
    except Unprocessable as exc:
        outcome.skipped.append({"alertname": name, "pipeline": pipeline.name, "reason": exc.message})
        return
    if route is not None:
        route.last_fired_at = now
    outcome.started.append(
        {"run_id": run.id, "pipeline": pipeline.name, "alertname": name, "fingerprint": alert.fingerprint}
    )


def _retrain(session: Session, alert: Alert, outcome: _Outcome) -> bool:
    """A firing alert with a `model` label whose model has a retraining policy (alerts on) goes
    through that policy's gate, and to no alert route. False when there is no such policy."""
    model = alert.labels.get("model")
    policy = retraining.find_policy(session, model) if model and len(model) <= 128 else None
    if model is None or policy is None or not policy.triggers.get("alerts", True):
        return False
    name = alert.labels.get("alertname", "")
    evidence = {
        "alertname": name,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "fingerprint": alert.fingerprint,
        "starts_at": alert.startsAt,
    }
    decision = retraining.gate(session, model, retraining.Signal("alert", True, evidence), "alertmanager")
    if decision is None:
        return False
    entry = {
        "alertname": name,
        "model": model,
        "pipeline": policy.pipeline,
        "trigger_id": decision.trigger.id,
    }
    if decision.run is not None:
        outcome.started.append({**entry, "run_id": decision.run.id, "fingerprint": alert.fingerprint})
    else:
        outcome.skipped.append({**entry, "reason": f"{decision.trigger.decision}: {decision.trigger.reason}"})
    return True


def _cooling_down(
    session: Session, route: AlertRoute | None, pipeline: Pipeline, now: datetime
) -> str | None:
    active = repo.active_alert_run(session, pipeline.id)
    if active:
        return f"an alert-triggered run of {pipeline.name!r} is still active ({active})"
    if route is not None and route.last_fired_at is not None:
        until = route.last_fired_at + timedelta(seconds=route.cooldown_seconds)
        if now < until:
            return f"cooling down until {until.isoformat()}"
    return None


def render_alert(parameters: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    """{{ alert.labels.model }} in a route's parameters, from the alert being handled."""

    def one(value: Any) -> Any:
        if isinstance(value, str):
            return _ALERT_REFERENCE.sub(lambda m: str(scope["alert"][m.group(1)].get(m.group(2), "")), value)
        if isinstance(value, dict):
            return {k: one(v) for k, v in value.items()}
        if isinstance(value, list):
            return [one(v) for v in value]
        return value

    result: dict[str, Any] = one(parameters)
    return result
