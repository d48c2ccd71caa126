"""`/api/experiments`: create, read, update (phases), lifecycle, overrides, definition, decisions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from mlops_kit.db import after_commit, count_rows
from mlops_kit.deps import SessionDep
from mlops_kit.openapi import answers
from mlops_kit.pagination import Limit, Offset, page_fields
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ab_testing.api.answers import (
    DecisionPage,
    DefinitionRead,
    ExperimentPage,
    ExperimentRead,
    OverrideRead,
    PhasePage,
)
from ab_testing.experiments import (
    create_experiment,
    definition,
    experiment_json,
    get_experiment,
    set_override,
    transition,
    update_experiment,
)
from ab_testing.schemas import ExperimentCreate, ExperimentPath, ExperimentUpdate, UserPath
from ab_testing.tables import Decision, Experiment, Override, Phase

router = APIRouter(tags=["experiments"])


def _invalidate(request: Request, session: Session, experiment: Experiment) -> None:
    cache = request.app.state.definitions
    refs = (experiment.id, experiment.key)
    after_commit(session, lambda: cache.invalidate(*refs))


@router.post("/api/experiments", status_code=201, response_model=None, responses=answers(ExperimentRead, 201))
def create(body: ExperimentCreate, session: SessionDep) -> dict[str, Any]:
    """Create an experiment (draft). Weights must sum to 1 (±0.01); at least 2 variants."""
    experiment = create_experiment(session, body)
    session.flush()
    return experiment_json(experiment)


@router.get("/api/experiments", response_model=None, responses=answers(ExperimentPage))
def list_experiments(
    session: SessionDep,
    status: Literal["draft", "running", "paused", "stopped", "archived"] | None = None,
    mode: Literal["ab", "bandit", "canary"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    query = select(Experiment)
    if status:
        query = query.where(Experiment.status == status)
    if mode:
        query = query.where(Experiment.mode == mode)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Experiment.created_at.desc()).limit(limit).offset(offset)).all()
    return {"items": [experiment_json(e) for e in rows], **page_fields(total, limit, offset)}


@router.get("/api/experiments/{experiment}", response_model=None, responses=answers(ExperimentRead))
def read(experiment: ExperimentPath, session: SessionDep) -> dict[str, Any]:
    return experiment_json(get_experiment(session, experiment))


@router.patch("/api/experiments/{experiment}", response_model=None, responses=answers(ExperimentRead))
def update(
    experiment: ExperimentPath, body: ExperimentUpdate, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Change description or assignment; new weights/variants on a started experiment open a new
    phase (results are per phase); `reassign: true` re-randomizes users."""
    row = get_experiment(session, experiment, lock=True)
    update_experiment(session, row, body)
    _invalidate(request, session, row)
    session.flush()
    return experiment_json(row)


def _lifecycle(action: str):  # type: ignore[no-untyped-def]
    def endpoint(experiment: ExperimentPath, request: Request, session: SessionDep) -> dict[str, Any]:
        row = get_experiment(session, experiment, lock=True)
        transition(session, row, action)
        _invalidate(request, session, row)
        session.flush()
        return experiment_json(row)

    endpoint.__name__ = f"{action}_experiment"
    endpoint.__doc__ = f"{action.capitalize()} the experiment."
    return endpoint


for _action in ("start", "pause", "stop", "archive"):
    router.add_api_route(
        f"/api/experiments/{{experiment}}/{_action}",
        _lifecycle(_action),
        methods=["POST"],
        response_model=None,
        responses=answers(ExperimentRead),
    )


@router.get(
    "/api/experiments/{experiment}/definition",
    tags=["routing"],
    response_model=None,
    responses=answers(DefinitionRead),
)
def read_definition(experiment: ExperimentPath, session: SessionDep) -> dict[str, Any]:
    """What a client needs to assign users itself (mlops_client.ab_routing.evaluate)."""
    return definition(session, get_experiment(session, experiment))


@router.get("/api/experiments/{experiment}/phases", response_model=None, responses=answers(PhasePage))
def list_phases(experiment: ExperimentPath, session: SessionDep) -> dict[str, Any]:
    row = get_experiment(session, experiment)
    phases = session.scalars(select(Phase).where(Phase.experiment_id == row.id).order_by(Phase.number)).all()
    items = [
        {
            "number": p.number,
            "seed": p.seed,
            "variants": p.variants,
            "coverage": p.coverage,
            "reason": p.reason,
            "started_at": p.started_at.isoformat(),
            "ended_at": p.ended_at.isoformat() if p.ended_at else None,
        }
        for p in phases
    ]
    return {"items": items, **page_fields(len(items), max(1, len(items)), 0)}


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str = Field(min_length=1, max_length=100)


@router.put(
    "/api/experiments/{experiment}/overrides/{user_id}",
    tags=["routing"],
    response_model=None,
    responses=answers(OverrideRead),
)
def put_override(
    experiment: ExperimentPath, user_id: UserPath, body: OverrideIn, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Force a user into a variant (sticky, whatever the hash says)."""
    row = get_experiment(session, experiment, lock=True)  # concurrent PUTs of one user: one row
    set_override(session, row, user_id, body.variant)
    _invalidate(request, session, row)
    return {"experiment": row.key, "user_id": user_id, "variant": body.variant}


@router.delete("/api/experiments/{experiment}/overrides/{user_id}", status_code=204, tags=["routing"])
def delete_override(
    experiment: ExperimentPath, user_id: UserPath, request: Request, session: SessionDep
) -> Response:
    row = get_experiment(session, experiment, lock=True)
    session.execute(delete(Override).where(Override.experiment_id == row.id, Override.user_id == user_id))
    _invalidate(request, session, row)
    return Response(status_code=204)


@router.get("/api/experiments/{experiment}/decisions", response_model=None, responses=answers(DecisionPage))
def list_decisions(
    experiment: ExperimentPath,
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
    kind: str | None = Query(None, max_length=100),
) -> dict[str, Any]:
    """Every automatic (bandit, canary) and manual (promote) decision with its evidence."""
    row = get_experiment(session, experiment)
    query = select(Decision).where(Decision.experiment_id == row.id)
    if kind:
        query = query.where(Decision.kind == kind)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Decision.id).limit(limit).offset(offset)).all()
    items = [
        {"id": d.id, "kind": d.kind, "phase": d.phase, "details": d.details, "at": d.at.isoformat()}
        for d in rows
    ]
    return {"items": items, **page_fields(total, limit, offset)}
