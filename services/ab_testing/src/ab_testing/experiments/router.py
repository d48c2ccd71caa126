"""`/api/experiments`: create, read, update (phases), lifecycle, overrides, definition, decisions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from mlops_kit.deps import SessionDep
from mlops_kit.pagination import Limit, Offset, page_fields
from sqlalchemy.orm import Session

from ab_testing.deps import ExperimentDep, UserPath
from ab_testing.experiments import service
from ab_testing.experiments.schemas import (
    DecisionPage,
    DefinitionRead,
    ExperimentCreate,
    ExperimentPage,
    ExperimentRead,
    ExperimentUpdate,
    OverrideCreate,
    OverrideRead,
    PhasePage,
)
from ab_testing.tables import Experiment

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


def _invalidate(request: Request, session: Session, experiment: Experiment) -> None:
    service.invalidate_on_commit(session, request.app.state.definitions.invalidate, experiment)


@router.post("", status_code=201, response_model=ExperimentRead)
def create(body: ExperimentCreate, session: SessionDep) -> dict[str, Any]:
    """Create an experiment (draft). Weights must sum to 1 (±0.01); at least 2 variants."""
    return service.experiment_json(service.create_experiment(session, body))


@router.get("", response_model=ExperimentPage)
def list_experiments(
    session: SessionDep,
    status: Literal["draft", "running", "paused", "stopped", "archived"] | None = None,
    mode: Literal["ab", "bandit", "canary"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    total, items = service.list_experiments(session, status, mode, limit, offset)
    return {"items": items, **page_fields(total, limit, offset)}


@router.get("/{experiment}", response_model=ExperimentRead)
def read(experiment: ExperimentDep) -> dict[str, Any]:
    return service.experiment_json(experiment)


@router.patch("/{experiment}", response_model=ExperimentRead)
def update(
    experiment: ExperimentDep, body: ExperimentUpdate, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Change description or assignment; new weights/variants on a started experiment open a new
    phase (results are per phase); `reassign: true` re-randomizes users."""
    service.update_experiment(session, experiment, body)
    _invalidate(request, session, experiment)
    return service.experiment_json(experiment)


def _lifecycle(action: str) -> Callable[..., dict[str, Any]]:
    def endpoint(experiment: ExperimentDep, request: Request, session: SessionDep) -> dict[str, Any]:
        service.apply_transition(session, experiment, action)
        _invalidate(request, session, experiment)
        return service.experiment_json(experiment)

    endpoint.__name__ = f"{action}_experiment"
    endpoint.__doc__ = f"{action.capitalize()} the experiment."
    return endpoint


for _action in ("start", "pause", "stop", "archive"):
    router.add_api_route(
        f"/{{experiment}}/{_action}", _lifecycle(_action), methods=["POST"], response_model=ExperimentRead
    )


@router.get("/{experiment}/definition", tags=["routing"], response_model=DefinitionRead)
def read_definition(experiment: ExperimentDep, session: SessionDep) -> dict[str, Any]:
    """What a client needs to assign users itself (mlops_client.ab_routing.evaluate)."""
    return service.definition(session, experiment)


@router.get("/{experiment}/phases", response_model=PhasePage)
def list_phases(experiment: ExperimentDep, session: SessionDep) -> dict[str, Any]:
    items = service.list_phases(session, experiment)
    return {"items": items, **page_fields(len(items), max(1, len(items)), 0)}


@router.put("/{experiment}/overrides/{user_id}", tags=["routing"], response_model=OverrideRead)
def put_override(
    experiment: ExperimentDep, user_id: UserPath, body: OverrideCreate, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Force a user into a variant (sticky, whatever the hash says)."""
    service.set_override(session, experiment, user_id, body.variant)  # the row lock: one row per user
    _invalidate(request, session, experiment)
    return {"experiment": experiment.key, "user_id": user_id, "variant": body.variant}


@router.delete("/{experiment}/overrides/{user_id}", status_code=204, tags=["routing"])
def delete_override(
    experiment: ExperimentDep, user_id: UserPath, request: Request, session: SessionDep
) -> Response:
    service.delete_override(session, experiment, user_id)
    _invalidate(request, session, experiment)
    return Response(status_code=204)


@router.get("/{experiment}/decisions", response_model=DecisionPage)
def list_decisions(
    experiment: ExperimentDep,
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
    kind: str | None = Query(None, max_length=100),
) -> dict[str, Any]:
    """Every automatic (bandit, canary) and manual (promote) decision with its evidence."""
    total, items = service.list_decisions(session, experiment, kind, limit, offset)
    return {"items": items, **page_fields(total, limit, offset)}
