"""Retraining policies, the orchestration document's setup route, evaluations and trigger records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from mlops_kit.deps import SessionDep
from mlops_kit.pagination import Limit, Offset
from sqlalchemy.orm import Session

from pipeline_orchestrator.retraining import service
from pipeline_orchestrator.retraining.monitor import Evaluation, RetrainingMonitor
from pipeline_orchestrator.retraining.schemas import (
    MODEL_NAME_PATTERN,
    EvaluationRead,
    RetrainingPolicyIn,
    RetrainingPolicyPage,
    RetrainingPolicyRead,
    RetrainingTriggerConfig,
    RetrainingTriggerPage,
)
from pipeline_orchestrator.retraining.tables import RetrainingPolicy

router = APIRouter(tags=["retraining"])

ModelPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=MODEL_NAME_PATTERN, description="model name")
]


def _policy(model: ModelPath, session: SessionDep) -> RetrainingPolicy:
    return service.load_policy(session, model)


PolicyDep = Annotated[RetrainingPolicy, Depends(_policy)]


def _monitor(request: Request) -> RetrainingMonitor:
    monitor: RetrainingMonitor = request.app.state.retraining
    return monitor


@router.put(
    "/api/retraining-policies/{model}",
    response_model=RetrainingPolicyRead,
    summary="Create or replace a model's retraining policy",
)
def put_policy(model: ModelPath, body: RetrainingPolicyIn, session: SessionDep) -> RetrainingPolicyRead:
    return service.policy_read(service.put_policy(session, model, body))


@router.post(
    "/api/v1/retraining/setup/{model_name}",
    response_model=RetrainingPolicyRead,
    summary="Set a model's retraining triggers (the orchestration document's RetrainingTriggerConfig)",
)
def setup_retraining(
    model_name: ModelPath, body: RetrainingTriggerConfig, session: SessionDep
) -> RetrainingPolicyRead:
    return service.policy_read(service.put_policy(session, model_name, service.from_trigger_config(body)))


@router.get(
    "/api/retraining-policies", response_model=RetrainingPolicyPage, summary="List retraining policies"
)
def list_policies(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> RetrainingPolicyPage:
    return service.policy_page(session, limit, offset)


@router.get(
    "/api/retraining-policies/{model}",
    response_model=RetrainingPolicyRead,
    summary="A model's retraining policy",
)
def read_policy(policy: PolicyDep) -> RetrainingPolicyRead:
    return service.policy_read(policy)


@router.delete(
    "/api/retraining-policies/{model}", status_code=204, summary="Remove a model's retraining policy"
)
def delete_policy(model: ModelPath, session: SessionDep) -> Response:
    service.delete_policy(session, model)
    return Response(status_code=204)


@router.post(
    "/api/retraining-policies/{model}/evaluate",
    response_model=EvaluationRead,
    summary="Evaluate the policy now: read model monitoring, pass each fired signal through the gate",
)
def evaluate_policy(model: ModelPath, request: Request) -> EvaluationRead:
    # no request transaction: the registry is asked between the monitor's own short transactions
    evaluation = _monitor(request).evaluate(model)
    assert evaluation is not None
    with request.app.state.db.session(write=False) as session:
        return _evaluation_read(session, evaluation)


@router.get(
    "/api/retraining-policies/{model}/triggers",
    response_model=RetrainingTriggerPage,
    summary="The model's trigger decisions, newest first",
)
def list_policy_triggers(
    model: ModelPath, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> RetrainingTriggerPage:
    return service.trigger_page(session, model, limit, offset)


@router.get(
    "/api/retraining-triggers",
    response_model=RetrainingTriggerPage,
    summary="Trigger decisions, newest first",
)
def list_triggers(
    session: SessionDep,
    model: str | None = Query(default=None, min_length=1, max_length=128, pattern=MODEL_NAME_PATTERN),
    limit: Limit = 100,
    offset: Offset = 0,
) -> RetrainingTriggerPage:
    return service.trigger_page(session, model, limit, offset)


def _evaluation_read(session: Session, evaluation: Evaluation) -> EvaluationRead:
    triggers = service.trigger_reads(session, [d.trigger for d in evaluation.decisions])
    signals = [{"kind": s.kind, "fired": s.fired, **s.evidence} for s in evaluation.signals]
    return EvaluationRead(
        model=evaluation.model, evaluated_at=evaluation.evaluated_at, signals=signals, triggers=triggers
    )
