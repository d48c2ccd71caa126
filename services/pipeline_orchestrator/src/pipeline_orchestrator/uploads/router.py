"""`POST /api/uploads` (a file in, its artifact URI out) and `GET /api/artifacts?uri=` (any artifact
of the store out): what a run reads by URI can come from the caller's machine, whichever executor
runs it (local processes, Celery workers, Kubernetes jobs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from mlops_kit.deps import StoreDep, audit_alone
from mlops_kit.limits import upload_limit
from mlops_kit.openapi import ANY_TYPE, file_responses

from pipeline_orchestrator.uploads import service
from pipeline_orchestrator.uploads.schemas import NAME_PATTERN, UploadRead

router = APIRouter(tags=["artifacts"])

UploadName = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description="the file name, suffix included (`.csv`, `.parquet`, ...): letters, digits, `._-`",
    ),
]
ArtifactUri = Annotated[str, Query(min_length=1, max_length=1024, description="an `mlops-artifacts://` URI")]


@router.post(
    "/api/uploads",
    status_code=201,
    response_model=UploadRead,
    summary="Upload a file (the raw request body) for runs to read by its artifact URI",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(name: UploadName, request: Request, store: StoreDep) -> UploadRead:
    spooled = await store.spool(request.stream(), max_bytes=upload_limit(request))
    try:
        stored = await run_in_threadpool(service.store_upload, store, name, spooled)
    finally:
        spooled.discard()
    await audit_alone(request, {"uri": stored.uri, "size": stored.size, "sha256": stored.sha256})
    return stored


@router.get(
    "/api/artifacts",
    response_class=Response,
    responses=file_responses(200, media_types=ANY_TYPE),
    summary="Download an artifact of the store: an upload or a task's output",
)
async def download(uri: ArtifactUri, store: StoreDep) -> StreamingResponse:
    size, chunks = await run_in_threadpool(service.open_artifact, store, uri)
    return StreamingResponse(
        chunks, media_type="application/octet-stream", headers={"content-length": str(size)}
    )
