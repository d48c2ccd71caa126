"""`/api/runs`: list, inspect (tasks and attempts), logs, cancel, retry; and a pipeline's runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from mlops_kit.bounds import INT64_SCHEMA_MAX, MAX_OFFSET, PathStr
from mlops_kit.deps import SessionDep
from mlops_kit.openapi import file_responses
from mlops_kit.pagination import Limit, Offset, page_fields

from pipeline_orchestrator.deps import PipelineDep, RunDep, engine, wake_after_commit
from pipeline_orchestrator.pipelines import service as pipelines
from pipeline_orchestrator.runs import service
from pipeline_orchestrator.runs.schemas import RunPage, RunRead, RunStateParam
from pipeline_orchestrator.tables import AttemptState

router = APIRouter(tags=["runs"])
TriggerQuery = Query(default=None, max_length=16)


@router.get("/api/runs", response_model=RunPage, response_model_exclude_unset=True)
def list_runs(
    session: SessionDep,
    pipeline: str | None = Query(default=None, max_length=100, description="a pipeline id or name"),
    state: RunStateParam | None = None,
    trigger: str | None = TriggerQuery,
    limit: Limit = 100,
    offset: Offset = 0,
) -> RunPage:
    pipeline_id = pipelines.load_pipeline(session, pipeline).id if pipeline else None
    items, total = service.list_runs(session, pipeline_id, state, trigger, limit, offset)
    return RunPage(items=items, **page_fields(total, limit, offset))


@router.get("/api/pipelines/{pipeline}/runs", response_model=RunPage, response_model_exclude_unset=True)
def list_pipeline_runs(
    pipeline: PipelineDep,
    session: SessionDep,
    state: RunStateParam | None = None,
    trigger: str | None = TriggerQuery,
    limit: Limit = 100,
    offset: Offset = 0,
) -> RunPage:
    items, total = service.list_runs(session, pipeline.id, state, trigger, limit, offset)
    return RunPage(items=items, **page_fields(total, limit, offset))


@router.get("/api/runs/{run_id}", response_model=RunRead, response_model_exclude_unset=True)
def read_run(run: RunDep, request: Request, session: SessionDep) -> RunRead:
    return service.full_run(session, engine(request).definitions, run)


@router.post(
    "/api/runs/{run_id}/cancel", status_code=202, response_model=RunRead, response_model_exclude_unset=True
)
def cancel_run(run_id: PathStr, run: RunDep, request: Request, session: SessionDep) -> RunRead:
    """Stop the run: pending tasks are cancelled, running attempts are stopped."""
    service.cancel_run(session, run, run_id)
    wake_after_commit(request, session, [run.id])
    return service.full_run(session, engine(request).definitions, run)


@router.post(
    "/api/runs/{run_id}/retry", status_code=202, response_model=RunRead, response_model_exclude_unset=True
)
def retry_run(run_id: PathStr, run: RunDep, request: Request, session: SessionDep) -> RunRead:
    """Go on from the failed tasks: failed, upstream-failed, cancelled and skipped tasks are reset;
    succeeded tasks keep their outputs and are not run again."""
    service.retry_run(session, run, run_id)
    wake_after_commit(request, session, [run.id])
    return service.full_run(session, engine(request).definitions, run)


@router.get(
    "/api/runs/{run_id}/tasks/{task}/logs",
    response_class=Response,
    responses=file_responses(200, media_types=("text/plain; charset=utf-8",)),
)
async def task_logs(
    run_id: PathStr,
    task: PathStr,
    request: Request,
    attempt: int | None = Query(
        default=None, ge=1, le=INT64_SCHEMA_MAX, description="default: the latest attempt"
    ),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET, description="byte offset to read from"),
    follow: bool = Query(default=False, description="stream until the attempt ends"),
) -> Response:
    """An attempt's log as text. `X-Next-Offset` says where to continue, `X-Attempt-State` how the
    attempt stands; with `follow=true` the response streams until the attempt ends."""
    db = request.app.state.db
    chunk = request.app.state.settings.log_chunk_bytes

    def lookup() -> tuple[str, str | None, int]:
        with db.session(write=False) as session:
            a = service.find_attempt(session, run_id, task, attempt)
            return a.state, a.log_path, a.number

    state, path, number = await anyio.to_thread.run_sync(lookup)

    def attempt_state() -> str:
        # the attempt being streamed, even if a retry started a newer one meanwhile
        with db.session(write=False) as session:
            return service.find_attempt(session, run_id, task, number).state

    headers = {"X-Attempt": str(number), "Cache-Control": "no-store"}
    if not follow:
        data = await anyio.to_thread.run_sync(service.read_log, path, offset, chunk)
        headers |= {"X-Next-Offset": str(offset + len(data)), "X-Attempt-State": state}
        return Response(data, media_type="text/plain; charset=utf-8", headers=headers)

    async def stream() -> AsyncIterator[bytes]:
        position = offset
        current = state
        while True:
            data = await anyio.to_thread.run_sync(service.read_log, path, position, chunk)
            if data:
                position += len(data)
                yield data
                continue
            if current != AttemptState.RUNNING:
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.25)
            current = await anyio.to_thread.run_sync(attempt_state)

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8", headers=headers)
