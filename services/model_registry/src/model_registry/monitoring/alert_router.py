"""Monitoring configuration, alert rules, alert state and history, and evaluation on demand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from mlops_kit.deps import SessionDep, audit_alone
from mlops_kit.pagination import Limit, Offset

from model_registry.deps import ActorDep, ModelDep, NamePath
from model_registry.models import service as models
from model_registry.monitoring import alert_service
from model_registry.monitoring.alert_schemas import (
    AlertsRead,
    EvaluationRead,
    MonitoringConfigIn,
    MonitoringConfigRead,
    MonitoringSetupIn,
)
from model_registry.monitoring.evaluator import Evaluator

router = APIRouter(prefix="/api/models/{name}/monitoring", tags=["monitoring"])
setup_router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])


@router.put(
    "",
    response_model=MonitoringConfigRead,
    summary="Store the model's monitoring configuration and alert rules (replaces any)",
)
def put_config(
    model: ModelDep, body: MonitoringConfigIn, session: SessionDep, who: ActorDep
) -> MonitoringConfigRead:
    return alert_service.put_config(session, model, body, who)


@router.get("", response_model=MonitoringConfigRead, summary="The model's monitoring configuration")
def get_config(model: ModelDep, session: SessionDep) -> MonitoringConfigRead:
    return alert_service.get_config(session, model)


@router.delete("", status_code=204, summary="Stop monitoring the model (its alert history is kept)")
def delete_config(model: ModelDep, session: SessionDep) -> None:
    alert_service.delete_config(session, model)


RuleQuery = Annotated[str | None, Query(max_length=128, description="only this rule's history")]


@router.get(
    "/alerts",
    response_model=AlertsRead,
    summary="Each alert rule's current state, and the state changes with their evidence (newest first)",
)
def get_alerts(
    model: ModelDep, session: SessionDep, rule: RuleQuery = None, limit: Limit = 100, offset: Offset = 0
) -> AlertsRead:
    return alert_service.alerts_read(session, model, rule, limit, offset)


@router.post(
    "/evaluate",
    response_model=EvaluationRead,
    summary="Evaluate the model's rules now (as the background evaluator does at every interval)",
)
async def evaluate(name: NamePath, request: Request) -> EvaluationRead:
    # no request transaction: the run takes its lease, reads, and writes in short transactions of
    # its own (a transaction held across the computation would block the model's writers)
    evaluator: Evaluator = request.app.state.monitoring_evaluator
    result = await run_in_threadpool(evaluator.evaluate_now, name)
    await audit_alone(request, {"version": result.version, "changes": len(result.changes)})
    return result


@setup_router.post(
    "/setup",
    response_model=MonitoringConfigRead,
    summary="The orchestration API's monitoring setup: PUT /api/models/{model_name}/monitoring",
)
def setup(body: MonitoringSetupIn, session: SessionDep, who: ActorDep) -> MonitoringConfigRead:
    models.lock_model(session, body.model_name)
    model = models.load_model(session, body.model_name)
    return alert_service.put_config(session, model, body, who)
