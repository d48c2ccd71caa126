"""Triggers: schedules (list/update/delete), webhook calls, AlertManager's webhook and its routes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from mlops_kit.bounds import JsonObject, PathStr
from mlops_kit.bounds import NulFreeStr as Text
from mlops_kit.bounds import Tags as Labels
from mlops_kit.deps import SessionDep
from mlops_kit.errors import Unprocessable
from mlops_kit.openapi import answers
from mlops_kit.pagination import Limit, Offset, page_fields
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline_orchestrator.api.answers import (
    AlertRoutePage,
    AlertRouteRead,
    AlertsHandled,
    RunRead,
    SchedulePage,
    ScheduleRead,
)
from pipeline_orchestrator.api.common import (
    authorize_alertmanager,
    get_pipeline,
    get_version,
    wake_after_commit,
)
from pipeline_orchestrator.api.serialize import alert_route_json, run_json, schedule_json
from pipeline_orchestrator.engine.cron import check_cron, next_fire, zone
from pipeline_orchestrator.engine.state import create_run, hash_token, utcnow
from pipeline_orchestrator.errors import AlertRouteNotFound, ScheduleNotFound, WebhookNotFound
from pipeline_orchestrator.locks import lock_engine, lock_key
from pipeline_orchestrator.retraining import service as retraining
from pipeline_orchestrator.spec import PipelineSpec, check_known_parameters, resolve_parameters
from pipeline_orchestrator.tables import AlertRoute, Pipeline, Run, RunState, Schedule, Webhook

router = APIRouter(tags=["triggers"])
# AlertManager's webhook has its own credential (the alert webhook token), not the API-key rule
# the kit puts on `router`: app.py includes it on its own
alertmanager_router = APIRouter(tags=["triggers"], dependencies=[Depends(authorize_alertmanager)])


# schedules -----------------------------------------------------------------------------------


def _schedule(session: Session, schedule_id: str) -> Schedule:
    schedule = session.get(Schedule, schedule_id) if len(schedule_id) <= 36 else None
    if schedule is None:
        raise ScheduleNotFound(f"schedule {schedule_id!r} not found", {"schedule_id": schedule_id})
    return schedule


def _pipeline_name(session: Session, pipeline_id: str) -> str:
    return session.scalar(select(Pipeline.name).where(Pipeline.id == pipeline_id)) or "?"


@router.get("/api/schedules", tags=["schedules"], response_model=None, responses=answers(SchedulePage))
def list_schedules(
    session: SessionDep,
    pipeline: str | None = Query(default=None, max_length=100),
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    query = select(Schedule)
    if pipeline:
        query = query.where(Schedule.pipeline_id == get_pipeline(session, pipeline).id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Schedule.created_at).limit(limit).offset(offset)).all()
    return {
        "items": [schedule_json(s, _pipeline_name(session, s.pipeline_id)) for s in rows],
        **page_fields(total, limit, offset),
    }


@router.get(
    "/api/schedules/{schedule_id}", tags=["schedules"], response_model=None, responses=answers(ScheduleRead)
)
def read_schedule(schedule_id: PathStr, session: SessionDep) -> dict[str, Any]:
    s = _schedule(session, schedule_id)
    return schedule_json(s, _pipeline_name(session, s.pipeline_id))


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: Text | None = Field(default=None, min_length=1, max_length=120)
    timezone: Text | None = Field(default=None, max_length=64)
    parameters: JsonObject | None = None
    catchup: bool | None = None
    enabled: bool | None = None


@router.patch(
    "/api/schedules/{schedule_id}", tags=["schedules"], response_model=None, responses=answers(ScheduleRead)
)
def update_schedule(schedule_id: PathStr, body: ScheduleUpdate, session: SessionDep) -> dict[str, Any]:
    lock_engine(session)
    s = _schedule(session, schedule_id)
    pipeline = session.get(Pipeline, s.pipeline_id)
    assert pipeline is not None
    if body.cron is not None:
        s.cron = check_cron(body.cron)
    if body.timezone is not None:
        zone(body.timezone)
        s.timezone = body.timezone
    if body.parameters is not None:
        resolve_parameters(
            PipelineSpec.model_validate(get_version(session, pipeline).definition), body.parameters
        )
        s.parameters = body.parameters
    if body.catchup is not None:
        s.catchup = body.catchup
    if body.enabled is not None:
        s.enabled = body.enabled
    if body.cron is not None or body.timezone is not None or body.enabled:
        # from now on; a re-enabled schedule does not replay the time it was off
        s.next_run_at = next_fire(s.cron, s.timezone, utcnow())
    session.flush()
    return schedule_json(s, pipeline.name)


@router.delete("/api/schedules/{schedule_id}", status_code=204, tags=["schedules"])
def delete_schedule(schedule_id: PathStr, session: SessionDep) -> Response:
    session.delete(_schedule(session, schedule_id))
    return Response(status_code=204)


# webhooks ------------------------------------------------------------------------------------


class _OpenObject(BaseModel):
    """A body that keeps unknown fields (AlertManager's, a webhook caller's) but no more of them
    than its schema's `maxProperties` says."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 100})

    @model_validator(mode="before")
    @classmethod
    def _at_most_max_properties(cls, data: Any) -> Any:
        extra = cls.model_config.get("json_schema_extra")
        limit = extra.get("maxProperties") if isinstance(extra, dict) else None
        if isinstance(data, dict) and isinstance(limit, int) and len(data) > limit:
            raise ValueError(f"at most {limit} properties")
        return data


