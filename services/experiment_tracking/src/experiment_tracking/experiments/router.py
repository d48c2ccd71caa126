from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from mlops_kit.bounds import PathStr
from mlops_kit.deps import SessionDep

from experiment_tracking.experiments import service
from experiment_tracking.experiments.schemas import (
    ExperimentCreate,
    ExperimentPage,
    ExperimentRead,
    ExperimentUpdate,
)
from experiment_tracking.paths import ExperimentIdPath
from experiment_tracking.queries import Filter, OrderBy, PageToken, View

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ExperimentRead)
def create_experiment(body: ExperimentCreate, session: SessionDep) -> ExperimentRead:
    experiment_id = service.create(
        session,
        body.name,
        artifact_location=body.artifact_location,
        tags=body.tags,
        description=body.description,
    )
    return ExperimentRead.of(service.get(session, experiment_id))


@router.get("", response_model=ExperimentPage)
def list_experiments(
    session: SessionDep,
    filter: Filter = None,
    name_prefix: Annotated[str | None, Query(max_length=500)] = None,
    order_by: OrderBy = None,
    view: View = "ACTIVE_ONLY",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: PageToken = None,
) -> ExperimentPage:
    if name_prefix:
        escaped = name_prefix.replace("'", "\\'")
        prefix_filter = f"name LIKE '{escaped}%'"
        filter = f"{prefix_filter} and ({filter})" if filter else prefix_filter
    found, token = service.search(
        session, filter_string=filter, order_by=order_by, view=view, max_results=limit, page_token=page_token
    )
    return ExperimentPage(items=[ExperimentRead.of(e) for e in found], next_page_token=token)


@router.get("/by-name/{name:path}", response_model=ExperimentRead)
def get_experiment_by_name(name: PathStr, session: SessionDep) -> ExperimentRead:
    return ExperimentRead.of(service.get_by_name(session, name))


@router.get("/{experiment_id}", response_model=ExperimentRead)
def get_experiment(experiment_id: ExperimentIdPath, session: SessionDep) -> ExperimentRead:
    return ExperimentRead.of(service.get(session, experiment_id))


@router.patch("/{experiment_id}", response_model=ExperimentRead)
def update_experiment(
    experiment_id: ExperimentIdPath, body: ExperimentUpdate, session: SessionDep
) -> ExperimentRead:
    if body.name is not None:
        service.rename(session, experiment_id, body.name)
    tags = dict(body.tags or {})
    if body.description is not None:
        tags[service.DESCRIPTION_TAG] = body.description
    if tags:
        service.set_tags(session, experiment_id, tags)
    return ExperimentRead.of(service.get(session, experiment_id))


@router.delete("/{experiment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_experiment(experiment_id: ExperimentIdPath, session: SessionDep) -> Response:
    """Soft delete: the experiment and its runs are hidden until restored."""
    service.delete(session, experiment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{experiment_id}/restore", response_model=ExperimentRead)
def restore_experiment(experiment_id: ExperimentIdPath, session: SessionDep) -> ExperimentRead:
    service.restore(session, experiment_id)
    return ExperimentRead.of(service.get(session, experiment_id))
