"""`/api/pipelines`: definitions and their versions, and what is created under a pipeline (manual
runs, schedules, backfills, webhooks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from mlops_kit.bounds import INT64_SCHEMA_MAX
from mlops_kit.deps import SessionDep
from mlops_kit.openapi import answers
from mlops_kit.pagination import Limit, Offset, page_fields

from pipeline_orchestrator.deps import PipelineDep, wake_after_commit
from pipeline_orchestrator.pipelines import service
from pipeline_orchestrator.pipelines.schemas import (
    BackfillCreate,
    BackfillRead,
    PipelineCreate,
    PipelineCreated,
    PipelinePage,
    PipelineRead,
    PipelineVersionPage,
    PipelineVersionRead,
    ScheduleCreate,
    ScheduleRead,
    WebhookCreate,
    WebhookPage,
    WebhookRead,
)
from pipeline_orchestrator.runs.schemas import RunCreate, RunRead

router = APIRouter(tags=["pipelines"])
VersionPath = Annotated[int, Path(ge=1, le=INT64_SCHEMA_MAX)]


@router.post(
    "/api/pipelines",
    status_code=201,
    response_model=PipelineCreated,
    response_model_exclude_unset=True,
    responses=answers(PipelineCreated, 200, "Unchanged"),
)
def create_pipeline(session: SessionDep, body: PipelineCreate, response: Response) -> PipelineCreated:
    """Create a pipeline, or the next version of an existing one when the definition changed."""
    created = service.create_pipeline(session, body)
    if not created.created:
        response.status_code = 200
    return created


@router.get("/api/pipelines", response_model=PipelinePage, response_model_exclude_unset=True)
def list_pipelines(
    session: SessionDep,
    name_prefix: str | None = Query(default=None, max_length=100),
    limit: Limit = 100,
    offset: Offset = 0,
) -> PipelinePage:
    items, total = service.list_pipelines(session, name_prefix, limit, offset)
    return PipelinePage(items=items, **page_fields(total, limit, offset))


@router.get("/api/pipelines/{pipeline}", response_model=PipelineRead, response_model_exclude_unset=True)
def read_pipeline(pipeline: PipelineDep, session: SessionDep) -> PipelineRead:
    return service.read_pipeline(session, pipeline)


@router.get("/api/pipelines/{pipeline}/versions", response_model=PipelineVersionPage)
def list_versions(
    pipeline: PipelineDep, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> PipelineVersionPage:
    items, total = service.list_versions(session, pipeline, limit, offset)
    return PipelineVersionPage(items=items, **page_fields(total, limit, offset))


@router.get("/api/pipelines/{pipeline}/versions/{version}", response_model=PipelineVersionRead)
def read_version(pipeline: PipelineDep, version: VersionPath, session: SessionDep) -> PipelineVersionRead:
    return service.read_version(session, pipeline, version)


@router.delete("/api/pipelines/{pipeline}", status_code=204)
def delete_pipeline(pipeline: PipelineDep, session: SessionDep) -> Response:
    service.delete_pipeline(session, pipeline)
    return Response(status_code=204)


@router.post(
    "/api/pipelines/{pipeline}/runs",
    status_code=201,
    tags=["runs"],
    response_model=RunRead,
    response_model_exclude_unset=True,
)
def trigger_run(
    pipeline: PipelineDep, request: Request, session: SessionDep, body: RunCreate | None = None
) -> RunRead:
    run = service.trigger_run(session, pipeline, body or RunCreate())
    wake_after_commit(request, session, [run.id])
    return service.run_read(run)


@router.post(
    "/api/pipelines/{pipeline}/schedules", status_code=201, tags=["schedules"], response_model=ScheduleRead
)
def create_schedule(pipeline: PipelineDep, body: ScheduleCreate, session: SessionDep) -> ScheduleRead:
    return service.create_schedule(session, pipeline, body)


@router.post(
    "/api/pipelines/{pipeline}/backfill",
    status_code=201,
    tags=["schedules"],
    response_model=BackfillRead,
    response_model_exclude_unset=True,
)
def backfill(
    pipeline: PipelineDep, body: BackfillCreate, request: Request, session: SessionDep
) -> BackfillRead:
    """A run per cron fire time from start to end, both included (a bare end date includes its
    whole day, as in Airflow), each with its logical date (and the parameters ``logical_date``
    and ``ds`` when the pipeline declares them)."""
    runs = service.backfill(session, pipeline, body)
    wake_after_commit(request, session, [r.id for r in runs])
    return service.backfill_read(runs)


@router.post(
    "/api/pipelines/{pipeline}/webhooks",
    status_code=201,
    tags=["triggers"],
    response_model=WebhookRead,
    response_model_exclude_unset=True,
)
def create_webhook(
    pipeline: PipelineDep, session: SessionDep, body: WebhookCreate | None = None
) -> WebhookRead:
    """A secret URL that starts this pipeline; the token is shown once (stored hashed)."""
    return service.create_webhook(session, pipeline, body or WebhookCreate())


@router.get(
    "/api/pipelines/{pipeline}/webhooks",
    tags=["triggers"],
    response_model=WebhookPage,
    response_model_exclude_unset=True,
)
def list_webhooks(pipeline: PipelineDep, session: SessionDep) -> WebhookPage:
    items = service.list_webhooks(session, pipeline)
    return WebhookPage(items=items, **page_fields(len(items), max(1, len(items)), 0))