class WebhookCall(_OpenObject):
    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 1000})

    parameters: JsonObject = Field(default_factory=dict)


@router.post(
    "/api/triggers/webhooks/{token}", status_code=201, response_model=None, responses=answers(RunRead, 201)
)
def fire_webhook(
    token: PathStr, request: Request, session: SessionDep, body: WebhookCall | None = None
) -> dict[str, Any]:
    hook = session.scalar(select(Webhook).where(Webhook.token_hash == hash_token(token)))
    if hook is None:
        raise WebhookNotFound("unknown webhook")
    pipeline = session.get(Pipeline, hook.pipeline_id)
    assert pipeline is not None
    version = get_version(session, pipeline)
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
    wake_after_commit(request, session, [run.id])
    return run_json(run)


@router.delete("/api/webhooks/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: PathStr, session: SessionDep) -> Response:
    hook = session.get(Webhook, webhook_id) if len(webhook_id) <= 36 else None
    if hook is None:
        raise WebhookNotFound(f"webhook {webhook_id!r} not found")
    session.delete(hook)
    return Response(status_code=204)


# alert routes and AlertManager ---------------------------------------------------------------


class AlertRouteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alertname: Text = Field(min_length=1, max_length=200)
    pipeline: Text = Field(min_length=1, max_length=100, description="a pipeline id or name")
    match: Labels = Field(default_factory=dict, description="labels the alert must carry")
    parameters: JsonObject = Field(
        default_factory=dict,
        description="run parameters; may use {{ alert.labels.x }} / {{ alert.annotations.x }}",
    )
    cooldown_seconds: float = Field(default=3600.0, ge=0, le=30 * 86_400)


@router.post(
    "/api/triggers/alert-routes", status_code=201, response_model=None, responses=answers(AlertRouteRead, 201)
)
def create_alert_route(body: AlertRouteCreate, session: SessionDep) -> dict[str, Any]:
    pipeline = get_pipeline(session, body.pipeline)
    check_known_parameters(
        PipelineSpec.model_validate(get_version(session, pipeline).definition), body.parameters
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
    session.add(route)
    session.flush()
    return alert_route_json(route, pipeline.name)


@router.get("/api/triggers/alert-routes", response_model=None, responses=answers(AlertRoutePage))
def list_alert_routes(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(AlertRoute)) or 0
    rows = session.scalars(
        select(AlertRoute).order_by(AlertRoute.created_at).limit(limit).offset(offset)
    ).all()
    return {
        "items": [alert_route_json(r, _pipeline_name(session, r.pipeline_id)) for r in rows],
        **page_fields(total, limit, offset),
    }


@router.delete("/api/triggers/alert-routes/{route_id}", status_code=204)
def delete_alert_route(route_id: PathStr, session: SessionDep) -> Response:
    route = session.get(AlertRoute, route_id) if len(route_id) <= 36 else None
    if route is None:
        raise AlertRouteNotFound(f"alert route {route_id!r} not found")
    session.delete(route)
    return Response(status_code=204)


class Alert(_OpenObject):
    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 100})

    status: Text = Field(default="firing", max_length=64)
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    startsAt: Text | None = Field(default=None, max_length=64)
    fingerprint: Text | None = Field(default=None, max_length=256)


