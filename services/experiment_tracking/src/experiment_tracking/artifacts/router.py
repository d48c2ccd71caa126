"""Native run artifacts: `/api/experiments/{id}/runs/{run_id}/artifacts[/path]`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from mlops_kit.bounds import PathLong
from mlops_kit.deps import StoreDep
from mlops_kit.limits import upload_limit
from mlops_kit.openapi import ANY_TYPE, file_responses

from experiment_tracking.artifacts import service
from experiment_tracking.artifacts.schemas import ArtifactListRead, ArtifactRead
from experiment_tracking.paths import ExperimentIdPath, RunIdPath
from experiment_tracking.runs.router import run_in_experiment

router = APIRouter(prefix="/api/experiments/{experiment_id}/runs/{run_id}/artifacts", tags=["run artifacts"])


def _root(request: Request, experiment_id: str, run_id: str) -> str:
    """Looked up with a short read-only session: no transaction is held while bytes stream."""
    session = request.app.state.db.session(write=False)
    try:
        return service.run_root(run_in_experiment(session, experiment_id, run_id)["artifact_uri"])
    finally:
        session.close()


# a directory has no size: its `file_size` is left out, not null
@router.get("", response_model=ArtifactListRead, response_model_exclude_unset=True)
async def list_artifacts(
    experiment_id: ExperimentIdPath,
    run_id: RunIdPath,
    request: Request,
    store: StoreDep,
    path: Annotated[str | None, Query(max_length=1024)] = None,
) -> ArtifactListRead:
    root = await run_in_threadpool(_root, request, experiment_id, run_id)
    files = await run_in_threadpool(service.listing, store, service.join(root, path))
    return ArtifactListRead.model_validate({"path": (path or "").strip("/"), "files": files})


@router.put(
    "/{path:path}",
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
    summary="Upload one artifact file as the raw request body (streamed)",
    response_model=ArtifactRead,
)
async def upload_artifact(
    experiment_id: ExperimentIdPath, run_id: RunIdPath, path: PathLong, request: Request, store: StoreDep
) -> ArtifactRead:
    root = await run_in_threadpool(_root, request, experiment_id, run_id)
    key = service.join(root, path)
    spooled = await store.spool(request.stream(), max_bytes=upload_limit(request))
    try:
        await run_in_threadpool(store.put_file, key, spooled.path)
    finally:
        spooled.discard()
    return ArtifactRead(path=path.strip("/"), size=spooled.size, sha256=spooled.sha256)


@router.get("/{path:path}", response_class=Response, responses=file_responses(200, media_types=ANY_TYPE))
async def download_artifact(
    experiment_id: ExperimentIdPath, run_id: RunIdPath, path: PathLong, request: Request, store: StoreDep
) -> StreamingResponse:
    root = await run_in_threadpool(_root, request, experiment_id, run_id)
    size, media, chunks = await run_in_threadpool(service.open_file, store, service.join(root, path))
    return StreamingResponse(chunks, media_type=media, headers={"content-length": str(size)})
