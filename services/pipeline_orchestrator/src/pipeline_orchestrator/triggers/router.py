"""Trigger routes: schedules (list/read/update/delete), webhook calls, alert routes and
AlertManager's webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from mlops_kit.bounds import PathStr
from mlops_kit.deps import SessionDep
from mlops_kit.pagination import Limit, Offset

from pipeline_orchestrator.api.common import authorize_alertmanager, wake_after_commit
from pipeline_orchestrator.tables import Schedule
from pipeline_orchestrator.triggers import service
from pipeline_orchestrator.triggers.schemas import (
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

router = APIRouter(tags=["triggers"])
# AlertManager's webhook has its own credential (the alert webhook token), not the API-key rule
# the kit puts on `router`: app.py includes it on its own
alertmanager_router = APIRouter(tags=["triggers"], dependencies=[Depends(authorize_alertmanager)])


def _schedule(schedule_id: PathStr, session: SessionDep) -> Schedule:
    return service.load_schedule(session, schedule_id)


ScheduleDep = Annotated[Schedule, Depends(_schedule)]


# schedules -----------------------------------------------------------------------------------


@router.get("/api/schedules", tags=["schedules"], response_model=SchedulePage, summary="List schedules")
def list_schedules(
    session: SessionDep,
    pipeline: str | None = Query(default=None, max_length=100),
    limit: Limit = 100,
    offset: Offset = 0,
) -> SchedulePage:
    return service.schedule_page(session, pipeline, limit, offset)


@router.get(
    "/api/schedules/{schedule_id}", tags=["schedules"], response_model=ScheduleRead, summary="A schedule"
)
def read_schedule(schedule: ScheduleDep, session: SessionDep) -> ScheduleRead:
    return service.schedule_read(session, schedule)


@router.patch(
    "/api/schedules/{schedule_id}",
    tags=["schedules"],
    response_model=ScheduleRead,
    summary="Change a schedule's cron, timezone, parameters, catch-up or enabled flag",
)
def update_schedule(schedule_id: PathStr, body: ScheduleUpdate, session: SessionDep) -> ScheduleRead:
    # the schedule is read under the engine's lock: no load-or-404 dependency before it
    return service.update_schedule(session, schedule_id, body)


@router.delete(
    "/api/schedules/{schedule_id}", status_code=204, tags=["schedules"], summary="Remove a schedule"
)
def delete_schedule(schedule: ScheduleDep, session: SessionDep) -> Response:
    service.delete_schedule(session, schedule)
    return Response(status_code=204)


# webhooks ------------------------------------------------------------------------------------


@router.post(
    "/api/triggers/webhooks/{token}",
    status_code=201,
    response_model=RunRead,
    response_model_exclude_unset=True,
    summary="Start a run of the webhook's pipeline",
)
def fire_webhook(
    token: PathStr, request: Request, session: SessionDep, body: WebhookCall | None = None
) -> RunRead:
    run = service.fire_webhook(session, token, body)
    wake_after_commit(request, session, [run.id])
    return run


@router.delete("/api/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook")
def delete_webhook(webhook_id: PathStr, session: SessionDep) -> Response:
    service.delete_webhook(session, webhook_id)
    return Response(status_code=204)


# alert routes and AlertManager ---------------------------------------------------------------


@router.post(
    "/api/triggers/alert-routes",
    status_code=201,
    response_model=AlertRouteRead,
    summary="Route an alert (by name and labels) to a pipeline",
)
def create_alert_route(body: AlertRouteCreate, session: SessionDep) -> AlertRouteRead:
    return service.create_alert_route(session, body)


@router.get("/api/triggers/alert-routes", response_model=AlertRoutePage, summary="List alert routes")
def list_alert_routes(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> AlertRoutePage:
    return service.alert_route_page(session, limit, offset)


@router.delete("/api/triggers/alert-routes/{route_id}", status_code=204, summary="Remove an alert route")
def delete_alert_route(route_id: PathStr, session: SessionDep) -> Response:
    service.delete_alert_route(session, route_id)
    return Response(status_code=204)


@alertmanager_router.post("/api/triggers/alertmanager", response_model=AlertsHandled)
def alertmanager_webhook(body: AlertManagerPayload, request: Request, session: SessionDep) -> AlertsHandled:
    """Start the pipeline mapped to each firing alert: the entry point of automated retraining."""
    handled = service.handle_alerts(session, body)
    wake_after_commit(request, session, [s["run_id"] for s in handled.started])
    return handled