class AlertManagerPayload(_OpenObject):
    """AlertManager's webhook body (version 4); fields we do not use are accepted and ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 100})

    version: Text | None = Field(default=None, max_length=64)
    status: Text | None = Field(default=None, max_length=64)
    receiver: Text | None = Field(default=None, max_length=256)
    alerts: list[Alert] = Field(default_factory=list, max_length=1000)


@alertmanager_router.post("/api/triggers/alertmanager", response_model=None, responses=answers(AlertsHandled))
def alertmanager_webhook(body: AlertManagerPayload, request: Request, session: SessionDep) -> dict[str, Any]:
    """Start the pipeline mapped to each firing alert: the entry point of automated retraining."""
    lock_key(session, "alert-runs")  # the cool-down checks and the runs they allow, one post at a time
    started: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    now = utcnow()
    routes = session.scalars(select(AlertRoute).order_by(AlertRoute.created_at)).all()
    for alert in body.alerts:
        name = alert.labels.get("alertname", "")
        if alert.status != "firing":
            skipped.append({"alertname": name, "reason": f"status {alert.status}"})
            continue
        if _retrain(session, alert, started, skipped):
            continue
        matching = [
            r
            for r in routes
            if r.alertname == name and all(alert.labels.get(k) == v for k, v in (r.match or {}).items())
        ]
        targets: list[tuple[AlertRoute | None, Pipeline]] = []
        for candidate in matching:
            pipeline = session.get(Pipeline, candidate.pipeline_id)
            if pipeline is not None:
                targets.append((candidate, pipeline))
        if not targets and alert.labels.get("pipeline"):
            pipeline = session.scalar(select(Pipeline).where(Pipeline.name == alert.labels["pipeline"]))
            if pipeline is not None:
                targets.append((None, pipeline))
        if not targets:
            skipped.append({"alertname": name, "reason": "no alert route and no known 'pipeline' label"})
            continue
        for route, pipeline in targets:
            reason = _cooling_down(session, route, pipeline, now)
            if reason:
                skipped.append({"alertname": name, "pipeline": pipeline.name, "reason": reason})
                continue
            version = get_version(session, pipeline)
            scope = {"alert": {"labels": alert.labels, "annotations": alert.annotations}}
            try:
                parameters = _render_alert(route.parameters if route else {}, scope)
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
                skipped.append({"alertname": name, "pipeline": pipeline.name, "reason": exc.message})
                continue
            if route is not None:
                route.last_fired_at = now
            started.append(
                {
                    "run_id": run.id,
                    "pipeline": pipeline.name,
                    "alertname": name,
                    "fingerprint": alert.fingerprint,
                }
            )
    session.flush()
    wake_after_commit(request, session, [s["run_id"] for s in started])
    return {"started": started, "skipped": skipped}


def _retrain(
    session: Session, alert: Alert, started: list[dict[str, Any]], skipped: list[dict[str, Any]]
) -> bool:
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
        started.append({**entry, "run_id": decision.run.id, "fingerprint": alert.fingerprint})
    else:
        skipped.append({**entry, "reason": f"{decision.trigger.decision}: {decision.trigger.reason}"})
    return True


def _cooling_down(session: Session, route: AlertRoute | None, pipeline: Pipeline, now: Any) -> str | None:
    active = session.scalar(
        select(Run.id)
        .where(Run.pipeline_id == pipeline.id, Run.trigger == "alertmanager", Run.state.in_(RunState.ACTIVE))
        .limit(1)
    )
    if active:
        return f"an alert-triggered run of {pipeline.name!r} is still active ({active})"
    if route is not None and route.last_fired_at is not None:
        until = route.last_fired_at + timedelta(seconds=route.cooldown_seconds)
        if now < until:
            return f"cooling down until {until.isoformat()}"
    return None


def _render_alert(parameters: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    """{{ alert.labels.model }} in a route's parameters, from the alert being handled."""
    import re

    pattern = re.compile(r"\{\{\s*alert\.(labels|annotations)\.([A-Za-z0-9_]+)\s*\}\}")

    def one(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: str(scope["alert"][m.group(1)].get(m.group(2), "")), value)
        if isinstance(value, dict):
            return {k: one(v) for k, v in value.items()}
        if isinstance(value, list):
            return [one(v) for v in value]
        return value

    return one(parameters)
