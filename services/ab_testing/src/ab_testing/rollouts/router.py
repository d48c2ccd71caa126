"""`POST /api/experiments/{e}/promote` (move a registry alias to the winner's model version) and
`POST /api/experiments/{e}/evaluate` (run the rollout controller's check for one experiment now).

Neither loads the experiment through the request's session: the promotion claims it in a
transaction of its own and moves the alias outside any transaction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from mlops_kit.deps import SessionDep

from ab_testing.deps import ExperimentPath
from ab_testing.rollouts import service
from ab_testing.rollouts.controller import RolloutController
from ab_testing.rollouts.schemas import DecisionRead, EvaluationRead, PromotionCreate

router = APIRouter(prefix="/api/experiments", tags=["rollouts"])


def _controller(request: Request) -> RolloutController:
    return request.app.state.rollouts  # type: ignore[no-any-return]


@router.post("/{experiment}/promote", response_model=DecisionRead)
def promote(
    experiment: ExperimentPath, body: PromotionCreate, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Move the registry alias of the experiment's model to the winning variant's model version
    (the given `variant`, else the best one significantly better than control on the primary
    metric); the decision is recorded with its evidence and returned."""
    settings = request.app.state.settings
    return service.promote(
        request.app.state.db,
        _controller(request).registry,
        session,
        experiment,
        body,
        fold_seconds=settings.read_fold_seconds,
        fold_chunk=settings.fold_chunk_events,
    )


@router.post("/{experiment}/evaluate", response_model=EvaluationRead)
async def evaluate(experiment: ExperimentPath, request: Request, session: SessionDep) -> dict[str, Any]:
    """Run the rollout controller's check for this bandit or canary now (what the background loop
    does every `controller_interval_seconds`): the figures of the evaluation and the decisions it
    recorded."""
    # `session` is unused but kept: the request's transaction writes its audit entry
    return await run_in_threadpool(service.evaluate, request.app.state.db, _controller(request), experiment)
